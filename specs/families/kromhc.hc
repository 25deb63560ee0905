# KromHC (arXiv 2601.21579), written with the generator primitives: mHC's generator for the
# read and write weights, and a residual mix that is a Kronecker product of small doubly
# stochastic factors, each a convex mix of its own permutation matrices:
#   a_i = softmax(α z φ_i + b_i)                f_i! logits for factor i (here 2 x 2: two)
#   U_i = Σ_k a_ik P_k,   RES = U_1 ⊗ U_2        n = 4 = 2 x 2 streams
connection kromhc {
  streams = 4
  generator {
    input = flat
    norm = rmsnorm(weight=none, eps=1e-06)
    read = linear(act=sigmoid, scale=0.01, bias=0)
    write = linear(act=double_sigmoid, scale=0.01, bias=0)
    res = linear(scale=0.01, bias=0, constraint=kronecker(factors=[2, 2]))
  }
}

model kromhc_tiny {
  dim = 64
  vocab = 256
  norm = rmsnorm
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect kromhc
}
