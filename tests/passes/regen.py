"""Write the per-pass golden cases tests/passes/<pass>/<case>.ir (format: README.md).

    .venv/bin/python tests/passes/regen.py            # every case
    .venv/bin/python tests/passes/regen.py cse        # the cases of some passes

Each case's input is the IR of a real spec (tests/helpers.model_text) after the passes that
expose the pattern (`after`), before the pass; its expected IR is that input after exactly
the one pass, run by the driver to its fixed point. The case's `note` is the reviewer's:
what changed and why it is right, read against the pass's rule and the papers' equations,
not copied from the output. A case with fires=False must leave its input unchanged.

After regenerating, READ the diff of every file: a golden copied blindly is no test.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import hcdsl  # noqa: E402
import hcdsl.passes  # noqa: E402,F401 - registers every pattern
from hcdsl.ir.graph import IR  # noqa: E402
from hcdsl.ir.text import dump_exact  # noqa: E402
from hcdsl.passes.driver import rewrite  # noqa: E402
from hcdsl.passes.pipeline import run_pipeline  # noqa: E402
from hcdsl.passes.registry import get  # noqa: E402
from helpers import model_text  # noqa: E402

TWO = "[attn], [ffn]"  # two blocks of one layer: the smallest model with two steps


def spec(connect: str, body: str = TWO) -> str:
    return model_text(connect, name="p", body=body)


HC_PAR = """hyper(n=2, fixed) {
    odd  = [[0, 1, 0], [1, 1, 1], [1, 1, 1]]
    even = [[0, 0, 1], [0, 1, 0], [1, 0, 1]]
  }"""  # HC Eqs. 18-19: the parallel arrangement as constant matrices


@dataclass(frozen=True)
class Case:
    pass_name: str
    name: str
    connect: str
    after: tuple[str, ...]  # the passes run before this one, to expose its pattern
    note: str  # the reviewer's: what changed and why it is right (or why nothing may)
    fires: bool = True
    body: str = TWO

    @property
    def path(self) -> Path:
        return HERE / self.pass_name / f"{self.name}.ir"


CASES = [
    # -- canonicalisation ----------------------------------------------------------------
    Case("fold-const-slice", "pre_norm", "residual", (), """
Pre-Norm as n = 1 HC: M = [[0, 1], [1, 1]]. Each read mix(x, M[1:2, 0:1]) and write
mix(stack(T, h), M[0:2, 1:2]) gets a constant of its own slice: reads [[1]] (A_m = 1),
writes [[1], [1]] (B = 1, A_r = 1), and each mix's slice becomes the whole of its new
constant. The shared L1.coef / L2.coef lose their readers and are pruned; the readout is a
merge, no mix, and stays."""),
    Case("fold-const-slice", "learned_stays", "hyper(n=2, static)", (), """
