# MUDDPythia-2.8B (MUDDFormer, arXiv 2502.12170, §3.3 and Table 1): Pythia-2.8B with MUDD
# connections. d = 2560, 32 blocks of attention (32 heads) + GELU FFN (10240), LayerNorm,
# untied head, vocab 50304, Pythia's linear biases. Extra parameters over Pre-Norm
# (hcdsl stats; tests/families/test_mudd.py derives them independently):
#   sum_{i=1..31} [D K_i + K_i 4(i+1) + 4(i+1)], K_i = 4(i+1)   (DAs 1..31: Q, K, V, R)
#   + D K_32 + K_32 33 + 33, K_32 = 4 * 33                       (last DA: R, hidden x4)
#   + 31 blocks x 2 extra LayerNorms (separate Q/K/V norms) x 2D
#   = 5,923,921 + 317,440 = 6,241,361 over 2,775,208,960 (+0.225%; the paper reports +0.23%,
#   its (L + 3) / 6D estimate; with the released rounding K -> (K // 64 + 1) 64 (mudd(round))
#   the DAs hold 8,775,709: +0.328%. See docs/families/mudd.md)
# Not modelled (hcdsl has no such layer options): Pythia's parallel attention + MLP, rotary on
# 1/4 of the head dim, the released checkpoint's QK-norm and padded vocab 50432.
model muddpythia_2_8b {
  dim = 2560
  vocab = 50304
  context = 2048
  norm = layernorm
  layer attn = attention(heads=32, bias=true)
  layer ffn  = mlp(hidden=10240, act=gelu, bias=true)
  body = repeat 32 [attn, ffn]
  connect mudd
}
