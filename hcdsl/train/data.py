"""The corpus, its tokens, and the order in which a run sees them.

Default corpus (no download, on every machine with Python): the `.py` files of the standard
library (`sysconfig.get_paths()["stdlib"]`), sorted by relative path, without test folders
and third-party packages, taken in that order up to `max_bytes`, read as bytes (no file is
read past what `max_bytes` takes of it). `--data`
takes one text file or a folder (every non-hidden file without NUL bytes, sorted).

Split: the last `val_fraction` of the corpus (cut at the first file boundary after that
point when there is one, else at the byte) is the validation split; data.json in the run
records the files, the cut and a SHA-256 of the bytes.

Order: a split of n tokens has W = (n - 1) // seq windows of seq + 1 tokens (stride seq, so
each token is a target once). Sample i of the run is window perm_e[i mod W] of epoch
e = i // W, with perm_e a permutation seeded by (data_seed, e). Optimizer step s uses
samples s*G .. s*G + G - 1 (G = batch x world x accum); micro-step a of rank r takes the
slice starting at (a * world + r) * batch. So 2 ranks with batch b see exactly what 1 rank
with batch 2b sees, and the data position of step s is s*G: nothing else to save.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hcdsl.train.errors import TrainError

SKIP_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test",
                       "__pycache__"})
GPT2_EOT = 50256


@dataclass
class Corpus:
    """Raw documents (bytes) and where they came from."""

    source: str
    names: list[str]
    docs: list[bytes]

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.docs)


@dataclass
class Data:
    train: torch.Tensor  # 1-D int32 tokens
    val: torch.Tensor
    vocab: int
    info: dict = field(default_factory=dict)  # recorded as data.json


def stdlib_corpus(max_bytes: int) -> Corpus:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]  # prune: never walk into them
        files += [Path(folder) / n for n in names if n.endswith(".py")]
    files.sort(key=lambda p: p.relative_to(root).as_posix())
    return _take(f"python stdlib ({root})", root, files, max_bytes)


def path_corpus(path: Path, max_bytes: int) -> Corpus:
    if not path.exists():
        raise TrainError(f"--data {path}: no such file or folder")
    if not (path.is_file() or path.is_dir()):
        raise TrainError(f"--data {path}: not a regular file or a folder (a FIFO, a device?)")
    if path.is_file():
        files, root = [path], path.parent
    else:
        files = sorted((p for p in path.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(path).parts)),
            key=lambda p: p.relative_to(path).as_posix())
        files = [p for p in files if b"\0" not in _head(p, 8192)]
        root = path
        if not files:
            raise TrainError(f"--data {path}: the folder holds no text files")
    corpus = _take(str(path), root, files, max_bytes)
    if corpus.size == 0:
        raise TrainError(f"--data {path}: empty (0 bytes of text)")
    return corpus


def _take(source: str, root: Path, files: list[Path], max_bytes: int) -> Corpus:
    names, docs, total = [], [], 0
    for p in files:
        if total >= max_bytes:
            break
        raw = _head(p, max_bytes - total)
        if raw:
            names.append(p.relative_to(root).as_posix())
            docs.append(raw)
            total += len(raw)
    return Corpus(source, names, docs)


def _head(path: Path, size: int) -> bytes:
    """At most `size` bytes from the start of a file (never the whole of a large one)."""
    with open(path, "rb") as f:
        return f.read(size)


class Tokenizer:
    """bytes: one token per byte (vocab 256); gpt2: tiktoken's GPT-2 BPE (vocab 50257)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.enc = _gpt2() if kind == "gpt2" else None
        self.vocab = self.enc.n_vocab if self.enc is not None else 256

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt (no end-of-text token)."""
        if self.enc is None:
            return list(text.encode("utf-8"))
        return self.enc.encode_ordinary(text)

    def decode(self, ids: list[int]) -> str:
        """Text of token ids; bytes that are not UTF-8 show as U+FFFD."""
        if self.enc is None:
            return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", "replace")
        return self.enc.decode([i for i in ids if 0 <= i < self.vocab])

    def encode_docs(self, docs: list[bytes]) -> list[torch.Tensor]:
        if self.enc is None:
            return [torch.frombuffer(bytearray(d), dtype=torch.uint8).to(torch.int32)
                    for d in docs]
        return [torch.tensor(self.enc.encode_ordinary(d.decode("utf-8", "replace"))
                             + [GPT2_EOT], dtype=torch.int32) for d in docs]


def _gpt2() -> object:
    try:
        import tiktoken
    except ImportError:
        raise TrainError("--tokenizer gpt2 needs tiktoken: pip install tiktoken") from None
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as exc:  # noqa: BLE001 - any download failure means the same thing
        raise TrainError(
            "--tokenizer gpt2: tiktoken could not load the GPT-2 vocabulary; it downloads it "
            "on first use and this machine seems to have no network (put the files in "
            f"TIKTOKEN_CACHE_DIR, or use --tokenizer bytes) [{type(exc).__name__}]") from None


def check_vocab(spec_vocab: int, tok: Tokenizer) -> None:
    if spec_vocab < tok.vocab:
        raise TrainError(f"the spec's vocab = {spec_vocab} is smaller than the {tok.kind} "
                         f"tokenizer's {tok.vocab} tokens: set `vocab = {tok.vocab}` (or more) "
                         "in the spec, or choose another --tokenizer")


def load(data: Path | None, tokenizer: Tokenizer, max_bytes: int, val_fraction: float) -> Data:
    corpus = stdlib_corpus(max_bytes) if data is None else path_corpus(data, max_bytes)
    if corpus.size == 0:
        raise TrainError(f"the corpus {corpus.source} is empty")
    cut = _cut(corpus, val_fraction)
    train_docs, val_docs = corpus.docs[:cut[0]], corpus.docs[cut[0]:]
    if cut[1]:  # a byte cut inside one document
        doc = corpus.docs[cut[0]]
        train_docs, val_docs = train_docs + [doc[:cut[1]]], [doc[cut[1]:]] + val_docs[1:]
    train = torch.cat(tokenizer.encode_docs(train_docs))
    val = torch.cat(tokenizer.encode_docs(val_docs))
    digest = hashlib.sha256(b"".join(corpus.docs)).hexdigest()
    info = {"source": corpus.source, "tokenizer": tokenizer.kind, "vocab": tokenizer.vocab,
            "bytes": corpus.size, "sha256": digest, "files": len(corpus.names),
            "train_files": corpus.names[:cut[0] + (1 if cut[1] else 0)],
            "val_files": corpus.names[cut[0]:], "split_inside_file_at_byte": cut[1],
            "train_tokens": int(train.numel()), "val_tokens": int(val.numel())}
    return Data(train, val, tokenizer.vocab, info)


def _cut(corpus: Corpus, val_fraction: float) -> tuple[int, int]:
    """(first validation document, byte offset inside it; 0: a clean file boundary)."""
    target = int(corpus.size * (1 - val_fraction))
    start = 0
    for i, d in enumerate(corpus.docs):
        if start >= target and 0 < i:
            return i, 0
        start += len(d)
    # no boundary after the target: cut inside the document that holds it
    start = 0
    for i, d in enumerate(corpus.docs):
        if start + len(d) > target:
            return i, target - start
        start += len(d)
    return len(corpus.docs) - 1, max(len(corpus.docs[-1]) - 1, 0)


class Batches:
    """The run's batch order (see the module doc): a pure function of (data_seed, step)."""

    def __init__(self, tokens: torch.Tensor, seq: int, batch: int, world: int, accum: int,
                 data_seed: int, what: str = "training split") -> None:
        self.tokens, self.seq, self.batch, self.world, self.accum = tokens, seq, batch, world, accum
        self.windows = max((tokens.numel() - 1) // seq, 0)
        self.global_batch = batch * world * accum
        self.seed = data_seed
        self._perms: dict[int, torch.Tensor] = {}
        if self.windows < self.global_batch:
            raise TrainError(
                f"the {what} has {tokens.numel():,} tokens = {self.windows} sequences of "
                f"{seq} + 1, fewer than one global batch of {self.global_batch} (batch {batch} "
                f"x {world} ranks x accum {accum}): use more data or a smaller --batch/--seq")

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.windows, generator=gen)}
        return self._perms[epoch]

    def position(self, step: int) -> int:
        """Index of the first sample of optimizer step `step` (0-based)."""
        return step * self.global_batch

    def micro(self, step: int, rank: int, micro: int) -> torch.Tensor:
        """(batch, seq + 1) int64 tokens of one micro-step of one rank."""
        first = self.position(step) + (micro * self.world + rank) * self.batch
        rows = []
        for i in range(first, first + self.batch):
            w = int(self._perm(i // self.windows)[i % self.windows])
            rows.append(self.tokens[w * self.seq: w * self.seq + self.seq + 1])
        return torch.stack(rows).long()


def val_set(tokens: torch.Tensor, seq: int, count: int | None, world: int) -> torch.Tensor:
    """The fixed validation sequences, (V, seq + 1): every window of the held-out split
    (count None), or `count` of them drawn without replacement with a fixed seed (the same
    windows for every run of a comparison, whatever its seed), in split order. V is rounded
    down to a multiple of the world size, so every rank runs as many batches."""
    windows = (tokens.numel() - 1) // seq
    n = (windows if count is None else min(count, windows)) // world * world
    if n == 0:
        raise TrainError(f"the validation split has {tokens.numel():,} tokens, too few for "
                         f"{world} sequence(s) of {seq} + 1: use more data, a larger "
                         "--val-fraction or a smaller --seq")
    if n == windows:
        chosen = range(n)
    else:
        gen = torch.Generator().manual_seed(VAL_SAMPLE_SEED)
        chosen = sorted(torch.randperm(windows, generator=gen)[:n].tolist())
    return torch.stack([tokens[w * seq: w * seq + seq + 1] for w in chosen]).long()


VAL_SAMPLE_SEED = 20240930  # fixed: a sample must not change with a run's --seed
