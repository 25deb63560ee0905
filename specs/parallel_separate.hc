# Parallel transformer block, GPT-NeoX / Pythia form, one norm per branch:
#   h <- h + Attn(N1(h)) + FFN(N2(h))
# GPT-J; PaLM (arXiv 2204.02311). Same parameters as Pre-Norm; the layers of a block run in parallel.
model parallel_separate {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect parallel(separate)
}
