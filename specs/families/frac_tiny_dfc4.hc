# A small model with dynamic Frac-Connections, m = 4 (DFC x4, tanh; arXiv 2503.14125).
# As frac_tiny_sfc4 plus, per fraction f, from H̄ = RMSNorm(H) over d/m = 16 entries:
#   B_f += s_β tanh(H̄_f W_β),  [Y | A]_f += s_α tanh(H̄_f [W_γ | W_α])
# W = 0 and s = 0.01 at init, so it starts as Pre-Norm exactly.
model frac_tiny_dfc4 {
  dim = 64
  vocab = 256
  context = 128
  norm = rmsnorm(affine=true)
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256, act=swiglu)
  body = repeat 2 [attn, ffn]
  connect frac(m=4, dynamic, tanh)
}
