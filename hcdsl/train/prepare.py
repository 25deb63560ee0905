"""Everything checked before a run writes anything: the spec compiles, the tokenizer fits its
vocab, the data is there and long enough, the run folder is new (or resumable with the same
settings). Each problem is a TrainError with one clear message."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import hcdsl
from hcdsl import memory
from hcdsl.api import lowered
from hcdsl.errors import CompileError, Diagnostic, HcError
from hcdsl.frontend.parser import parse_syntax
from hcdsl.counts import Stats
from hcdsl.train import checkpoint, data
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError


@dataclass
class Prepared:
    source: str | Path  # what hcdsl.compile gets
    text: str  # the spec text, copied to the run as spec.hc
    stats: Stats
    data: data.Data
    batches: data.Batches
    val: object  # (V, seq + 1) tensor
    resume: Path | None  # the checkpoint folder to continue from


def spec_errors(what: str) -> "_SpecErrors":
    """with spec_errors(name): turns HcError/CompileError into a TrainError."""
    return _SpecErrors(what)


class _SpecErrors:
    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, HcError):
            raise TrainError(exc.render()) from None
        if isinstance(exc, CompileError):
            raise TrainError(f"{self.what}: error: {exc}") from None
        return False


def prepare(cfg: TrainConfig, world: int) -> Prepared:
    source = cfg.spec_source()
    name = str(source) if isinstance(source, Path) else "<spec text>"
    with spec_errors(name):
        stats = hcdsl.stats(source)
        if cfg.check_memory:
            check_memory(cfg, source, name)
    text = source.read_text() if isinstance(source, Path) else source
    if stats.vocab == 0:  # `input = hidden`: a body has no tokens to predict
        raise _at_setting(text, name, "input", "the spec is a body (`input = hidden`): it maps "
                          "hidden states to hidden states, with no embedding, head or "
                          "vocabulary, so there is no next token to train on",
                          "train a language model spec (leave `input` out and set `vocab`), "
                          "or build the body with hcdsl.compile and train the model that "
                          "contains it")
    tok = data.Tokenizer(cfg.tokenizer)
    try:
        data.check_vocab(stats.vocab, tok)
    except TrainError as exc:
        raise _at_setting(text, name, "vocab", str(exc)) from None
    try:
        corpus = data.load(cfg.data, tok, cfg.max_bytes, cfg.val_fraction)
    except OSError as exc:  # a file of the corpus we may not read
        raise TrainError(f"--data {cfg.data}: cannot read {exc.filename or cfg.data}: "
                         f"{exc.strerror or exc}") from None
    batches = data.Batches(corpus.train, cfg.seq, cfg.batch, world, cfg.accum,
                           cfg.seed if cfg.data_seed is None else cfg.data_seed)
    val = data.val_set(corpus.val, cfg.seq, cfg.val_sequences, world)
    return Prepared(source, text, stats, corpus, batches, val, _resume_point(cfg, text))


def _at_setting(text: str, name: str, setting: str, message: str,
                hint: str | None = None) -> TrainError:
    """A TrainError about one setting of the spec, located at it (file:line:col, the line,
    a caret) as the front end's errors are; at the file when the spec does not write it."""
    spans = [st.span for st in parse_syntax(text, name).settings if st.name == setting]
    return TrainError(HcError([Diagnostic(message, spans[0] if spans else None, hint)], name,
                              text).render())


def check_memory(cfg: TrainConfig, source: str | Path, name: str) -> None:
    """Refuse (MemoryLimitError) a run whose estimate does not fit (hcdsl/memory.py): on a
    CPU, weights, gradients, AdamW's moments and one micro-batch's activations, times the
    ranks torchrun starts on this host; on a GPU, the weights first built in host memory."""
    import torch

    low = lowered(source)
    on_cpu = cfg.device == "cpu" or cfg.device == "auto" and not torch.cuda.is_available()
    if on_cpu:
        est = memory.estimate(low.raw, low.ir, cfg.batch, cfg.seq, use="train")
        est = dataclasses.replace(est, processes=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    else:
        est = memory.estimate(low.raw)
    memory.check(est, f"{name} at batch {cfg.batch} x seq {cfg.seq}")


def _resume_point(cfg: TrainConfig, text: str) -> Path | None:
    recorded = cfg.out / "config.json"
    if cfg.resume_from is not None:
        if not (cfg.resume_from / "meta.pt").exists():
            raise TrainError(f"--resume-from {cfg.resume_from}: not a checkpoint folder "
                             "(no meta.pt)")
        _check_meta(cfg.resume_from)
        same_run = cfg.resume_from.resolve().parent.parent == cfg.out.resolve()
        if recorded.exists() and not same_run:
            raise TrainError(f"{cfg.out} holds another run: choose a new --out")
        return cfg.resume_from
    if not recorded.exists():
        return None
    if not cfg.resume:
        raise TrainError(f"{cfg.out} holds a run already: pass --resume to continue it, "
                         "or choose another --out")
    try:
        old = TrainConfig(**json.loads(recorded.read_text()))
    except Exception as exc:  # noqa: BLE001 - a hand-edited or foreign config.json
        raise TrainError(f"{recorded}: unreadable ({exc})") from None
    diff = [k for k in cfg.differences(old) if k != "spec"]
    recorded_spec = cfg.out / "spec.hc"
    if recorded_spec.exists() and recorded_spec.read_text() != text:
        raise TrainError(f"--resume {cfg.out}: its run trained another spec (see "
                         f"{recorded_spec}); resume it with that spec, or choose another --out")
    if diff:
        raise TrainError(f"--resume {cfg.out}: its run was started with other settings "
                         f"({', '.join(f'{k}={getattr(old, k)!r}' for k in diff)}); resume "
                         "with the same ones, or choose another --out")
    latest = checkpoint.latest(cfg.out)
    if latest is not None:
        _check_meta(latest)
    return latest


def _check_meta(folder: Path) -> None:
    """The folder's meta.pt is one this trainer wrote (read safely, weights_only)."""
    import torch

    try:
        meta = torch.load(folder / "meta.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise TrainError(f"checkpoint {folder}: its meta.pt cannot be read safely "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if not isinstance(meta, dict) or not {"step", "signature"} <= set(meta):
        raise TrainError(f"checkpoint {folder}: its meta.pt is not a checkpoint of "
                         "hcdsl train")


def write_run(cfg: TrainConfig, prep: Prepared) -> None:
    """config.json, spec.hc and data.json (rank 0, before the first step)."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.json").write_text(cfg.model_dump_json(indent=2) + "\n")
    (cfg.out / "spec.hc").write_text(prep.text)
    info = {**prep.data.info, "seq": cfg.seq, "train_sequences": prep.batches.windows,
            "val_sequences": int(prep.val.shape[0])}
    (cfg.out / "data.json").write_text(json.dumps(info, indent=2) + "\n")