Static HC: every step's M is learned (a parameter), not a constant: nothing to fold.""",
         fires=False),
    Case("drop-zero-rows", "hc_parallel", HC_PAR, ("fold-const-slice", "fold-const-chain"), """
HC's parallel arrangement (Eqs. 18-19): layer 2 reads mix(stack(T1, H), [[0], [1], [1]]):
row 0 weights T1 by 0, so L2.read becomes mix(H, [[1], [1]]) of the state alone and layer
2 no longer waits for layer 1 (the two run side by side). L1.write ([[1, 0], [1, 1], [1, 1]])
and readout.sum ([[1], [1], [1]]) weight every part of their stacks and keep them."""),
    Case("drop-zero-rows", "pre_norm_stays", "residual", ("fold-const-slice",), """
Pre-Norm's writes are mix(stack(T, h), [[1], [1]]): no part is weighted by 0.""",
         fires=False),
    Case("fold-const-chain", "hc_fixed", "hyper(n=2, fixed)", ("fold-const-slice",), """
HC n = 2 with constant matrices (Eq. 14's init): each read mix(mix(x, A), B) of a constant
mix becomes one mix of x by A B: init.copy = mix(h, [[1, 1]]) then L1.read = mix(., A_m =
[[1], [0]]) gives mix(h, [[1]]); L2.read = mix(L1.write, [[0], [1]]) folds through L1's
write [[1, 1], [1, 0], [0, 1]] into mix(L1.stack, [[1], [0], [1]]) (T1 + H0_1); the readout
mix(L2.write, [[1], [1]]) becomes mix(L2.stack, [[2], [1], [1]]) = 2 T2 + H1_0 + H1_1, and
L2.write, read by nothing else, is pruned. init.copy only moves in the order."""),
    Case("fold-const-chain", "learned_stays", "hyper(n=2, static)", (), """
Static HC: the matrices are learned, so no two constant mixes follow each other.""",
         fires=False),
    Case("drop-identity-mix", "pre_norm", "residual", ("fold-const-slice",), """
Pre-Norm's reads are mix(h, [[1]]) after fold-const-slice: the identity on one stream, so
every reader of L1.read / L2.read reads the state itself (the merge now reads init.split /
L1.write), and the reads are pruned with their constants."""),
    Case("drop-identity-mix", "hc_stays", "hyper(n=2, fixed)", ("fold-const-slice",), """
HC n = 2: the reads are 2 x 1 (A_m), the copy 1 x 2: none is a square identity.""",
         fires=False),
    Case("drop-split-merge", "pre_norm", "residual", ("fold-const-slice", "drop-identity-mix"), """
merge(split(x)) is x: L1.in = merge(init.split = split(embed)) is embed, so L1.norm reads
embed and L1.in goes (init.split stays: L1.stack reads it). L2.in = merge(L1.write) and the
readout's merge read mixes, not splits, and stay."""),
    Case("drop-split-merge", "dhc_stays", "hyper(n=2, dynamic)", (), """
Dynamic HC: every merge reads a mix and every split reads a layer or the embedding: no
split meets a merge.""", fires=False),
    Case("merge-equal-streams", "hc_fixed", "hyper(n=2, fixed)", ("fold-const-slice",), """
HC n = 2 with Eq. 14's constant matrices keeps two equal streams: init.copy = mix(h,
[[1, 1]]) makes h, h; a mix keeps one column per group of equal columns and its readers add
the merged rows (sum_s N[s] x_s with x_a = x_b is (N[a] + N[b]) x_a): L1.read [[1], [0]] ->
[[1]], L1.write [[1, 1], [1, 0], [0, 1]] -> [[1, 1], [1, 1]], whose two equal columns
(T1 + h in both streams) merge in turn -> [[1], [1]]; L2 likewise; the readout of the two
equal streams is 2 x the one: [[2]]. Every state is one stream."""),
    Case("merge-equal-streams", "learned_stays", "hyper(n=2, static)", (), """
Static HC: the only constant mixes are the copy [[1, 1]] and the readout [[1], [1]]; the
copy's two equal columns have a learned-matrix reader, so the streams may not merge.""",
         fires=False),
    Case("cse", "parallel_separate", "parallel(separate)", (), """
GPT-J parallel block with separate norms: L1.read and L2.read are the same slice [2, 3) of
the block's one constant of the same state, so L2.read goes and with it L2.in (then a merge
equal to L1.in); L2.norm reads L1.in. The two affine norms hold parameters of their own and
stay two nodes on the one input.""",
         body="[attn, ffn]"),
    Case("cse", "dhc_stays", "hyper(n=2, dynamic)", (), """
Dynamic HC: each step's mixes read its own learned M and a different state; the two
constants ([[1, 1]] and [[1], [1]]) differ: no two pure nodes are equal.""", fires=False),
    # -- optimisation --------------------------------------------------------------------
    Case("mix-to-add", "pre_norm", "residual", ("fold-const-slice",), """
Pre-Norm's write mix(stack(T(h), h), [[1], [1]]) of single streams is T(h) + h: add(s0 =
layer output, s1 = state), the stack and the constant pruned."""),
    Case("mix-to-add", "learned_stays", "hyper(n=2, static)", ("fold-const-slice",), """
Static HC: the writes weight the stack by learned B and A_r, not by ones.""", fires=False),
    Case("ones-mix", "hc_static", "hyper(n=2, static)", (), """
HC's start and readout: init.copy = mix(h, [[1, 1]]) is copy(h, 2) (H^0 = n copies of h),
readout.sum = mix(H, [[1], [1]]) is the sum of the streams; their constants go."""),
    Case("ones-mix", "pre_norm_stays", "residual", ("fold-const-slice", "mix-to-add"), """
Pre-Norm after mix-to-add: what is left are 1 x 1 mixes: neither a copy nor a sum.""",
         fires=False),
    Case("squeeze-single-stream", "pre_norm", "residual", ("fold-const-slice", "mix-to-add"), """
A one-stream state is a hidden vector: add(split1(T(h)), split1(h)) becomes
split1(add(T(h), h)): each add keeps its id, reads the layer's output and the previous h
(embed, then L1.write) and is h[16]; a new L*.write.split carries the old H[1x16] value to
the readers the add had (L2.read, readout.merge)."""),
    Case("squeeze-single-stream", "post_norm", "residual(post)",
         ("fold-const-slice", "mix-to-add"), """
Post-Norm: as pre_norm, and the post norm norm(split1(x)) becomes split1(norm(x)) (one
stream: the same axis), L*.post keeping its id and so its parameters."""),
    Case("squeeze-single-stream", "hc_stays", "hyper(n=2, static)", ("split-stack-mix",), """
HC n = 2: the adds sum two-stream mixes, not splits of hidden vectors.""", fires=False),
    Case("split-stack-mix", "dhc", "hyper(n=2, dynamic)", (), """
Dynamic HC's write H' = mix(stack(T, H), M[0:3, 1:3]) becomes mix(T, M[0:1, 1:3]) +
mix(H, M[1:3, 1:3]) = B^T T + A_r^T H (Eq. 5), reading the one M; the stack goes."""),
    Case("split-stack-mix", "denseformer", "denseformer", (), """
DenseFormer (DWA): A1.x = mix(stack(embed, L1.add), a) has two parts, so it becomes
mix(embed, a[0:1]) + mix(L1.add, a[1:2]): the same weighted average without the stack. A2.x
averages a history of three parts and must stay one contraction (the pattern takes two
parts only): A2.stack and A2.x are unchanged."""),
    Case("merge-sibling-mixes", "dhc", "hyper(n=2, dynamic)", ("split-stack-mix",), """
Dynamic HC after split-stack-mix: the read mix(H, M[1:3, 0:1]) and the write's
mix(H, M[1:3, 1:3]) read one state by adjacent columns of one M: one mix(H, M[1:3, 0:3])
([A_m | A_r]^T H, three outputs), the read takes output 0 and the write's part outputs 1
and 2 (take 1..3); both steps alike."""),
    Case("merge-sibling-mixes", "dhc_raw_stays", "hyper(n=2, dynamic)", (), """
Before split-stack-mix the write reads the stack, not the state: no sibling shares x.""",
         fires=False),
    Case("fuse-parallel-inputs", "parallel_shared", "parallel(shared)", (), """
A parallel block with one shared norm: attention and MLP read the one normed h, so they
become one parallel_layers node (one matmul for q, k, v and W1), each output read by a
tap; the layers' payloads are unchanged inside it (their ids name their parameters).""",
         body="[attn, ffn]"),
    Case("fuse-parallel-inputs", "separate_stays", "parallel(separate)", (), """
Separate norms: the two layers read different values (two norms), nothing to fuse.""",
         fires=False, body="[attn, ffn]"),
]


