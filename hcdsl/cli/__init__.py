"""The `hcdsl` command: the app and its one error policy (app.py), the spec commands
(commands.py), the proof commands (proofs.py), sampling (sample.py), training and comparing
(train.py), benchmarks (bench.py). Each command module adds its commands to the app; the
libraries it calls (hcdsl/train/, hcdsl/bench/, ...) know nothing of typer or of this
package."""

from hcdsl.cli import bench, commands, proofs, sample, train  # noqa: F401 - their commands
from hcdsl.cli.app import app
from hcdsl.cli.commands import bundled_specs

__all__ = ["app", "bundled_specs", "main"]


def main() -> None:
    app(prog_name="hcdsl")
