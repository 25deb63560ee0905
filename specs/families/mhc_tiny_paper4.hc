# A small model with manifold-constrained Hyper-Connections, n = 4 (mHC x4, arXiv 2512.24880),
# the paper-style init. Per layer, from x' = RMSNorm(vec(x)) (1 x nC, no learned scale):
#   H_pre = σ(α_pre x'φ_pre + b_pre), H_post = 2σ(α_post x'φ_post + b_post),
#   H_res = Sinkhorn-Knopp(α_res mat(x'φ_res) + b_res)   (20 column-then-row iterations)
#   x_{l+1} = H_res x_l + H_postᵀ F(H_pre x_l);  readout: the sum of the n streams.
# Init: φ ~ N(0, 1/(nC)), α = 0.01, b = 0 (unpublished; hcdsl's choice), so at x' = 0
# H_pre = 1/2, H_post = 1, H_res = 1/n (uniform).
model mhc_tiny_paper4 {
  dim = 64
  vocab = 256
  context = 128
  norm = rmsnorm(affine=true)
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256, act=swiglu)
  body = repeat 2 [attn, ffn]
  connect mhc(n=4, paper, iters=20)
}
