model opaque8 {
  dim = 12
  vocab = 48
  layer t = opaque
  # 12 opaque layers: uninterpreted functions T_1..T_12 for the duality checks (Eqs. 47-49)
  body = repeat 12 [t]
  connect residual(pre)
}
