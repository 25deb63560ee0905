# LAuReL-RW, normalised variant (Menghani et al. 2024, arXiv 2411.07501):
#   x' = alpha f(x) + beta x,   (alpha, beta) = softmax(a, b)
# written with division and exp-bounded params: a and b hold e^(raw), so a / (a + b) is the
# softmax's first entry. Equal logits at init: alpha = beta = 1/2 (no identity at init).
connection laurel_rw_softmax {
  param a = scalar(init=1, bound=exp)
  param b = scalar(init=1, bound=exp)
  all = [[0, a / (a + b)], [1, b / (a + b)]]
}

model tiny_laurel_rw_softmax {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect laurel_rw_softmax
}
