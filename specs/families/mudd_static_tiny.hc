# MUDD, static multiway (Table 5 "+Multiway Static Dense"): X^c = sum_j a^c_ij X_j,
# the learned a_i only (no generator). a_i one-hot at init: Pre-Norm exactly.
model mudd_static_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect mudd(static)
}
