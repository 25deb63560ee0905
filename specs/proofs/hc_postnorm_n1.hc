model hc_postnorm_n1 {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  # HC Eq. 16: B = A_r = 1/sqrt(var_h + var_T + 2 cov_hT), A_m = 1: the literal [[0,1],[1,1]]
  # with every new state scaled by 1/std(state) (postscale=invstd)
  connect hyper(n=1, fixed, postscale=invstd) { all = [[0, 1], [1, 1]] }
}
