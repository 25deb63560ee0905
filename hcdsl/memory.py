"""How much memory a model will need, estimated before anything is allocated, and how much
the machine has; `check` refuses a model that does not fit, with both numbers.

Parameters come from the IR before passes (every parameter-holding node's `param_count()`,
counted from shapes without torch; the modules are built from that IR, so a dead layer's
weights count). Activations, per token (batch x seq of them), are bounded deliberately
generously:

    every value of the IR (optimised: what runs) is assumed kept for the backward pass:
        a hidden vector counts its width, a stack of S streams S x width (for the dense
        families S grows with depth, so their quadratic memory is counted), a coefficient
        matrix rows x cols;
    plus what a layer keeps inside:
        attention 6 x dim + 2 x heads x seq (q, k, v, output; scores and probabilities),
        mlp 3 x hidden, opaque 2 x hidden, a norm layer 2 x dim, an extern layer 8 x dim;
    plus the loss: 3 x vocab (logits, log-probabilities, their gradient);

    activations = SAFETY (2) x bytes per element x batch x seq x (the sum above).

The sum alone came to 0.77-1.29 of the measured peak of a forward + backward (ru_maxrss, d =
256 and 512, batch x seq 8 x 256, 4 x 512, 32 x 64; residual, HC, MUDD, DenseFormer, FC, mHC,
attention residuals: the lowest were attention residuals, whose softmax over the history
keeps more than its output), so SAFETY = 2 makes it an overestimate by 1.5 to 2.6 times:
a refusal means the run would very likely not fit, never that it narrowly might.

What a use needs: `compile` the weights (params x bytes); `run` (forward + backward) weights,
gradients and activations; `train` weights, gradients, AdamW's two moments and the
activations of one micro-batch. Available memory is MemAvailable of /proc/meminfo on Linux,
else psutil's if it is installed, else unknown and the check is skipped; on a CUDA device,
the device's free memory. Every use has an override (`check_memory=False`,
`hcdsl run --no-memory-check`, TrainConfig.check_memory).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.segments import width
from hcdsl.ir.types import Coef, Hidden, Multi, Streams, Type
from hcdsl.lang.catalog import layer_args

MEMINFO = Path("/proc/meminfo")
COPIES = {"compile": 1, "run": 2, "train": 4}  # parameter-sized tensors each use holds
SAFETY = 2  # activations: the per-token sum times this (module doc)
OVERRIDE = ("pass check_memory=False to hcdsl.compile, --no-memory-check to hcdsl run, or "
            "--set check_memory=false to hcdsl train, to try anyway")


class MemoryLimitError(CompileError):
    """The model's estimated memory is more than the machine has available."""


@dataclass(frozen=True)
class Estimate:
    params: int  # parameters (extern layers' own: unknown, not counted)
    param_bytes: int  # params x bytes x the copies the use holds
    activation_bytes: int  # 0 when no batch is run (compile)
    use: str  # compile | run | train
    processes: int = 1  # copies of the model on this machine (torchrun ranks on one host)

    @property
    def total(self) -> int:
        return (self.param_bytes + self.activation_bytes) * self.processes

    def describe(self) -> str:
        parts = [f"{self.params:,} parameters x {COPIES[self.use]} copies = "
                 f"{fmt_bytes(self.param_bytes)}"]
        if self.activation_bytes:
            parts.append(f"activations {fmt_bytes(self.activation_bytes)}")
        if self.processes > 1:
            parts.append(f"x {self.processes} processes")
        return f"{fmt_bytes(self.total)} ({', '.join(parts)})"


def fmt_bytes(b: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b} B"


def param_count(raw: IR) -> int:
    """Parameters of every parameter-holding node of the IR (extern layers: 0, unknown)."""
    return sum(raw.payload(v).param_count() or 0 for v in raw.g.nodes)


def _inside(p: n.Node, seq: int) -> int:
    """Elements per token a node keeps inside its module (module doc)."""
    if isinstance(p, n.Unembed):
        return 3 * p.vocab
    if not isinstance(p, n.Layer):
        return 0
    if p.extern:
        return 8 * p.dim
    return layer_args(p.kind, p.args).kept(p.dim, seq)  # the kind's own rule (lang/catalog)


