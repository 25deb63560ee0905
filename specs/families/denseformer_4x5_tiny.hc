# DenseFormer 4x5, the paper's recommended setting: a DWA after blocks 5 and 10 only, each
# over X_j with j = i (mod 4). Blocks without a DWA read X_i. Identity init.
model denseformer_4x5_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 10 [attn, ffn]
  connect denseformer(k=4, p=5)
}
