# DeepSeek-V4's manifold-constrained hyper-connections, written with the generator primitives
# (transformers' DeepseekV4HyperConnection and DeepseekV4HyperHead; mHC, arXiv 2512.24880).
# Per layer, from z = RMSNorm(vec(H)) (no weight, the model's eps):
#   read  = sigmoid(s_pre  * z W_pre  + b_pre) + hc_eps          (pre, one per stream)
#   write = 2 sigmoid(s_post * z W_post + b_post)                 (post)
#   RES   = Sinkhorn(softmax_rows(s_res * z W_res + b_res) + hc_eps, 20 iterations, hc_eps)
# and the new state H' = write o + RESᵀ-mix of H (RES[s, t]: old stream s into new stream t).
# The readout (DeepseekV4HyperHead): h = sum_s (sigmoid(s z W_head + b) + hc_eps)_s H_s, then
# the model's final RMSNorm.
connection deepseek_v4_mhc {
  streams = 4
  generator {
    input = flat
    norm = rmsnorm(weight=none, eps=1e-06)
    read = linear(act=sigmoid, scale=1, bias=0, add=1e-06)
    write = linear(act=double_sigmoid, scale=1, bias=0)
    res = linear(scale=1, bias=0, constraint=sinkhorn(order=softmax_rows, iters=20, eps=1e-06))
  }
  generator readout {
    input = flat
    norm = rmsnorm(weight=none, eps=1e-06)
    readout = linear(act=sigmoid, scale=1, bias=0, add=1e-06)
  }
}

model deepseek_v4_mhc_tiny {
  dim = 64
  vocab = 256
  norm = rmsnorm(eps=1e-06)
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect deepseek_v4_mhc
}
