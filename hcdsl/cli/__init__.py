"""The `hcdsl` command: the app and its error policy (app.py), the spec commands
(commands.py), the proof commands (proofs.py), sampling (sample.py), training (hcdsl/train/cli.py), benchmarks
(hcdsl/bench/cli.py). Each command module adds its commands to the app."""

from hcdsl.cli import commands, proofs, sample  # noqa: F401 - register their commands
from hcdsl.cli.app import app
from hcdsl.cli.commands import bundled_specs
from hcdsl.bench.cli import register as register_bench
from hcdsl.train.cli import register as register_train

register_train(app)  # train, compare
register_bench(app)  # bench

__all__ = ["app", "bundled_specs", "main"]


def main() -> None:
    app()
