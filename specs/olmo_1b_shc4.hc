# OLMo-1B with static Hyper-Connections, n = 4: the HC paper's OLMo-1B-SHCx4
# (arXiv 2409.19606, Table 2 / §4). d = 2048, 16 blocks = 32 layers, non-parametric LayerNorm.
# Extra parameters over Pre-Norm: 32 x (n + n(n+1)) = 32 x 24 = 768 (`hcdsl stats` checks it).
model olmo_1b_shc4 {
  dim = 2048
  vocab = 50304
  context = 2048
  norm = layernorm(affine=false)
  layer attn = attention(heads=16)
  layer ffn  = mlp(hidden=8192, act=swiglu)
  body = repeat 16 [attn, ffn]
  connect hyper(n=4, static)
  head = unembed(tied=true)
}
