# Hyper-Connections, n = 2, the parallel arrangement (HC paper arXiv 2409.19606, §3.2).
# Eqs. 18-19, layers numbered from 1, fixed (not learned):
#   odd layers  HC = [[0, 1, 0], [1, 1, 1], [1, 1, 1]]
#   even layers HC = [[0, 0, 1], [0, 1, 0], [1, 0, 1]]
# Every two adjacent layers run in parallel: h' = (T1(h) + h) + (T2(h) + h) in the row sum
# (the residual enters twice: not the GPT-J block h + T1(h) + T2(h)).
model hc_parallel_n2 {
  dim = 64
  vocab = 256
  context = 128
  layer T = opaque
  body = repeat 4 [T]
  connect hyper(n=2, fixed) {
    odd  = [[0, 1, 0],
            [1, 1, 1],
            [1, 1, 1]]
    even = [[0, 0, 1],
            [0, 1, 0],
            [1, 0, 1]]
  }
}
