"""Shared fixtures. The tests live in folders by the compiler's floors (lang, frontend, ir,
passes, backends, families, proofs, apps, house); the helpers they share (helpers.py,
differential.py, fuzz.py, soundness.py, prove_specs.py, custom_helpers.py) stay here, on the
import path of every folder."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread (and do not fight parallel test runs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
