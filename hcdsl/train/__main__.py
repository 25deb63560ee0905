"""`python -m hcdsl.train train|compare ...`: the commands without the main `hcdsl` CLI (and
what torchrun runs: `torchrun --nproc_per_node 2 -m hcdsl.train train SPEC`)."""

import typer

from hcdsl.train.cli import register

app = typer.Typer(name="hcdsl.train", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
register(app)

if __name__ == "__main__":
    app()
