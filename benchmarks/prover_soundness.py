"""The prover's soundness harness at scale (tests/soundness.py): N random spec pairs, each
verdict checked against independent numbers; prints the counts and any unsound verdict.

    .venv/bin/python benchmarks/prover_soundness.py [N] [FIRST_SEED]
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import soundness  # noqa: E402

from hcdsl.proofs.prove import EQUIVALENT  # noqa: E402


def main(count: int, first: int) -> int:
    torch.set_num_threads(1)
    verdicts: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    questions: collections.Counter = collections.Counter()
    unsound, zero_witness = [], 0
    start = time.perf_counter()
    for seed in range(first, first + count):
        out = soundness.run(seed)
        verdicts[out.result.verdict] += 1
        kinds[(out.note.split(";")[0], out.result.verdict)] += 1
        w = out.result.witness
        zero_witness += int(out.result.verdict == "NOT EQUIVALENT" and not w.differs)
        questions[out.question] += 1
        if out.unsound:
            unsound.append(seed)
            print(f"UNSOUND seed {seed}: {out.note}, {out.result.verdict}: {out.why}",
                  flush=True)
    seconds = time.perf_counter() - start
    print(f"{count} pairs (seeds {first}..{first + count - 1}) in {seconds:.1f} s")
    print("verdicts: " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())))
    print(f"unsound verdicts: {len(unsound)}; NOT EQUIVALENT with a zero witness: "
          f"{zero_witness}; EQUIVALENT checked numerically: {verdicts[EQUIVALENT]}")
    print("questions: " + ", ".join(f"{q} {n}" for q, n in sorted(questions.items())))
    print("by pair kind:")
    for (note, verdict), n in sorted(kinds.items()):
        print(f"  {note:45s} {verdict:15s} {n}")
    return 1 if unsound else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
                  int(sys.argv[2]) if len(sys.argv) > 2 else 0))
