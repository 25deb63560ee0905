# Parallel transformer block, GPT-J / PaLM form, one norm shared by both branches:
#   h <- h + Attn(N(h)) + FFN(N(h))
# GPT-J; PaLM (arXiv 2204.02311). Every block's two layers read the same h.
model parallel_shared {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect parallel(shared)
}