def source(case: Case) -> IR:
    ir = hcdsl.lower(spec(case.connect, case.body), passes=None)
    if case.after:
        run_pipeline(ir, list(case.after), check=True)
    return ir


def text(case: Case) -> str:
    before = source(case)
    after = before.copy()
    fired = rewrite(after, [get(case.pass_name)], check=True, prune_first=False)
    if bool(fired) != case.fires:
        did = "did not fire" if case.fires else "fired"
        raise SystemExit(f"{case.path}: {case.pass_name} {did}")
    connect = " ".join(case.connect.split())
    head = [f"// {case.pass_name}: {case.name}",
            f"// from: connect {connect}; body = {case.body}; after: "
            f"{', '.join(case.after) or 'nothing'}"]
    head += ["// " + ln for ln in case.note.strip().splitlines()]
    out = head + ["// input", dump_exact(before).rstrip("\n")]
    if case.fires:
        out += ["// expected", dump_exact(after).rstrip("\n")]
    else:
        out += ["// expected: unchanged"]
    return "\n".join(out) + "\n"


def main(names: list[str]) -> None:
    for case in CASES:
        if names and case.pass_name not in names:
            continue
        case.path.parent.mkdir(exist_ok=True)
        case.path.write_text(text(case))
        print("wrote", case.path.relative_to(HERE.parent.parent))


if __name__ == "__main__":
    main(sys.argv[1:])
