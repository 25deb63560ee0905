# Post-Norm residual Transformer (the original Transformer): h <- Norm(h + T(h)).
# HC paper (arXiv 2409.19606) Eq. 16: HC with n = 1 and data-dependent weights
# B = A_r = 1/sqrt(var_h + var_T + 2 cov_hT), A_m = 1 (App. E.2).
model post_norm {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect residual(post)
}
