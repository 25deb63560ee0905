"""Where a connection's cost goes: torch.profiler breakdown of one training step per family.

    .venv/bin/python benchmarks/profile_connections.py             # eager breakdown, memory
    .venv/bin/python benchmarks/profile_connections.py --compiled  # + inductor kernel counts
    .venv/bin/python benchmarks/profile_connections.py --code dhc  # generated code, annotated
    .venv/bin/python benchmarks/profile_connections.py --sinkhorn  # the Sinkhorn op's backward

Model (speed.py's): d = 256, 4 blocks of [attention(heads=4), mlp(hidden=1024)], vocab 4096,
LayerNorm, fp32; timing at batch 8 x 128, memory at batch 16 x 512 (the project's memory goal).
Families: Pre-Norm, DHC x4, FC m=4 dynamic, mHC x4, MUDD.

How the time is attributed. The generated GraphModule runs under an fx.Interpreter that opens a
`torch.profiler.record_function("hc::<part>::<kind>")` around each node. <part> comes from the
IR node the fx node lowers: the layers (each layer and its own pre-norm), the connection
(coefficients, read and write mixes, the stack [T(h); H], copies, readout, the residual adds),
and embed/head (embedding, final norm, unembedding, plus the loss). Forward: the self CPU time
of every op inside a scope. Backward: autograd's `evaluate_function: XBackward` events carry
the sequence number of the forward op that created them, which maps them to the same scope.
Parameter-gradient accumulation is its own line. Times are op self-times (the interpreter's
Python overhead is not counted) with the profiler's overhead on every op, so read shares and
counts, not absolute ms; `hcdsl bench` gives the interleaved ratios. Saved activations are
attributed the same way (saved_tensors_hooks, the node that saved them, unique storages,
parameters excluded).

Compiled (--compiled): inductor fuses across these parts, so kernels are not attributed; the
script counts the kernels each step runs (children of the compiled graphs' calls: fused C++
kernels, extern GEMMs, custom ops), fwd and bwd, and lists the costliest.

--sinkhorn: the measurement behind hcdsl/nn/sinkhorn.py's backward (mHC, arXiv 2512.24880,
§4.2): autograd through the unrolled loop (the old hcdsl.nn.manifold.sinkhorn_log), the op with
its recomputing backward, and implicit differentiation at the fixed point (written here only
to be measured): eager forward + backward time, bytes saved for backward, and the gradient's
distance to the unrolled loop's in float64.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hcdsl  # noqa: E402
from hcdsl.bench import measure  # noqa: E402
from hcdsl.ir import nodes as n  # noqa: E402
from hcdsl.nn.modules import attr_name  # noqa: E402
from speed import SPEC, add_model_args  # noqa: E402 - the same model as speed.py

FAMILIES = {"pre": ("Pre-Norm", "residual"), "dhc": ("DHC x4", "hyper(n=4, dynamic)"),
            "fc": ("FC m=4 dynamic", "frac(m=4, dynamic)"), "mhc": ("mHC x4", "mhc(n=4)"),
            "mudd": ("MUDD", "mudd")}
PARTS = ("layers", "connection", "embed/head", "grad accumulation")


# ---------------------------------------------------------------- attribution

def node_parts(gm: fx.GraphModule) -> dict[str, tuple[str, str]]:
    """fx node name -> (part, kind) from the IR node it lowers (kind: the IR op, with
    read/write for mixes); unnamed helper nodes take the part of their first user."""
    ir = gm.hc_ir  # type: ignore[attr-defined]
    by_name = {attr_name(v).lower(): v for v in ir.order()}
    consumers: dict[str, list[n.Node]] = defaultdict(list)
    for v in ir.order():
        for u in ir.inputs(v).values():
            consumers[u].append(ir.payload(v))

    def classify(v: str) -> tuple[str, str]:
        p = ir.payload(v)
        if isinstance(p, n.Layer):
            return "layers", p.kind
        if isinstance(p, (n.Embed, n.Unembed)):
            return "embed/head", p.op
        if isinstance(p, n.Norm):
            users = consumers[v]
            if any(isinstance(c, n.Layer) for c in users):
                return "layers", "pre-norm"
            if any(isinstance(c, n.Unembed) for c in users):
                return "embed/head", "final norm"
            return "connection", "norm"
        if isinstance(p, n.Mix):
            return "connection", f"mix {v.rsplit('.', 1)[-1]}"
        return "connection", p.op

    out: dict[str, tuple[str, str]] = {}
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        name = node.name
        while name and name not in by_name:
            name = name.rpartition("_")[0]
        if name:
            out[node.name] = classify(by_name[name])
    for node in reversed(list(gm.graph.nodes)):  # helpers: their users' part
        if node.op not in ("placeholder", "output") and node.name not in out:
            users = [u.name for u in node.users if u.name in out]
            out[node.name] = out[users[0]] if users else ("connection", "helper")
    return out


class Scoped(fx.Interpreter):
    """Runs a GraphModule with a profiler scope and a saved-tensor owner per node."""

    def __init__(self, gm: fx.GraphModule, parts: dict[str, tuple[str, str]]) -> None:
        super().__init__(gm)
        self.parts = parts
        self.current: tuple[str, str] = ("embed/head", "loss")

    def run_node(self, node: fx.Node):  # noqa: ANN201 - any value
        if node.name not in self.parts:
            return super().run_node(node)
        self.current = self.parts[node.name]
        with record_function("hc::{}::{}".format(*self.current)):
            return super().run_node(node)


@dataclass
class Breakdown:
    fwd_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    bwd_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    kind_ms: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    fwd_ops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bwd_nodes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    saved: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    saved_kind: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    conn_ops: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # op -> ms


def _scope(e) -> tuple[str, str] | None:  # noqa: ANN001 - a FunctionEvent
    while e is not None:
        if e.name.startswith("hc::"):
            _, part, kind = e.name.split("::", 2)
            return part, kind
        e = e.cpu_parent
    return None


def _is_op(e) -> bool:  # noqa: ANN001
    return not e.name.startswith(("hc::", "autograd::engine::", "ProfilerStep"))


def attribute(events, steps: int) -> Breakdown:  # noqa: ANN001 - an EventList
    """Per part: forward and backward op self-time (ms per step), top-level forward aten ops,
    backward autograd nodes."""
    b = Breakdown()
    seq_scope: dict[int, tuple[str, str]] = {}
    for e in events:  # forward: ops inside scopes
        scope = _scope(e)
        if scope is None:
            continue
        if e.sequence_nr >= 0 and not e.name.startswith("hc::"):
            seq_scope.setdefault(e.sequence_nr, scope)
        if _is_op(e):
            b.fwd_ms[scope[0]] += e.self_cpu_time_total / 1e3 / steps
            b.kind_ms[scope] += e.self_cpu_time_total / 1e3 / steps
            if scope[0] == "connection":
                b.conn_ops[e.name] += e.self_cpu_time_total / 1e3 / steps
            if e.cpu_parent is not None and e.cpu_parent.name.startswith("hc::"):
                b.fwd_ops[scope[0]] += 1
    for e in events:  # backward: the subtree of each autograd node
        if not e.name.startswith("autograd::engine::evaluate_function"):
            continue
        if "AccumulateGrad" in e.name:
            scope = ("grad accumulation", "AccumulateGrad")
        else:
            scope = seq_scope.get(e.sequence_nr, ("embed/head", "loss"))
        b.bwd_nodes[scope[0]] += 1
        stack = [e]
        while stack:
            x = stack.pop()
            b.bwd_ms[scope[0]] += x.self_cpu_time_total / 1e3 / steps
            b.kind_ms[scope] += x.self_cpu_time_total / 1e3 / steps
            if scope[0] == "connection" and _is_op(x):
                b.conn_ops[x.name] += x.self_cpu_time_total / 1e3 / steps
            stack.extend(x.cpu_children)
    for d in (b.fwd_ops, b.bwd_nodes):
        for k in d:
            d[k] //= steps
    return b


def profile_eager(gm: fx.GraphModule, tokens: torch.Tensor, steps: int) -> Breakdown:
    parts = node_parts(gm)
    interp = Scoped(gm, parts)

    def step() -> None:
        gm.zero_grad(set_to_none=True)
        logits = interp.run(tokens)
        with record_function("hc::embed/head::loss"):
            loss = F.cross_entropy(logits.flatten(0, 1), tokens.flatten())
        loss.backward()

    step()  # warm-up (twice: the first profiled session also starts the profiler)
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    return attribute(prof.events(), steps)


def saved_by_part(gm: fx.GraphModule, tokens: torch.Tensor, b: Breakdown) -> None:
    """Bytes saved for backward, by the node that saved them (first saver of a storage)."""
    interp = Scoped(gm, node_parts(gm))
    params = {p.untyped_storage().data_ptr() for p in gm.parameters()}
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() and s.data_ptr() not in params and s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            b.saved[interp.current[0]] += s.nbytes()
            b.saved_kind[interp.current] += s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = interp.run(tokens)
        interp.current = ("embed/head", "loss")
        loss = F.cross_entropy(logits.flatten(0, 1), tokens.flatten())
    loss.backward()
    gm.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- compiled

def profile_compiled(model: nn.Module, tokens: torch.Tensor, steps: int
                     ) -> tuple[int, int, list[tuple[str, float]], float]:
    """(kernels per forward, per backward, top kernels (name, ms per step), compile s)."""
    import torch._inductor.config as inductor_config

    inductor_config.cpp.enable_kernel_profile = True  # name each C++ kernel in the profile
    step = measure.train_step(model, tokens, tokens, compiled=True)
    t0 = time.perf_counter()
    step()
    compile_s = time.perf_counter() - t0
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    fwd = bwd = 0
    cost: dict[str, float] = defaultdict(float)
    for e in prof.events():
        parent = e.cpu_parent
        if parent is None or not parent.name.startswith("## Call CompiledFxGraph"):
            continue
        backward = parent.cpu_parent is not None and "Backward" in parent.cpu_parent.name
        if backward:
            bwd += 1
        else:
            fwd += 1
        name = e.name.split("cpp_fused_", 1)[-1] if "cpp_fused" in e.name else e.name
        cost[("bwd " if backward else "fwd ") + name[:70]] += e.cpu_time_total / 1e3 / steps
    top = sorted(cost.items(), key=lambda kv: -kv[1])[:8]
    return fwd // steps, bwd // steps, top, compile_s


# ---------------------------------------------------------------- Sinkhorn-Knopp backward

def sinkhorn_unrolled(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """hcdsl's Sinkhorn-Knopp before the op (autograd through 2 x iters steps)."""
    log_m = logits
    for _ in range(iters):
        log_m = log_m - torch.logsumexp(log_m, dim=-2, keepdim=True)
        log_m = log_m - torch.logsumexp(log_m, dim=-1, keepdim=True)
    return log_m.exp()


