# MUDDFormer-SW2 (§3.6): each DA reads the outputs of the last 2 blocks plus the
# embedding X_0. Pre-Norm exactly at init.
model mudd_sw2_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 5 [attn, ffn]
  connect mudd(window=2)
}
