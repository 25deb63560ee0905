# ResiDual (Xie et al. 2023): two streams, x (Post-LN) and d (Pre-LN style, "dual"):
#   o = F(x);  x <- LN(x + o);  d <- d + o;  output = x + LN(d)
# Streams: 1 = x, 2 = d, both start as the embedding. Per layer the layer reads x (no
# pre-norm), adds o to both streams, and normalises stream 1 only.
#   M = [[0, 1, 1],    the output o goes to x and to d
#        [1, 1, 0],    x is read, and kept in x
#        [0, 0, 1]]    d is kept in d
connection residual_dual {
  streams = 2
  init = [1, 1]
  prenorm = false
  post = norm
  post_streams = [1]
  readout = [1, 1]
  readout_norm = [2]
  all = [[0, 1, 1], [1, 1, 0], [0, 0, 1]]
}

model tiny_residual_dual {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect residual_dual
}