class ImplicitSinkhorn(torch.autograd.Function):
    """The forward iterations without a graph; the backward by the implicit function theorem
    at the fixed point P = diag(e^f) exp(L) diag(e^g), P1 = 1, P^T 1 = 1: dL = P * (G - a 1^T -
    1 b^T) with [[diag(P1), P], [P^T, diag(P^T 1)]] [a; b] = [(P*G)1; (P*G)^T 1] (b_n = 0)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, iters: int) -> torch.Tensor:  # noqa: ANN001
        with torch.no_grad():
            p = sinkhorn_unrolled(logits, iters)
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        (p,) = ctx.saved_tensors
        k = p.shape[-1]
        pg = p * grad
        a_mat = p.new_zeros(p.shape[:-2] + (2 * k - 1, 2 * k - 1))
        a_mat[..., :k, :k] = torch.diag_embed(p.sum(-1))
        a_mat[..., :k, k:] = p[..., :, :-1]
        a_mat[..., k:, :k] = p.transpose(-1, -2)[..., :-1, :]
        a_mat[..., k:, k:] = torch.diag_embed(p.sum(-2)[..., :-1])
        rhs = torch.cat([pg.sum(-1), pg.sum(-2)[..., :-1]], -1).unsqueeze(-1)
        sol = torch.linalg.solve(a_mat, rhs).squeeze(-1)
        a, b = sol[..., :k], torch.cat([sol[..., k:], sol.new_zeros(sol.shape[:-1] + (1,))], -1)
        return p * (grad - a.unsqueeze(-1) - b.unsqueeze(-2)), None


def sinkhorn_choice(reps: int = 20) -> None:
    from hcdsl.nn.sinkhorn import sinkhorn

    variants: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
        "autograd through the unrolled loop": sinkhorn_unrolled,
        "op, recomputing backward (hcdsl)": sinkhorn,
        "implicit differentiation": ImplicitSinkhorn.apply}
    print(f"Sinkhorn-Knopp, 20 iterations, float32, eager, {torch.get_num_threads()} threads; "
          f"median of {reps} forward+backward")
    print(table([], ["shape", "variant", "fwd+bwd ms", "saved for backward MiB"]))
    g = torch.Generator().manual_seed(0)
    for shape in [(8, 128, 4, 4), (16, 512, 4, 4)]:
        x = (torch.randn(shape, generator=g) * 0.5).requires_grad_()
        w = torch.randn(shape, generator=g)
        for name, fn in variants.items():
            def run() -> None:
                x.grad = None
                (fn(x, 20) * w).sum().backward()

            for _ in range(3):
                run()
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                run()
                ts.append(1e3 * (time.perf_counter() - t0))
            saved = [0]

            def pack(t: torch.Tensor) -> torch.Tensor:
                saved[0] += t.numel() * t.element_size()
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                fn(x, 20)
            print(f"| {'x'.join(map(str, shape))} | {name} | {statistics.median(ts):.2f} | "
                  f"{saved[0] / 2**20:.2f} |")
    print("\nmax |gradient - unrolled loop's gradient|, float64, (256, n, n), 20 iterations:")
    print(table([], ["logit std", "n", "op (recomputing)", "implicit"]))
    for std in (0.01, 0.5, 1.0, 2.0):
        for k in (2, 4):
            x = torch.randn(256, k, k, generator=g, dtype=torch.float64) * std
            w = torch.randn(256, k, k, generator=g, dtype=torch.float64)
            grads = []
            for fn in variants.values():
                xx = x.clone().requires_grad_()
                (fn(xx, 20) * w).sum().backward()
                grads.append(xx.grad)
            print(f"| {std} | {k} | {(grads[1] - grads[0]).abs().max().item():.1e} | "
                  f"{(grads[2] - grads[0]).abs().max().item():.1e} |")


# ---------------------------------------------------------------- report

def table(rows: list[list[str]], head: list[str]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(
        "---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(ap)
    ap.add_argument("--mem-batch", type=int, default=16)
    ap.add_argument("--mem-seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3, help="profiled steps (averaged)")
    ap.add_argument("--families", default=",".join(FAMILIES),
                    help=f"comma-separated, of {', '.join(FAMILIES)}")
    ap.add_argument("--compiled", action="store_true", help="also count inductor kernels")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--code", metavar="FAMILY", help="print the generated code, annotated")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--sinkhorn", action="store_true", help="only the Sinkhorn backward choice")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sinkhorn:
        sinkhorn_choice()
        return
    dims = {k: getattr(args, k) for k in ("dim", "vocab", "heads", "hidden", "blocks")}
    torch.manual_seed(0)

    def build(connect: str) -> fx.GraphModule:
        return hcdsl.compile(SPEC.format(connect=connect, **dims), seed=0)

    if args.code:
        gm = build(FAMILIES[args.code][1])
        parts = node_parts(gm)
        for line in gm.code.strip().splitlines():
            name = line.strip().split(" = ", 1)[0]
            tag = "/".join(parts[name]) if name in parts else ""
            print(f"{line:110s} # {tag}" if tag else line)
        return

    print("command: " + " ".join([Path(sys.executable).name] + sys.argv))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model d={args.dim}, "
          f"{args.blocks} blocks of [attention(heads={args.heads}), mlp(hidden={args.hidden})], "
          f"vocab {args.vocab}, fp32; time at batch {args.batch} x {args.seq}, memory at "
          f"{args.mem_batch} x {args.mem_seq}")
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g)
    mem_tokens = torch.randint(0, args.vocab, (args.mem_batch, args.mem_seq), generator=g)
    summary: list[list[str]] = []
    base: dict[str, float] = {}
    for key in [k.strip() for k in args.families.split(",") if k.strip()]:
        label, connect = FAMILIES[key]
        gm = build(connect)
        b = profile_eager(gm, tokens, args.steps)
        nodes: dict[str, int] = defaultdict(int)
        for part, _ in node_parts(gm).values():
            nodes[part] += 1
        total = sum(b.fwd_ms.values()) + sum(b.bwd_ms.values())
        print(f"\n## {label} (`connect {connect}`)\n")
        print(f"generated code: {sum(nodes.values())} fx nodes (" + ", ".join(
            f"{p} {nodes[p]}" for p in PARTS if nodes.get(p)) + ")")
        peak = saved_total = None
        if not args.no_memory:
            saved_by_part(gm, mem_tokens, b)
            peak = measure.peak_step_bytes(gm, mem_tokens, mem_tokens, torch.device("cpu"))
            saved_total = sum(b.saved.values())
        rows = []
        for part in PARTS:
            ms = b.fwd_ms.get(part, 0.0) + b.bwd_ms.get(part, 0.0)
            rows.append([part, f"{b.fwd_ms.get(part, 0.0):.1f}", f"{b.bwd_ms.get(part, 0.0):.1f}",
                         f"{100 * ms / total:.0f}%", str(b.fwd_ops.get(part, 0)),
                         str(b.bwd_nodes.get(part, 0)),
                         "-" if args.no_memory else f"{b.saved.get(part, 0) / 2**20:.0f}"])
        print(table(rows, ["part", "fwd ms", "bwd ms", "share", "fwd ops", "bwd nodes",
                           f"saved MiB @{args.mem_batch}x{args.mem_seq}"]))
        conn = sorted(((k[1], v) for k, v in b.kind_ms.items() if k[0] == "connection"),
                      key=lambda kv: -kv[1])
        if conn:
            print("\nconnection by kind (fwd + bwd ms): " + ", ".join(
                f"{k} {v:.1f}" for k, v in conn if v >= 0.05))
        top = sorted(b.conn_ops.items(), key=lambda kv: -kv[1])[:8]
        if top:
            print("connection's costliest ops, fwd + bwd (ms, self time): " + ", ".join(
                f"{k} {v:.1f}" for k, v in top))
        if not args.no_memory:
            skinds = sorted(((k[1], v) for k, v in b.saved_kind.items() if k[0] == "connection"),
                            key=lambda kv: -kv[1])
            if skinds:
                print("connection's saved activations by kind (MiB): " + ", ".join(
                    f"{k} {v / 2**20:.0f}" for k, v in skinds if v >= 2**19))
        if key == "pre":
            base = {"ms": total, "saved": saved_total or 0, "peak": peak or 0}
        conn_ms = b.fwd_ms["connection"] + b.bwd_ms["connection"]
        row = [label, f"{total:.0f}", f"{conn_ms:.0f}", f"{100 * conn_ms / total:.0f}%",
               f"{b.fwd_ops['connection']} / {b.bwd_nodes['connection']}"]
        if not args.no_memory and base:
            row += [f"{saved_total / base['saved']:.2f}x", f"{peak / base['peak']:.2f}x"
                    if peak and base["peak"] else "-"]
        if args.compiled:
            torch._dynamo.reset()
            fwd, bwd, top, compile_s = profile_compiled(gm, tokens, args.steps)
            print(f"\ncompiled: {fwd} kernels forward, {bwd} backward per step; compile "
                  f"{compile_s:.0f} s; costliest kernels (ms/step, under the profiler):")
            for name, cost in top:
                print(f"  {cost:7.2f}  {name}")
            row += [f"{fwd} / {bwd}"]
        summary.append(row)
    print("\n## Summary (eager op self-time under the profiler; memory as ratios to Pre-Norm; "
          "for time ratios use `hcdsl bench`, which interleaves the models)\n")
    head = ["family", "eager step ms (op time)", "connection ms", "connection share",
            "connection fwd ops / bwd nodes"]
    if not args.no_memory:
        head += [f"saved for bwd @{args.mem_batch}x{args.mem_seq}", "peak"]
    if args.compiled:
        head += ["compiled kernels fwd / bwd"]
    print(table(summary, head))


if __name__ == "__main__":
    main()
