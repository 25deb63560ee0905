model hc_sequential_n4 {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  # HC sequential arrangement (Eq. 17 for n = 2, Eq. 36 in general): [[0, 1_(1xn)], [e_1, I_n]]
  connect hyper(n=4, fixed) { all = [[0, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]] }
}
