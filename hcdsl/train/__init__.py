"""Training and comparing hcdsl models: `hcdsl train`, `hcdsl compare`.

loop.py is the trainer; config.py its options; data.py the corpus and the batch order;
prepare.py what is checked before a run; schedule.py the learning rate; checkpoint.py and
resume.py exact resume and what it checks; lock.py one run per folder; signals.py and
lifeline.py stopping (a signal, a dead parent); parallel.py DDP and FSDP2; probes.py what
the connections learn; plots.py, report.py, manifest.py and compare.py the comparison; worker.py one run of a
comparison in its own process; errors.py the errors and the exit status each asks for. The
commands `hcdsl train`, `compare` are hcdsl/cli/train.py's: this package knows no CLI.
"""

from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError


def train(cfg: TrainConfig) -> dict:  # lazy: importing the package stays cheap
    """Train one run (see hcdsl.train.loop.train); returns its summary."""
    from hcdsl.train.loop import train as _train

    return _train(cfg)


__all__ = ["TrainConfig", "TrainError", "train"]
