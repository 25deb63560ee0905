"""`hcdsl prove`, `hcdsl unfold`, `hcdsl plot`, and the text of `hcdsl show --arrangement`.

hcdsl/cli.py calls register(app). Exit codes of prove: 0 equivalent, 1 not equivalent,
2 errors (a bad spec prints its HcError rendering). unfold and plot: 0, or 2 on errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hcdsl.errors import CompileError, HcError


def _fail(what: str, exc: Exception) -> None:
    if isinstance(exc, HcError):
        typer.echo(exc.render(), err=True)
    else:
        typer.echo(f"{what}: error: {exc}", err=True)
    raise typer.Exit(2)


ERRORS = (HcError, CompileError, ValueError, KeyError, FileNotFoundError, NotImplementedError)


def arrangement_text(file: str) -> str:
    """What `hcdsl show FILE --arrangement` prints (the lead wires it into `show`):
    e.g. "model: layers 1-2 parallel, 3-4 parallel, 5-6 parallel", from the zeros of C^(0).
    Raises HcError for a bad spec, UnfoldError when the state is not linear."""
    from hcdsl.proofs.arrangement import arrangement_text as text

    return text(file)


def prove_cmd(
    a: str = typer.Argument(..., metavar="A.hc"),
    b: str = typer.Argument(..., metavar="B.hc"),
    at_init: bool = typer.Option(False, "--at-init",
                                 help="compare at init: learned matrices at their init, "
                                      "dynamic parts zero"),
    assume: Optional[list[str]] = typer.Option(
        None, "--assume", help="allow only these assumptions (repeatable; default: all, "
                               "reporting the ones used); 'none' for none"),
    no_witness: bool = typer.Option(False, "--no-witness",
                                    help="skip the numeric counterexample"),
    seed: int = typer.Option(0, "--seed", help="seed of the witness's weights and tokens"),
) -> None:
    """Prove or refute that two specs compute the same function (exit 0 equivalent, 1 not,
    2 errors)."""
    from hcdsl.proofs import prove

    allowed = None if not assume else [x for x in assume if x != "none"]
    try:
        result = prove(a, b, at_init=at_init, assume=allowed, witness=not no_witness,
                       seed=seed)
    except ERRORS as exc:
        _fail(f"{a} vs {b}", exc)
        return
    typer.echo(result.render())
    raise typer.Exit(0 if result.equivalent else 1)


def unfold_cmd(
    file: str = typer.Argument(..., metavar="FILE"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint",
                                             help="a state_dict saved with torch.save"),
    tokens: Optional[str] = typer.Option(None, "--input",
                                         help="tokens '1,2,3' or a tensor file (.pt)"),
    no_streams: bool = typer.Option(False, "--no-streams", help="only C^(0)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The unfolded connection matrices C^(0) and C^(i) of HC Eqs. 20-23."""
    from hcdsl.proofs.unfold import UnfoldError, unfold

    try:
        u = unfold(file, checkpoint=checkpoint, tokens=tokens, seed=seed)
    except (*ERRORS, UnfoldError, RuntimeError) as exc:
        _fail(file, exc)
        return
    typer.echo(u.render(streams=not no_streams))


def plot_cmd(
    files: list[str] = typer.Argument(..., metavar="FILE..."),
    out: Path = typer.Option(Path("connections.png"), "-o", "--out", help="the PNG to write"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint"),
    tokens: Optional[str] = typer.Option(None, "--input"),
    no_streams: bool = typer.Option(False, "--no-streams", help="only C^(0) per spec"),
) -> None:
    """Heatmaps of C^(0) and C^(i) (HC Figs. 7, 10) and the arrangement, one row per spec."""
    from hcdsl.plot import plot
    from hcdsl.proofs.unfold import UnfoldError

    try:
        path = plot(files, out, streams=not no_streams, checkpoint=checkpoint, tokens=tokens)
    except (*ERRORS, UnfoldError, RuntimeError) as exc:
        _fail(", ".join(files), exc)
        return
    typer.echo(f"wrote {path}")


def arrangement_cmd(file: str = typer.Argument(..., metavar="FILE")) -> None:
    """Which layers the static connections let run in parallel (from the zeros of C^(0))."""
    from hcdsl.proofs.unfold import UnfoldError

    try:
        typer.echo(arrangement_text(file))
    except (*ERRORS, UnfoldError) as exc:
        _fail(file, exc)


def register(app: typer.Typer) -> None:
    app.command("prove")(prove_cmd)
    app.command("unfold")(unfold_cmd)
    app.command("plot")(plot_cmd)
