# Multi-Head Attention Residuals (arXiv 2607.27230), written with a history generator:
# AttnRes (arXiv 2603.15031) with the channels split into H groups, each group its own
# pseudo-query, RMS-normalised key and softmax over depth:
#   h_l[g] = sum_i softmax_i(w_l[g] . RMSNorm(v_i[g])) v_i[g],   g = 1..H channel groups
# over v_0 = embedding and every earlier layer output (no additive residual). w_l = 0 at
# init: every group starts as the mean of the sources. H = 1 is `connect attnres`.
connection attnres_multihead {
  state = history
  granularity = layer
  generator {
    input = sources                 # every source scores itself: its key
    norm = rmsnorm(weight=scale)    # per channel group when heads > 1
    proj = query(heads=4)           # one pseudo-query per group of dim / 4 channels
    act = softmax                   # over the sources, per group
    static = none
  }
}

model attnres_multihead_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = rmsnorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect attnres_multihead
}
