# MUDDFormer as released: generator hidden K rounded up to (K // 64 + 1) * 64, and the
# FFN hidden grows 0.5x -> 1.5x over depth (Eq. 9): 128, 213, 299, 384 for 4 blocks.
model mudd_grow_tiny {
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 4 [attn, ffn]
  connect mudd(round=true, ffn_growth=true)
}