def activation_elements(ir: IR, batch: int, seq: int) -> int:
    """The activations one forward + backward keeps (module doc), in elements."""
    per_token = sum(width(ir.type_of(v)) + _inside(ir.payload(v), seq) for v in ir.g.nodes)
    return SAFETY * batch * seq * per_token


def estimate(raw: IR, ir: IR | None = None, batch: int = 0, seq: int = 0,
             dtype_bytes: int = 4, use: str = "compile") -> Estimate:
    """Memory of a use (compile | run | train) of the model built from `raw` (the IR before
    passes) running `ir` (after them; default raw) on batch x seq tokens."""
    params = param_count(raw)
    acts = activation_elements(ir or raw, batch, seq) if batch and seq else 0
    return Estimate(params, params * dtype_bytes * COPIES[use], acts * dtype_bytes, use)


def available_bytes(device: object = None) -> tuple[int, str] | None:
    """(bytes available, where that number came from), or None when unknown."""
    if str(device or "cpu").startswith("cuda"):
        import torch  # only for a CUDA device, which has torch already

        free, _ = torch.cuda.mem_get_info(torch.device(str(device)))
        return int(free), f"free memory of {device}"
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    if importlib.util.find_spec("psutil") is not None:
        import psutil  # optional: used only when already installed

        return int(psutil.virtual_memory().available), "psutil.virtual_memory().available"
    return None


def check(est: Estimate, what: str, device: object = None) -> None:
    """MemoryLimitError when the estimate is more than the available memory (nothing when
    the available memory is unknown)."""
    found = available_bytes(device)
    if found is None:
        return
    avail, source = found
    if est.total > avail:
        raise MemoryLimitError(
            f"{what} needs an estimated {est.describe()}, more than the "
            f"{fmt_bytes(avail)} available ({source}); {OVERRIDE}")


# ---------------------------------------------------------------- recomputation across layers

def layers_per_segment(ir: IR, recompute: object = "layers", every: object = None) -> int:
    """How many layers a segment of recomputation across layers holds (0: none); `every`
    when given, else the memory model's choice. recompute "auto" is "layers" where it pays
    (`pays`), else off. Checks both arguments: recompute is False, True, "layers" or
    "auto", every a whole number >= 1 or None.

    The model, per token: the state kept at the boundaries, b elements per boundary (what
    crosses a cut, hcdsl.ir.segments), N/k times; and, while one segment is rebuilt in
    backward, what the connection computes in k layers, k r (r: per layer). The sum
    N b / k + k r is least at k = sqrt(N b / r), the mHC paper's block size
    sqrt(n L / (n + 2)) (arXiv 2512.24880 §4.3) with its own counts of b and r; rounded,
    between 2 and N."""
    if not isinstance(recompute, (bool, str)) or recompute not in (False, True, "layers",
                                                                    "auto"):
        raise CompileError(f"recompute={recompute!r}: choose False, True (the connection "
                           "between two layers), \"layers\" (across layers) or \"auto\" "
                           "(across layers where the state is wider than a hidden vector)")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int)
                              or every < 1):
        raise CompileError(f"recompute_every={every!r}: a whole number of layers >= 1, or "
                           "None for the memory model's choice")
    if recompute not in ("layers", "auto"):
        return 0
    from hcdsl.ir.segments import segment_model

    layers, boundary, per_layer = segment_model(ir)
    if recompute == "auto" and not pays(ir, boundary):
        return 0
    if every is not None:
        return every
    if layers < 2 or per_layer <= 0:
        return max(layers, 1)
    return max(2, min(layers, round(math.sqrt(layers * boundary / per_layer))))


def pays(ir: IR, boundary: float) -> bool:
    """Recomputation across layers pays where more than one hidden vector crosses between
    layers (HC's and mHC's n streams, the dense families' history); for Pre-Norm and FC,
    whose state is one hidden vector, it would only recompute the layers' own pointwise
    ops (measured: docs/optimiser.md)."""
    dims = [t.width for t in (ir.type_of(v) for v in ir.g.nodes) if isinstance(t, Hidden)]
    return bool(dims) and boundary > max(dims)
