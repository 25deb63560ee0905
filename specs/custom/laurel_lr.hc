# LAuReL-LR (Menghani et al. 2024): x' = f(x) + x + B A x, rank r = 8, B = 0 at init, so the
# model starts as Pre-Norm. The residual matrix is Pre-Norm's; `lowrank` adds B A H.
connection laurel_lr {
  lowrank = 8
  all = [[0, 1], [1, 1]]
}

model tiny_laurel_lr {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect laurel_lr
}
