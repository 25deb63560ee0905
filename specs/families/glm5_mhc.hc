# GLM-5-next's manifold-constrained hyper-connections, written with the generator primitives
# (transformers' Glm5NextTextHyperConnection and Glm5NextTextHyperHead). The per-layer
# generator is DeepSeek-V4's (see deepseek_v4_mhc.hc), with GLM's rms_norm_eps = 1e-5 in the
# generator's norm; the head is an unweighted mean of the streams, then the final RMSNorm.
connection glm5_mhc {
  streams = 4
  readout = [0.25, 0.25, 0.25, 0.25]
  generator {
    input = flat
    norm = rmsnorm(weight=none, eps=1e-05)
    read = linear(act=sigmoid, scale=1, bias=0, add=1e-06)
    write = linear(act=double_sigmoid, scale=1, bias=0)
    res = linear(scale=1, bias=0, constraint=sinkhorn(order=softmax_rows, iters=20, eps=1e-06))
  }
}

model glm5_mhc_tiny {
  dim = 64
  vocab = 256
  norm = rmsnorm(eps=1e-05)
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect glm5_mhc
}
