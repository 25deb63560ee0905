"""Training and comparing hcdsl models: `hcdsl train`, `hcdsl compare`.

loop.py is the trainer; config.py its options; data.py the corpus and the batch order;
schedule.py the learning rate; checkpoint.py exact resume; parallel.py DDP and FSDP2;
probes.py what the connections learn; plots.py, report.py and compare.py the comparison;
cli.py the typer commands (`register(app)`).
"""

from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError


def train(cfg: TrainConfig) -> dict:  # lazy: importing the package stays cheap
    """Train one run (see hcdsl.train.loop.train); returns its summary."""
    from hcdsl.train.loop import train as _train

    return _train(cfg)


__all__ = ["TrainConfig", "TrainError", "train"]
