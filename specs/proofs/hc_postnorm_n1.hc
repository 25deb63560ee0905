model hc_postnorm_n1 {
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  # HC Eq. 16: B = A_r = 1/sqrt(var_h + var_T + 2 cov_hT), A_m = 1: the literal [[0,1],[1,1]]
  # with every new state scaled by 1/std(state) (postscale=invstd). As in Post-Norm, the
  # layers have no pre-norm of their own (prenorm=false): App. E.2's T reads h itself.
  connect hyper(n=1, fixed, postscale=invstd, prenorm=false) { all = [[0, 1], [1, 1]] }
}
