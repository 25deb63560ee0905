# Value residual (ResFormer, Zhou et al. 2024): every attention layer after the first uses
#   V_n <- lambda1 V_1 + lambda2 V_n,  V_1 the first attention layer's values,
# with lambda1 = lambda2 = 0.5 as in the original (fixed numbers here; name params to learn
# them). Pre-Norm residual otherwise. No identity at init (V_n is half V_1).
connection value_residual {
  value_residual = [0.5, 0.5]
  all = [[0, 1], [1, 1]]
}

model tiny_value_residual {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect value_residual
}
