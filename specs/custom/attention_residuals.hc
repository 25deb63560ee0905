# Attention residuals (Kimi Team 2026), written with the primitives: the state is a history
# of raw layer outputs v_0 = embedding, v_1, ...; every layer reads a softmax over them,
# h_l = sum_i softmax_i(w_l . RMSNorm(v_i)) v_i, with a learned pseudo-query w_l = 0 at init
# (uniform weights: no identity at init). The same IR as `connect attnres`.
connection attention_residuals {
  state = history
  granularity = layer
  weights = softmax
}

model tiny_attention_residuals {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect attention_residuals
}
