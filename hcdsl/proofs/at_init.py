"""The value at init of every node kind that holds parameters, in one table (AT_INIT).

An entry returns the constant matrix a coefficient node produces at init, or NOT_CONSTANT
when its value at init depends on random weights (then the prover treats it as an
uninterpreted function of its inputs, tied to the other spec's by node and configuration:
the weights depend only on the seed and the node, so that is the truth "as built").
Layers, the embedding and the head are uninterpreted in every question: they have no
entry beyond "not a constant".
"""

from __future__ import annotations

from collections.abc import Callable

from hcdsl.ir import nodes as n
from hcdsl.ir.tables import registrar
from hcdsl.lang.expr import evaluate
from hcdsl.proofs.generator_init import generator_at_init
from hcdsl.spec import Matrix

NOT_CONSTANT = None
AtInit = Callable[[n.Node], "Matrix | None"]
AT_INIT: dict[type[n.Node], AtInit] = {}


at_init = registrar(AT_INIT, "AT_INIT")


@at_init(n.LearnedCoef)
def _learned(p: n.LearnedCoef) -> Matrix:
    return p.init  # static HC/FC: the learned entries' init


@at_init(n.DenseCoef)
def _dense(p: n.DenseCoef) -> Matrix:
    if p.grouped():
        return NOT_CONSTANT  # per channel group: not one matrix
    if p.spec.act == "softmax":  # softmax_j(q · k_j) with q = 0: uniform
        rows = len(p.init)
        return tuple((1.0 / rows,) * len(p.init[0]) for _ in range(rows))
    if p.spec.dynamic and p.spec.act not in ("identity", "relu", "gelu", "silu", "tanh"):
        return NOT_CONSTANT  # act(0) != 0
    if p.spec.static is None:
        return tuple((0.0,) * len(p.init[0]) for _ in p.init)
    return p.init  # static a_i; MUDD: GELU(...) W2 + a_i with W2 = 0; DCA: ReLU(0) + b


@at_init(n.GeneratorCoef)
def _generator(p: n.GeneratorCoef) -> Matrix | None:
    """A generator whose projections all start at 0 (std=0: dynamic HC, mHC's identity init)
    makes a constant M at init, from its biases and scales alone (hcdsl/proofs/generator_init.py);
    one with random projections (mHC's paper init, most user generators) does not."""
    return generator_at_init(p.spec, p.n) if p.role == "step" else NOT_CONSTANT


@at_init(n.TemplateCoef)
def _template(p: n.TemplateCoef) -> Matrix:  # named scalars at their init values
    init = {name: value for name, value, _ in p.params}
    init.update({name: value for name, _, value, _ in p.shared})
    return tuple(tuple(float(evaluate(e, init, float)) for e in row)
                 for row in p.template)


@at_init(n.ConstCoef)
def _const(p: n.ConstCoef) -> Matrix:
    return p.value


@at_init(n.LowRank)
def _lowrank(p: n.LowRank) -> Matrix:
    return ((0.0,),)  # B A x with B = 0: the zero map (a 1x1 stand-in for "times 0")


@at_init(n.ChannelGain)
def _gain(p: n.ChannelGain) -> Matrix:  # every channel equal at init: a scalar multiple
    init = {name: value for name, value, _ in p.params}
    init.update({name: value for name, _, value, _ in p.shared})
    return ((float(evaluate(p.entry, init, float)),),)


@at_init(n.Norm, n.NormStreams)
def _norm(p: n.Norm | n.NormStreams) -> Matrix:
    return ((getattr(p, "scale_init", 1.0),),)  # the gain's init (bias 0): a scalar


@at_init(n.Embed, n.Unembed, n.Layer, n.ParallelLayers)
def _free(p: n.Node) -> None:
    return NOT_CONSTANT  # uninterpreted in every question
