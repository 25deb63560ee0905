# MUDDFormer-2x2 (§3.6, Fig. 9): every DA reads every 2nd output back from X_i, and DAs
# sit after every 2nd block (blocks without one read X_i). Pre-Norm exactly at init.
model mudd_sparse_2x2_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 6 [attn, ffn]
  connect mudd(k=2, p=2)
}
