"""IR rewrites: one pattern per file under patterns/, registered by name in registry.PATTERNS,
applied by the driver (driver.py) in the stages of pipeline.py."""

from hcdsl.passes.patterns import (  # noqa: F401 - each registers itself
    cse, drop_identity_mix, drop_split_merge, drop_zero_rows, fold_const_chain,
    fuse_parallel_inputs,
    fold_const_slice, merge_equal_streams, merge_sibling_mixes, mix_to_add, ones_mix,
    split_stack_mix, squeeze_single_stream,
)
