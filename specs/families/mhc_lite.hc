# mHC-lite (arXiv 2601.05732), written with the generator primitives: mHC's generator
# (arXiv 2512.24880 Eqs. 7-8: z = RMSNorm(vec(H)), H_pre = sigmoid(α z φ_pre + b_pre),
# H_post = 2 sigmoid(α z φ_post + b_post)), but the residual mix is exactly doubly stochastic:
#   a   = softmax(α_res z φ_res + b_res)        n! logits, one per permutation
#   RES = Σ_k a_k P_k                           the n! permutation matrices (Birkhoff-von Neumann)
connection mhc_lite {
  streams = 4
  generator {
    input = flat
    norm = rmsnorm(weight=none, eps=1e-06)
    read = linear(act=sigmoid, scale=0.01, bias=0)
    write = linear(act=double_sigmoid, scale=0.01, bias=0)
    res = linear(scale=0.01, bias=0, constraint=permutations)
  }
}

model mhc_lite_tiny {
  dim = 64
  vocab = 256
  norm = rmsnorm
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect mhc_lite
}
