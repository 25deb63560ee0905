model hc_seq_n2_changed {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  # Eq. 17 with one entry changed (layer 3, A_r[2,2] = 1/2)
  connect hyper(n=2, fixed) {
    all = [[0, 1, 1], [1, 1, 0], [0, 0, 1]]
    layer 3 = [[0, 1, 1], [1, 1, 0], [0, 0, 0.5]]
  }
}
