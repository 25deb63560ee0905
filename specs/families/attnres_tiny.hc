# Full Attention Residuals (Kimi Team, arXiv 2603.15031): layer l reads
# h_l = sum_i softmax_i(w_l . RMSNorm(v_i)) v_i over v_0 = embedding and every earlier layer
# output; pseudo-query w_l = 0 at init, so h_l starts as the mean of the sources.
model attnres_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect attnres
}
