# WideResidual with learned retention (Mistral; NVIDIA Megatron-LM PR #6716,
# `LearnedWideResidualRetention`): as wide_residual.hc, but every stream keeps only
#   rho_i = 1 - m sigmoid(-c_i)  of itself,  X_i <- rho_i X_i + 2 sigmoid(beta_i) F(Norm(z)),
# with max_forget m = 0.1 and rho = 0.999 at init (sigmoid(-c) = 0.01): f_i below is
# sigmoid(-c_i), a unit-bounded param, so rho_i = 1 - 0.1 * f_i is an arithmetic entry. K = 4 full-width streams, H^0 = K copies of the
# embedding. Around every layer (attention or MLP) a learned read and write:
#   z = sum_i sigmoid(r_i) X_i                    read factors start at 1/K (the stream mean)
#   X_i <- X_i + 2 sigmoid(beta_i) F(Norm(z))     beta = linspace(-s, s, K), mirrored: mean 1
# and the exit readout h = sum_i sigmoid(e_i) X_i (starts as the mean) before the final norm.
# With s = 0.3: beta = [-0.3, -0.1, 0.1, 0.3]. At init the stream mean is exactly the Pre-Norm
# residual stream. Every layer has its own r, beta (a `param` per layer).
connection wide_residual_retention {
  streams = 4
  param r1 = scalar(init=0.25, bound=unit)
  param r2 = scalar(init=0.25, bound=unit)
  param r3 = scalar(init=0.25, bound=unit)
  param r4 = scalar(init=0.25, bound=unit)
  param w1 = scalar(raw=-0.3, bound=double)
  param w2 = scalar(raw=-0.1, bound=double)
  param w3 = scalar(raw=0.1, bound=double)
  param w4 = scalar(raw=0.3, bound=double)
  param f1 = scalar(init=0.01, bound=unit)
  param f2 = scalar(init=0.01, bound=unit)
  param f3 = scalar(init=0.01, bound=unit)
  param f4 = scalar(init=0.01, bound=unit)
  param e1 = scalar(init=0.25, bound=unit, tied=true)
  param e2 = scalar(init=0.25, bound=unit, tied=true)
  param e3 = scalar(init=0.25, bound=unit, tied=true)
  param e4 = scalar(init=0.25, bound=unit, tied=true)
  readout = [e1, e2, e3, e4]
  all = [[0, w1, w2, w3, w4],
         [r1, 1 - 0.1 * f1, 0, 0, 0],
         [r2, 0, 1 - 0.1 * f2, 0, 0],
         [r3, 0, 0, 1 - 0.1 * f3, 0],
         [r4, 0, 0, 0, 1 - 0.1 * f4]]
}

model tiny_wide_residual_retention {
  dim = 64
  vocab = 256
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect wide_residual_retention
}
