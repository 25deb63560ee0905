# A small real model with static Hyper-Connections, n = 4 (SHC x4).
# HC paper (arXiv 2409.19606) Eqs. 1-5 with learned scalars B, A_m, A_r, initialised by
# Eq. 14: B = 1, A_m = e_(k mod 4) (k the 0-based layer index), A_r = I.
model tiny_shc4 {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm(affine=false)
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256, act=swiglu)
  body = repeat 3 [attn, ffn]
  connect hyper(n=4, static)
}
