"""Step functions, clocks and memory for `hcdsl bench`. Device-agnostic: nothing here assumes
a device; clocks are read after synchronising the device (CUDA kernels run asynchronously).

Memory of one eager training step, two ways (the output says which):
- saved: bytes of the tensors autograd keeps from forward to backward
  (`torch.autograd.graph.saved_tensors_hooks`), each storage counted once, parameters
  excluded. Exact and deterministic, but blind to checkpointing: `torch.utils.checkpoint`
  packs the tensors saved inside a region with its own hooks and keeps the region's inputs
  itself, so an outer hook sees neither (a checkpointed model's saved figure undercounts).
- kept: bytes allocated by forward + loss and still allocated when backward starts (what
  backward holds: saved tensors, a checkpoint's inputs and cache, the logits). The allocator's
  own count, so checkpointing cannot hide anything from it: what the bench reports for
  recomputation. On CUDA `torch.cuda.memory_allocated`; elsewhere torch.profiler's allocator
  events, as for peak. Exact and deterministic too.
- peak: the highest bytes allocated above the step's start during forward + backward. On CUDA
  `torch.cuda.max_memory_allocated`; elsewhere the allocator events recorded by
  `torch.profiler` (profile_memory=True), summed in time order. Includes gradients and
  temporaries; the parameters and the inputs, allocated before the step, are not counted.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

Step = Callable[[], torch.Tensor]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a clock read after it includes that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type != "cpu":
        accel = getattr(torch, "accelerator", None)
        if accel is not None and accel.is_available():
            accel.synchronize()


def loss_of(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of the model's logits (B, T, V) on targets (B, T)."""
    logits = model(tokens)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def train_step(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor,
               compiled: bool) -> Step:
    """One training step without the optimizer: forward, cross-entropy, backward. Compiled:
    `torch.compile(loss, fullgraph=True)` (forward and backward graphs)."""

    def loss_fn(tok: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return loss_of(model, tok, tgt)

    fn = torch.compile(loss_fn, fullgraph=True) if compiled else loss_fn

    def step() -> torch.Tensor:
        for p in model.parameters():
            p.grad = None
        loss = fn(tokens, targets)
        loss.backward()
        return loss.detach()

    return step


def infer_step(model: nn.Module, tokens: torch.Tensor, compiled: bool) -> Step:
    """One inference forward under no_grad (compiled: `torch.compile(fullgraph=True)`)."""

    def forward(tok: torch.Tensor) -> torch.Tensor:
        return model(tok)

    fn = torch.compile(forward, fullgraph=True) if compiled else forward

    def step() -> torch.Tensor:
        with torch.no_grad():
            return fn(tokens)

    return step


def time_steps(step: Step, steps: int, device: torch.device) -> float:
    """Mean milliseconds per step over `steps` consecutive steps."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return 1e3 * (time.perf_counter() - t0) / steps


def saved_tensor_bytes(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor) -> int:
    """Bytes autograd saves for backward during one eager forward + loss (unique storages,
    parameters excluded); the backward then runs, to free them."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[tuple[str, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.device.type != "meta":
            s = t.untyped_storage()
            ptr = s.data_ptr()
            if ptr and ptr not in params:
                storages[(str(t.device), ptr)] = s.nbytes()
        return t

    for p in model.parameters():
        p.grad = None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_of(model, tokens, targets)
    loss.backward()
    for p in model.parameters():
        p.grad = None
    return sum(storages.values())


def kept_bytes(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor,
               device: torch.device) -> int | None:
    """Bytes allocated by one eager forward + loss and not yet freed when backward starts
    (None: the profiler gives no allocator events); the backward then runs, to free them."""
    for p in model.parameters():
        p.grad = None
    gc.collect()
    box: list[torch.Tensor] = []

    def forward() -> None:
        box.append(loss_of(model, tokens, targets))

    kept = _device_bytes(device, forward, peak=False)
    box.pop().backward()
    for p in model.parameters():
        p.grad = None
    return kept


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (kineto prints `USDT: ... profiler_start/stop` lines there
    on every profiler session, which would cut through the progress bar)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to do
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _device_bytes(device: torch.device, run: Callable[[], None], peak: bool) -> int | None:
    """Bytes allocated on `device` above the start of `run`: the highest (peak) or those still
    allocated at its end; CUDA from the caching allocator's counters, other devices from
    torch.profiler's allocator events (None: the profiler gives none)."""
    if device.type != "cuda":
        return _allocator_sum(device, run, peak)
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    run()
    sync(device)
    end = torch.cuda.max_memory_allocated(device) if peak else torch.cuda.memory_allocated(device)
    return end - start


def _allocator_sum(device: torch.device, run: Callable[[], None], peak: bool) -> int | None:
    """The running sum of allocator events on `device` recorded by torch.profiler during
    `run`: its peak, or (peak=False) its value at the end (bytes still allocated)."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_native_stderr(), \
            profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    results = getattr(getattr(prof, "profiler", None), "kineto_results", None)
    if results is None:
        return None
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in results.events()
        if e.name() == "[memory]" and str(e.device_type()).rsplit(".", 1)[-1].lower()
        == device.type)
    current = highest = 0
    for _, nbytes in events:
        current += nbytes
        highest = max(highest, current)
    return highest if peak else current


def peak_step_bytes(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor,
                    device: torch.device) -> int | None:
    """Peak bytes allocated above the start of one eager training step (None: unavailable)."""
    for p in model.parameters():
        p.grad = None
    gc.collect()

    def run() -> None:
        loss_of(model, tokens, targets).backward()

    peak = _device_bytes(device, run, peak=True)
    for p in model.parameters():
        p.grad = None
    return peak
