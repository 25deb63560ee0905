"""`hcdsl prove`, `hcdsl unfold`, `hcdsl plot`.

Exit codes of prove: 0 equivalent, 1 not equivalent, 2 a mistake in the input (a bad spec
prints its located rendering) or a question the prover cannot decide (UNKNOWN), 3 an
internal error (a bug in hcdsl: the message says so; `hcdsl --debug` shows the traceback).
unfold and plot: 0, or 2 on errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hcdsl.cli.app import app, command
from hcdsl.errors import CompileError


@app.command("prove")
def prove_cmd(
    a: str = typer.Argument(..., metavar="A.hc"),
    b: str = typer.Argument(..., metavar="B.hc"),
    at_init: bool = typer.Option(False, "--at-init",
                                 help="decide: the same model as built, at init (learned "
                                      "matrices at their init, dynamic parts zero)"),
    checkpoint: Optional[tuple[str, str]] = typer.Option(  # noqa: UP007 - typer needs Optional
        None, "--checkpoint", metavar="A.pt B.pt",
        help="decide: the same model with these trained weights (state_dicts)"),
    tie_inits: bool = typer.Option(False, "--tie-inits",
                                   help="tie learned parameters of corresponding steps even "
                                        "where their inits differ"),
    assume: Optional[list[str]] = typer.Option(  # noqa: UP007
        None, "--assume", help="allow only these assumptions (repeatable; default: all, "
                               "reporting the ones used); 'none' for none"),
    margin: float = typer.Option(10.0, "--eps-margin",
                                 help="side condition of the ε assumptions: a norm's input "
                                      "statistic must be at least this many times ε (> 0; "
                                      "below 1, ε may dominate: said with the verdict)"),
    no_witness: bool = typer.Option(False, "--no-witness",
                                    help="skip the numeric counterexample"),
    seed: int = typer.Option(0, "--seed", help="seed of the witness's weights and tokens"),
) -> None:
    """Prove or refute that two specs compute the same function (exit 0 equivalent, 1 not
    equivalent, 2 unknown or an error in the input, 3 a bug in hcdsl)."""
    from hcdsl.proofs.assumptions import BY_NAME
    from hcdsl.proofs.prove import prove
    from hcdsl.proofs.shapes import different_shapes

    if not margin > 0 or margin == float("inf"):
        raise typer.BadParameter(f"{margin:g} is not a margin: give a positive number (10 "
                                 "by default; 0.1 lets ε be ten times the statistic)",
                                 param_hint="--eps-margin")
    allowed = None if not assume else [x for x in assume if x != "none"]
    unknown = [x for x in allowed or () if x not in BY_NAME]
    if unknown:
        raise typer.BadParameter(f"unknown assumption '{unknown[0]}'; choose among: "
                                 + ", ".join(["none", *BY_NAME]), param_hint="--assume")
    with command(f"{a} vs {b}", code=2):
        result = different_shapes(Path(a), Path(b), at_init, checkpoint is not None)
        if result is None:
            result = prove(Path(a), Path(b), at_init=at_init, checkpoints=checkpoint,
                           tie_inits=tie_inits, assume=allowed, witness=not no_witness,
                           seed=seed, margin=margin)
    typer.echo(result.render())
    raise typer.Exit(result.exit_code)


@app.command("unfold")
def unfold_cmd(
    file: str = typer.Argument(..., metavar="FILE"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint",  # noqa: UP007
                                             help="a state_dict saved with torch.save"),
    tokens: Optional[str] = typer.Option(None, "--input",  # noqa: UP007
                                         help="tokens '1,2,3' or a tensor file (.pt)"),
    no_streams: bool = typer.Option(False, "--no-streams", help="only C^(0)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The unfolded connection matrices C^(0) and C^(i) of HC Eqs. 20-23."""
    from hcdsl.proofs.unfold import UnfoldError, unfold

    with command(file, code=2):
        try:
            u = unfold(Path(file), checkpoint=checkpoint, tokens=tokens, seed=seed)
        except UnfoldError as exc:
            raise CompileError(str(exc)) from None
    typer.echo(u.render(streams=not no_streams))


@app.command("plot")
def plot_cmd(
    files: list[str] = typer.Argument(..., metavar="FILE..."),
    out: Path = typer.Option(Path("connections.png"), "-o", "--out", help="the PNG to write"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint"),  # noqa: UP007
    tokens: Optional[str] = typer.Option(None, "--input"),  # noqa: UP007
    no_streams: bool = typer.Option(False, "--no-streams", help="only C^(0) per spec"),
) -> None:
    """Heatmaps of C^(0) and C^(i) (HC Figs. 7, 10) and the arrangement, one row per spec."""
    from hcdsl.plot import plot
    from hcdsl.proofs.unfold import UnfoldError

    with command(", ".join(files), code=2):
        try:
            path = plot([Path(f) for f in files], out, streams=not no_streams,
                        checkpoint=checkpoint, tokens=tokens)
        except UnfoldError as exc:
            raise CompileError(str(exc)) from None
    typer.echo(f"wrote {path}")
