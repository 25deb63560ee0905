model dhc_n2_notanh {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  connect hyper(n=2, dynamic, tanh=false)
}
