"""The IR: a networkx.MultiDiGraph with one typed, frozen payload per node."""

from hcdsl.ir.graph import IR
from hcdsl.ir.types import Coef, Hidden, Logits, Streams, Tokens

__all__ = ["IR", "Coef", "Hidden", "Logits", "Streams", "Tokens"]
