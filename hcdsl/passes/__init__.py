"""IR passes: one small pass per file, registered by name in registry.PASSES."""


def load_all() -> None:
    from hcdsl.passes import (  # noqa: F401
        cse,
        dce,
        drop_identity_mix,
        drop_split_merge,
        drop_zero_rows,
        fold_const_chain,
        fold_const_slice,
        mix_to_add,
        ones_mix,
        squeeze_single_stream,
    )
    from hcdsl.passes import (  # noqa: F401  - proof canonicalisation (issue 4)
        drop_norm_affine, embed_normalised, freeze_at_init, ignore_norm_eps, invstd_to_norm,
        merge_equal_streams, norm_idempotent, scale_invariant_norm,
    )
