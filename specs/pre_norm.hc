# Pre-Norm residual Transformer: h <- h + T(Norm(h)) for every layer.
# HC paper (arXiv 2409.19606) Eq. 15: Pre-Norm is HC with n = 1 and HC = [[0, 1], [1, 1]].
# The baseline every `hcdsl stats` figure is measured against.
model pre_norm {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect residual(pre)
}
