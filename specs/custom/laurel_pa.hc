# LAuReL-PA in full (Menghani et al. 2024, arXiv 2411.07501, the previous-activations
# version), with k = 3 activations:
#   x_(i+1) = f(Norm(x_i)) + sum_(j=0..2) gamma_j h_j(x_(i-j)),   h_j(x) = x + B_j A_j x
# one low-rank map h_j (rank 8, B_j = 0 at init) per previous activation and layer;
# gamma_0 = 1, gamma_1 = gamma_2 = 0 at init, so the model starts as Pre-Norm.
# Streams: 1 = x_i, 2 = x_(i-1), 3 = x_(i-2) (a shift register; the earlier ones start at 0).
# M holds gamma_j x_(i-j); `maps` add gamma_j B_j A_j x_(i-j) into stream 1 with the same
# gamma_j (one scalar per layer, shared by M and the map). Layers 1 and 2 have no gamma_j
# and no map for activations that do not exist yet.
connection laurel_pa {
  streams = 3
  param g0 = 1
  param g1 = 0
  param g2 = 0
  init = [1, 0, 0]
  readout = [1, 0, 0]
  maps = [lowrank(rank=8, source=1, target=1, weight=g0),
          lowrank(rank=8, source=2, target=1, weight=g1, start=2),
          lowrank(rank=8, source=3, target=1, weight=g2, start=3)]
  all = [[0, 1, 0, 0], [1, g0, 1, 0], [0, g1, 0, 1], [0, g2, 0, 0]]
  layer 1 = [[0, 1, 0, 0], [1, g0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
  layer 2 = [[0, 1, 0, 0], [1, g0, 1, 0], [0, g1, 0, 1], [0, 0, 0, 0]]
}

model tiny_laurel_pa {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect laurel_pa
}
