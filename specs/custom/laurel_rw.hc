# LAuReL-RW (Menghani et al. 2024), written with hcdsl's primitives alone:
#   x' = alpha f(x) + beta x,  alpha = 2 sigmoid(a), beta = 2 sigmoid(b): bounded in (0, 2),
#   1 at init, so the model starts as Pre-Norm. Per layer M = [[0, alpha], [1, beta]].
connection laurel_rw {
  param alpha = scalar(init=1, bound=double)
  param beta = scalar(init=1, bound=double)
  all = [[0, alpha], [1, beta]]
}

model tiny_laurel_rw {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect laurel_rw
}
