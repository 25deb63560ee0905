"""IR node payloads: one frozen dataclass per operation, with its ports, its type rule and
its parameter count. Ports name the incoming edges a node needs; `infer` maps input types to
the output type and raises IRTypeError naming the node's operation when they disagree.

What the later stages need to know of a kind (pure, a view, freezable, the layers' own work,
holds a module, ...) are the traits every payload class declares (base.TRAITS); `having`
gives the kinds with one. What each kind means in the later stages (its module, fx
lowering, reference evaluation, symbolic rule, value at init) is registered per kind in one
table per stage; hcdsl.kinds joins them, and a test checks that every kind has every entry.
"""

from hcdsl.ir.nodes.base import TRAITS, Node, quiet
from hcdsl.ir.nodes.channel import ChannelGain
from hcdsl.ir.nodes.coef import ConstCoef, LearnedCoef, TemplateCoef
from hcdsl.ir.nodes.generator import ChannelWrite, GeneratorCoef
from hcdsl.ir.nodes.history import DenseCoef
from hcdsl.ir.nodes.model import (
    Dropout, Embed, Input, InvStd, Layer, LowRank, Norm, NormStreams, Output, ParallelLayers,
    Tap, Unembed,
)
from hcdsl.ir.nodes.state import Add, Copy, Merge, Mix, Split, Stack, SumStreams, Take
from hcdsl.spec import Matrix

KINDS: tuple[type[Node], ...] = (
    Input, Embed, Split, Merge, Stack, Mix, Take, Copy, SumStreams, Add, ConstCoef, LearnedCoef,
    DenseCoef, TemplateCoef, Layer, ParallelLayers, Tap, Norm, NormStreams, InvStd,
    LowRank, Unembed, Output, Dropout, GeneratorCoef, ChannelWrite, ChannelGain,
)


def having(trait: str) -> tuple[type[Node], ...]:
    """The kinds whose class sets `trait` (a key of TRAITS), in KINDS order."""
    if trait not in TRAITS:
        raise KeyError(f"no trait '{trait}'; the traits are {', '.join(TRAITS)}")
    return tuple(k for k in KINDS if getattr(k, trait))


__all__ = [k.__name__ for k in KINDS] + ["KINDS", "TRAITS", "Matrix", "Node", "having", "quiet"]
