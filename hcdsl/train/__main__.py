"""`python -m hcdsl.train` was the training commands' own entry point; they are now the
`hcdsl` command's (`python -m hcdsl train ...`, `torchrun ... -m hcdsl train SPEC`)."""

import sys

if __name__ == "__main__":
    print("error: `python -m hcdsl.train` is now `python -m hcdsl` (e.g. `torchrun "
          "--nproc_per_node 2 -m hcdsl train SPEC`)", file=sys.stderr)
    sys.exit(2)
