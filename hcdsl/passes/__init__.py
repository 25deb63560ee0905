"""IR passes: one small pass per file, registered by name in registry.PASSES."""


def load_all() -> None:
    from hcdsl.passes import (  # noqa: F401
        cse, dce, drop_identity_mix, drop_split_merge, fold_const_chain, fold_const_slice,
        mix_to_add,
    )
