# MUDDFormer (arXiv 2502.12170) Eqs. 5-8: four dynamic depth-wise aggregates (Q, K, V, R)
# after every block, A_i = GELU(RMSNorm(X_i) W1) W2 + a_i. W2 = 0, a_i one-hot at init:
# exactly a Pre-Norm Transformer. The last aggregate makes R only, hidden 4 (L + 1).
model mudd_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect mudd
}
