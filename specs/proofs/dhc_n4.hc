model dhc_n4 {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  connect hyper(n=4, dynamic)
}
