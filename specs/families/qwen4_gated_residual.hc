# Qwen4-exp's gated residual, written with the generator primitives (transformers'
# Qwen4ExpTextGatedResidual). Per layer, from z = the grouped RMSNorm of vec(H), one group per
# stream, weight (1 + w):
#   a     = sigmoid(U silu(D z / n))            a read weight per stream and channel (n x C)
#   x     = mean_s a_s ⊙ z_s                    the layer's input (no other pre-norm)
#   write = 2 sigmoid(W z / n)                  one per stream
# no residual mix (RES = I): H'_s = H_s + write_s f(x). The readout is the same gate without
# the write (the model's hyper_connection_mixer), and no final norm follows it.
connection qwen4_gated_residual {
  streams = 4
  prenorm = false
  generator {
    input = flat
    norm = rmsnorm(weight=offset, eps=1e-06, groups=streams)
    read = lowrank(rank=16, mid=silu, mid_div=4, act=sigmoid, per=channel, source=normed, combine=mean)
    write = linear(act=double_sigmoid, div=4)
  }
  generator readout {
    input = flat
    norm = rmsnorm(weight=offset, eps=1e-06, groups=streams)
    readout = lowrank(rank=16, mid=silu, mid_div=4, act=sigmoid, per=channel, source=normed, combine=mean)
  }
}

model qwen4_gated_residual_tiny {
  dim = 64
  vocab = 256
  norm = rmsnorm(eps=1e-06)
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256)
  body = repeat 2 [attn, ffn]
  connect qwen4_gated_residual
  head = unembed(final_norm=false)
}
