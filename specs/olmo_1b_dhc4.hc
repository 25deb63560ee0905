# OLMo-1B with dynamic Hyper-Connections, n = 4: the HC paper's OLMo-1B-DHCx4
# (arXiv 2409.19606, Eqs. 10-13, Table 2 / §4). d = 2048, 16 blocks = 32 layers,
# non-parametric LayerNorm. Extra parameters over Pre-Norm:
# 32 x (n + n(n+1) + d(n+1) + d + 2) = 32 x (24 + 10240 + 2048 + 2) = 394,048.
model olmo_1b_dhc4 {
  dim = 2048
  vocab = 50304
  context = 2048
  norm = layernorm(affine=false)
  layer attn = attention(heads=16)
  layer ffn  = mlp(hidden=8192, act=swiglu)
  body = repeat 16 [attn, ffn]
  connect hyper(n=4, dynamic, tanh)
  head = unembed(tied=true)
}
