# DeepCrossAttention (DCA; Heddes et al., arXiv 2502.06785), written with a history
# generator. The history keeps the embedding and what every block adds; before each block,
# three GRN-v3 combinations of the whole history make the attention's query, key and value
# inputs (depth-wise cross-attention):
#   GRN_c(G) = sum_j (b_{c,j} + ReLU(w_c . RMSNorm(g_j))) ⊙ g_j,   c in {q, k, v}
# b_{c,j} one learned weight per channel (1 at init), w_c = 0 at init: every combination
# starts as the plain residual stream sum_j g_j. The block: a = Attn(q, k, v) + q,
# f = FFN(Norm(a)); the history gains (a - q) + f. The output is a fourth GRN-v3 (one way).
connection dca {
  state = history
  granularity = block
  ways = qkv                        # the block's attention reads q, k, v; its residual is q
  keep = updates                    # the history keeps what each block adds
  generator {
    input = sources                 # every history entry g_j on its own
    norm = rmsnorm(weight=scale)    # one RMSNorm, shared by the three combinations
    proj = linear                   # w_c . RMSNorm(g_j): one value per source and way
    act = relu
    static = channel(init=ones)     # b_{c,j} per channel, 1 at init
  }
}

model dca_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = rmsnorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect dca
}
