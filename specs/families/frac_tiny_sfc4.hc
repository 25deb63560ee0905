# A small model with static Frac-Connections, m = 4 (SFC x4; arXiv 2503.14125).
# The hidden state h (d = 64) is split into m = 4 fractions of width 16. Per layer
#   h_in = concat(Yᵀ H),  Ĥ = diag(B) split(T(h_in)) + Aᵀ H,  readout = concat(H^L)
# with learned B (m), Y, A (m x m): m(2m + 1) = 36 extra parameters per layer.
# Init B = 1, Y = A = I: exactly the Pre-Norm Transformer.
model frac_tiny_sfc4 {
  dim = 64
  vocab = 256
  context = 128
  norm = rmsnorm(affine=true)
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256, act=swiglu)
  body = repeat 2 [attn, ffn]
  connect frac(m=4, static)
}
