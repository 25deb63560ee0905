"""`hcdsl sample SPEC --checkpoint RUN --prompt TEXT`: text from a trained model (or from its
random init, without --checkpoint), decoded with hcdsl.generate (a key/value cache per
attention layer). The tokenizer is the run's (its config.json), else bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hcdsl.cli.app import app, command, parse_device
from hcdsl.errors import CompileError


def run_tokenizer(checkpoint: Path | None) -> str:
    """The tokenizer a training run used: config.json in the run folder (the checkpoint
    itself, or up to two folders above a checkpoints/step_N folder or its state.pt)."""
    if checkpoint is None:
        return "bytes"
    for folder in [checkpoint, *list(checkpoint.resolve().parents)[:3]]:
        cfg = folder / "config.json"
        if cfg.is_file():
            try:
                return str(json.loads(cfg.read_text()).get("tokenizer", "bytes"))
            except (OSError, ValueError):
                break
    return "bytes"


@app.command()
def sample(
    spec: Path = typer.Argument(..., metavar="SPEC", help="the .hc file the model was trained from"),
    checkpoint: Optional[Path] = typer.Option(  # noqa: UP007 - typer needs Optional
        None, "--checkpoint", help="a run folder of `hcdsl train`, one of its checkpoint "
        "folders, or a state_dict file [random init]"),
    prompt: str = typer.Option("def ", "--prompt", help="the text to continue"),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens", "-n", min=0),
    temperature: float = typer.Option(0.8, "--temperature", min=0.0,
                                      help="0: greedy"),
    top_k: Optional[int] = typer.Option(40, "--top-k", min=1),  # noqa: UP007
    top_p: Optional[float] = typer.Option(None, "--top-p", min=0.0, max=1.0),  # noqa: UP007
    samples: int = typer.Option(1, "--samples", min=1, help="continuations to draw"),
    tokenizer: Optional[str] = typer.Option(  # noqa: UP007
        None, "--tokenizer", help="bytes|gpt2 [the run's, else bytes]"),
    seed: int = typer.Option(0, "--seed", help="seeds the sampling (and the init without "
                                               "--checkpoint)"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Continue a prompt with a trained model: KV-cached decoding, any connection."""
    with command("sample"):
        import torch

        import hcdsl
        from hcdsl.proofs.checkpoint import read_state
        from hcdsl.train.data import Tokenizer
        from hcdsl.train.errors import TrainError

        dev = torch.device(parse_device(device))
        try:
            tok = Tokenizer(tokenizer or run_tokenizer(checkpoint))
        except TrainError as exc:
            raise CompileError(str(exc)) from None
        state = read_state(checkpoint) if checkpoint is not None else None
        model = hcdsl.compile(spec, seed=seed, state_dict=state, device=dev).eval()
        ids = tok.encode(prompt)
        if not ids:
            raise CompileError("--prompt is empty: give at least one character to continue")
        vocab = model.hc_ir.payload("embed").vocab
        if max(ids) >= vocab:
            raise CompileError(f"the prompt has token {max(ids)}, outside the model's vocab "
                               f"= {vocab}: use the tokenizer it was trained with "
                               "(--tokenizer)")
        tokens = torch.tensor([ids] * samples, device=dev)
        gen = torch.Generator(device=dev).manual_seed(seed)
        out = model.generate(tokens, max_new_tokens, temperature=temperature, top_k=top_k,
                             top_p=top_p, generator=gen)
        for i, row in enumerate(out.tolist()):
            if samples > 1:
                typer.echo(f"--- sample {i + 1} ---")
            typer.echo(tok.decode(row))
