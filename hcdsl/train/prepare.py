"""Everything checked before a run writes anything: the spec compiles, the tokenizer fits its
vocab, the data is there and long enough. Each problem is a TrainError with one clear
message. (What the run folder holds is checked by resume.py, once the folder is locked.)

The spec file is read once (`read_spec`: at most the front end's size limit, a FIFO or any
other non-regular file refused without waiting on it), and that text is what is compiled,
counted and recorded as the run's spec.hc. It is compiled once: one Compilation
(hcdsl/compiler.py) serves the counts, the memory check, the model and every probe."""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import hcdsl
from hcdsl import memory
from hcdsl.compiler import Compilation
from hcdsl.counts import Stats
from hcdsl.errors import CompileError, HcError
from hcdsl.frontend.source import Source, read_path, text_source
from hcdsl.lang.limits import MAX_SOURCE_BYTES
from hcdsl.schemes.program import Program
from hcdsl.train import data
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import SpecError, TrainError


@dataclass
class Prepared:
    source: Compilation  # what hcdsl.compile gets: the spec as read once, compiled once
    name: str  # the spec's file, or "<spec text>"
    text: str  # the spec text, copied to the run as spec.hc
    stats: Stats
    data: data.Data
    batches: data.Batches
    val: object  # (V, seq + 1) tensor


def spec_errors(what: str) -> "_SpecErrors":
    """with spec_errors(name): turns HcError/CompileError into a SpecError (located)."""
    return _SpecErrors(what)


class _SpecErrors:
    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, HcError):
            raise SpecError(exc.render()) from None
        if isinstance(exc, CompileError):
            raise SpecError(f"{self.what}: error: {exc}") from None
        return False


def read_spec(cfg: TrainConfig) -> Source:
    """The spec's text, read once: a file at most MAX_SOURCE_BYTES long (more is an error),
    never a FIFO, device or socket (refused without opening it for a blocking read)."""
    source = cfg.spec_source()
    if isinstance(source, str):
        return Source(source, "<spec text>")
    try:
        mode = os.stat(source).st_mode
    except OSError:
        mode = None  # missing, unreadable, a bad name: the front end's message says which
    if mode is None or stat.S_ISDIR(mode):
        return read_path(source)
    if not stat.S_ISREG(mode):
        raise SpecError(f"{source}: error: not a regular file ({_kind(mode)}); a spec is a "
                         ".hc file")
    try:  # O_NONBLOCK: a file swapped for a FIFO since stat() is not waited on either
        with open(source, "rb", opener=lambda p, f: os.open(p, f | os.O_NONBLOCK)) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpecError(f"{source}: error: not a regular file; a spec is a .hc file")
            raw = f.read(MAX_SOURCE_BYTES + 1)
    except OSError:
        return read_path(source)  # its message (permission denied, ...)
    if len(raw) > MAX_SOURCE_BYTES:
        return read_path(source)  # the limit's message
    try:
        return text_source(raw.decode("utf-8-sig"), str(source))
    except UnicodeDecodeError:
        return read_path(source)  # the front end's message for a file that is not text


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a file"


def prepare(cfg: TrainConfig, world: int) -> Prepared:
    name = cfg.spec if isinstance(cfg.spec_source(), Path) else "<spec text>"
    with spec_errors(name):
        read = read_spec(cfg)
        source = Compilation.from_source(read)
        stats = hcdsl.stats(source)
        if cfg.check_memory:
            check_memory(cfg, source, name)
    text = read.text
    if stats.vocab == 0:  # `input = hidden`: a body has no tokens to predict
        raise _at_setting(source, name, "input", "the spec is a body (`input = hidden`): it maps "
                          "hidden states to hidden states, with no embedding, head or "
                          "vocabulary, so there is no next token to train on",
                          "train a language model spec (leave `input` out and set `vocab`), "
                          "or build the body with hcdsl.compile and train the model that "
                          "contains it")
    tok = data.Tokenizer(cfg.tokenizer)
    try:
        data.check_vocab(stats.vocab, tok)
    except TrainError as exc:
        raise _at_setting(source, name, "vocab", str(exc)) from None
    try:
        corpus = data.load(cfg.data, tok, cfg.max_bytes, cfg.val_fraction)
    except OSError as exc:  # a file of the corpus we may not read
        raise TrainError(f"--data {cfg.data}: cannot read {exc.filename or cfg.data}: "
                         f"{exc.strerror or exc}") from None
    batches = data.Batches(corpus.train, cfg.seq, cfg.batch, world, cfg.accum,
                           cfg.seed if cfg.data_seed is None else cfg.data_seed)
    val = data.val_set(corpus.val, cfg.seq, cfg.val_sequences, world)
    return Prepared(source, name, text, stats, corpus, batches, val)


def _at_setting(source: Compilation, name: str, setting: str, message: str,
                hint: str | None = None) -> SpecError:
    """A SpecError about one setting of the spec, located at it (file:line:col, the line,
    a caret) as the front end's errors are; at the file when the spec does not write it."""
    err = source.located(message, f"setting {setting}", hint)
    err.filename = name
    return SpecError(err.render())


def check_memory(cfg: TrainConfig, source: str | Path | Program, name: str) -> None:
    """Refuse (MemoryLimitError) a run whose estimate does not fit (hcdsl/memory.py): on a
    CPU, weights, gradients, AdamW's moments and one micro-batch's activations, times the
    ranks torchrun starts on this host; on a GPU, the weights first built in host memory."""
    import torch

    comp = Compilation.load(source)
    on_cpu = cfg.device == "cpu" or cfg.device == "auto" and not torch.cuda.is_available()
    if on_cpu:
        est = comp.estimate(batch=cfg.batch, seq=cfg.seq, use="train")
        est = dataclasses.replace(est, processes=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    else:
        est = comp.estimate(passes=None)
    memory.check(est, f"{name} at batch {cfg.batch} x seq {cfg.seq}")
