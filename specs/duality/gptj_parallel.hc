model gptj_parallel {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  # GPT-J / PaLM parallel block: h' = h + attn(N(h)) + ffn(N(h)), one residual per block
  body = repeat 3 [attn, ffn]
  connect parallel(separate)
}
