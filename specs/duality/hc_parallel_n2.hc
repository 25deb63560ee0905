model hc_parallel_n2 {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  # HC parallel arrangement, Eqs. 18-19 (layers numbered from 1)
  connect hyper(n=2, fixed) {
    odd = [[0, 1, 0], [1, 1, 1], [1, 1, 1]]
    even = [[0, 0, 1], [0, 1, 0], [1, 0, 1]]
  }
}
