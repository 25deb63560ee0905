# MUDDFormer with PrePostDANorm (§2.5, Eq. 10): the DAs mix RMSNorm(X_j) (own scale,
# init 1) and each way is RMSNorm(DA) + X_i; a_i = 0 at init, so Pre-Norm exactly at init.
model mudd_prepost_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect mudd(prepost=true)
}
