# mHC x4 (arXiv 2512.24880) with hcdsl's identity-preserving init: φ = 0, b_pre = -log(n-1)
# (H_pre = 1/n, so the read of n equal streams is h), b_post = 0 (H_post = 1), b_res = 0
# (H_res uniform, doubly stochastic, keeps equal streams equal). Every stream is then the
# Pre-Norm hidden state; readout = mean makes the logits Pre-Norm's too.
model mhc_tiny_identity4 {
  dim = 64
  vocab = 256
  context = 128
  norm = rmsnorm(affine=true)
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256, act=swiglu)
  body = repeat 2 [attn, ffn]
  connect mhc(n=4, identity, readout=mean)
}
