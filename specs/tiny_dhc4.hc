# A small real model with dynamic Hyper-Connections, n = 4 (DHC x4, tanh).
# HC paper (arXiv 2409.19606) Eqs. 10-13: B, A_m, A_r plus s * tanh(norm(H) W), with
# W = 0 and s = 0.01 at init, so the model starts as Eq. 14's static init.
model tiny_dhc4 {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm(affine=false)
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256, act=swiglu)
  body = repeat 3 [attn, ffn]
  connect hyper(n=4, dynamic, tanh)
}
