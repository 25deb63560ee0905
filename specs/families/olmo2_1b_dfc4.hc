# OLMo2-1B with dynamic Frac-Connections, m = 4: the FC paper's OLMo2-1B2-DFCx4
# (arXiv 2503.14125, Table 1). d = 2048, 16 blocks = 32 layers, RMSNorm with a weight, so
# each layer's dynamic generator normalises a fraction with an RMSNorm(512) of its own.
# Extra parameters over Pre-Norm, per layer: static m(2m+1) = 36, W_β and [W_γ | W_α]
# (d/m)(2m+1) = 512 x 9, s_α and s_β 2, the norm's weight 512:
# 32 x (36 + 4608 + 2 + 512) = 165,056, the paper's "0.000165 B" (+0.014%).
# Vocabulary 50304 with tied embeddings: the size that reproduces the paper's baseline total
# (1.17676442 B; hcdsl's count is 67,584 higher, the RMSNorm weights the paper omits).
model olmo2_1b_dfc4 {
  dim = 2048
  vocab = 50304
  context = 4096
  norm = rmsnorm(affine=true)
  layer attn = attention(heads=16)
  layer ffn  = mlp(hidden=8192, act=swiglu)
  body = repeat 16 [attn, ffn]
  connect frac(m=4, dynamic, tanh)
  head = unembed(tied=true)
}
