# DDFormer (MUDDFormer §2.2, Eq. 5-6): one dynamic aggregate per block (C = 1), read as
# the block's single input. W2 = 0, a_i one-hot at init: Pre-Norm exactly.
model mudd_ddformer_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect mudd(ways=1)
}
