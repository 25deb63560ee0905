# Dynamic Frac-Connections, m = 2 (arXiv 2503.14125 §3), written with hcdsl's primitives:
# the same model as `connect frac(m=2, dynamic)`. `fractions = 2` splits h (d = 64) into two
# fractions of width 32 (H^0 = reshape(h^0)), reads m = 2 columns and concatenates them back
# (h_in = reshape(Yᵀ H)), writes the layer output's fractions on OUT's diagonal (diag(B)),
# and concatenates at the readout. Per fraction f, from H̄_f = RMSNorm(H_f) over its 32 entries:
#   Y_f = Y_f + s_α tanh(H̄_f W_γ)     read:  2 values per fraction, Y = I at init
#   B_f = B_f + s_β tanh(H̄_f W_β)     write: on OUT's diagonal, B = 1 at init
#   A_f = A_f + s_α tanh(H̄_f W_α)     res:   A = I at init, s_α shared with the read
# W = 0 at init, so it starts as Pre-Norm exactly.
connection frac_written {
  fractions = 2
  generator {
    input = each
    norm = rmsnorm(weight=scale, eps=1e-5)
    read = linear(std=0, act=tanh, affine=after_act, scale=0.01, bias=[1, 0, 0, 1])
    write = linear(std=0, act=tanh, affine=after_act, scale=0.01, bias=1)
    res = linear(std=0, act=tanh, affine=after_act, scale=read, bias=[1, 0, 0, 1])
  }
}

model tiny_frac_written {
  dim = 64
  vocab = 256
  norm = rmsnorm(affine=true)
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256, act=swiglu)
  body = repeat 2 [attn, ffn]
  connect frac_written
}
