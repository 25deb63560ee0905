# The two-lane residual of the modded-nanogpt speedrun records (Jordan et al. 2024-25,
# `Block.forward`): besides the residual stream x, a second lane keeps the embedding x0, and
# before every block (attention + MLP) the stream is re-mixed with learned scalars
#   x <- lambda0 x + lambda1 x0,   x <- x + Attn(Norm(x)),   x <- x + MLP(Norm(x))
# with (lambda0, lambda1) = (1, 0) at init (exactly Pre-Norm), one pair per block.
# Streams: 1 = x, 2 = x0 (both start as the embedding). The mix sits in the block's first
# layer: it reads lambda0 x + lambda1 x0, and keeps the same mix as its residual; x0 is kept.
connection two_lane_x0 {
  streams = 2
  param l0 = 1
  param l1 = 0
  readout = [1, 0]
  odd = [[0, 1, 0], [l0, l0, 0], [l1, l1, 1]]
  even = [[0, 1, 0], [1, 1, 0], [0, 0, 1]]
}

model tiny_two_lane_x0 {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect two_lane_x0
}
