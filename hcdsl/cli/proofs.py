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


def different_shapes(a: Path, b: Path, at_init: bool, checkpoints: bool):  # noqa: ANN201
    """NOT EQUIVALENT, with the reason and a numeric witness (both models on the same
    tokens, each with its own weights), for specs whose shapes decide it: logits over
    different vocabularies are different functions, and (for the questions over every
    choice of the layers) layers of different widths cannot be the same T_k. None when the
    prover has to decide (same shapes; or only the width differs and checkpoints are given:
    trained weights of different widths may still compute one function)."""
    from hcdsl.proofs.identity import Identity
    from hcdsl.proofs.numeric import one_thread
    from hcdsl.proofs.prove import NOT_EQUIVALENT, UNKNOWN, ProofResult
    from hcdsl.proofs.source import raw_ir
    from hcdsl.proofs.witness import numeric_witness
    from hcdsl.compiler import Compilation

    ca, cb = Compilation.load(a, once=True), Compilation.load(b, once=True)
    sa, sb = ca.spec, cb.spec
    diffs = [f"{k} {getattr(sa, k)} vs {getattr(sb, k)}" for k in ("dim", "vocab")
             if getattr(sa, k) != getattr(sb, k)]
    if not diffs or (sa.vocab == sb.vocab and checkpoints):
        return None
    question = "checkpoint" if checkpoints else "init" if at_init else "learned"
    why = ("the logits have different sizes" if sa.vocab != sb.vocab else
           "layers of different widths are different functions T_k")
    result = ProofResult(str(a), str(b), NOT_EQUIVALENT, question,
                         reason=f"the models' shapes differ ({', '.join(diffs)}): {why}")
    with one_thread():
        result.witness = numeric_witness(raw_ir(ca), raw_ir(cb), Identity(question),
                                         Identity(question))
    if not result.witness.differs:  # (never seen: the shapes differ) no witness, no verdict
        result.verdict = UNKNOWN
    return result


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
