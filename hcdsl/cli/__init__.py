"""The `hcdsl` command: the app and its error policy (app.py), the spec commands
(commands.py), the proof commands (proofs.py). Each command module adds its commands to the
app when imported."""

from hcdsl.cli import commands, proofs  # noqa: F401 - register their commands
from hcdsl.cli.app import app
from hcdsl.cli.commands import bundled_specs

__all__ = ["app", "bundled_specs", "main"]


def main() -> None:
    app()
