# DenseFormer 2x1: a DWA after every block over every 2nd output back from X_i.
model denseformer_2x1_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 6 [attn, ffn]
  connect denseformer(k=2, p=1)
}
