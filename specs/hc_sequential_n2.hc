# Hyper-Connections, n = 2, the sequential arrangement (HC paper arXiv 2409.19606, §3.2).
# Eq. 17: every layer HC = [[0, 1, 1], [1, 1, 0], [0, 0, 1]] = [[0, B], [A_m, A_r]], fixed
# (not learned). Both streams stay equal, each one the Pre-Norm stack (App. F.1, Eq. 36).
model hc_sequential_n2 {
  dim = 64
  vocab = 256
  context = 128
  layer T = opaque                 # uninterpreted: the arrangement holds for any T
  body = repeat 4 [T]
  connect hyper(n=2, fixed) {
    all = [[0, 1, 1],
           [1, 1, 0],
           [0, 0, 1]]
  }
}
