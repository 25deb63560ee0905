# DenseFormer 1x1 (arXiv 2402.02622): Y_i = sum_{j<=i} α_ij X_j after every block,
# X_{i+1} = Block_{i+1}(Y_i), output Y_L. α_ii = 1, others 0 at init: the plain Transformer.
model denseformer_1x1_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect denseformer
}
