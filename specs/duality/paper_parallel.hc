model paper_parallel {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  # The HC paper's parallel arrangement (App. F.2, Eq. 47): every two adjacent layers run
  # in parallel and each keeps its own residual, h' = (attn(N1(h)) + h) + (ffn(N2(h)) + h);
  # the residual enters twice. Kept as 2 streams summing to h (H^0 = 2 copies of h0, as HC).
  # Not the GPT-J block h + attn(N(h)) + ffn(N(h)) of gptj_parallel.hc.
  body = repeat 3 [attn, ffn]
  connect parallel(separate, residual=each)
}
