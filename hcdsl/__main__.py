"""`python -m hcdsl ...`: the `hcdsl` command (and what torchrun runs:
`torchrun --nproc_per_node 2 -m hcdsl train SPEC`)."""

from hcdsl.cli import main

if __name__ == "__main__":
    main()
