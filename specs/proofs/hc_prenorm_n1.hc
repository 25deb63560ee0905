model hc_prenorm_n1 {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  connect hyper(n=1, fixed) { all = [[0, 1], [1, 1]] }
}
