"""Which question a proof decides, and so which parameters are the same object.

- "learned" (the default): the same function for *every* value of the learned parameters,
  each spec's parameters tied to the other's by position: a parameter-holding node is tied
  to the node of the same id (L3.coef, L3.norm, final.norm, ...) only when its whole
  configuration is equal, its init included (`tie_inits` drops the init from that test:
  asked for, and printed, never silent). Two separately learned norms are two functions.
- "init": the same model as built, at init: every learned matrix has its init value and
  every dynamic part is 0; a norm's gain and bias are their init constants.
- "checkpoint": the same model with trained weights: every tensor is what the checkpoint
  holds; two modules are the same function when their tensors are equal *and* every option
  that changes what the tensors do (activation, tanh, Sinkhorn iterations, bounds, ε, ...:
  the node's whole configuration but its init) is equal.

`tie_inits` applies to the "learned" question only: at init the inits are the values, and
random draws are never tied across different configurations.

Layers are uninterpreted functions T_k in every question, tied by position k when kind and
options agree (their weights are taken equal: the premise "for every choice of the layers").
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hcdsl.ir import nodes as n
from hcdsl.proofs.generator_init import without_inits

Question = Literal["learned", "init", "checkpoint"]
TIE_TEXT = ("learned parameters of corresponding steps taken equal: a parameter of A is "
            "tied to B's at the same node when its configuration and init agree")
TIE_INITS_TEXT = ("learned parameters of corresponding steps taken equal, even where their "
                  "inits differ (--tie-inits)")
AT_INIT_TEXT = ("at init: every learned matrix has its init value and every dynamic part is "
                "0 (W = 0 in HC Eqs. 10-13)")


@dataclass
class Identity:
    question: Question
    tie_inits: bool = False
    # checkpoint: module attribute name -> {tensor name: digest of its values}
    digests: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # tensors as lists

    def pid(self, node: str, payload: n.Node, attr: str) -> str:
        """The identity of a node's parameters."""
        payload = _used(payload)
        if self.question == "checkpoint":  # configuration (but the init) + tensors
            state = self.digests.get(attr, {})
            text = repr((_configuration(payload), sorted(state.items())))
            return hashlib.sha1(text.encode()).hexdigest()[:16]
        if self.tie_inits and self.question == "learned":
            payload = _without_init(payload)
        return f"{node}|{payload!r}"


def _used(p: n.Node) -> n.Node:
    """The payload without the options its module does not use: a static HC/FC generator
    has no dynamic part, so the norm, tanh and scale of that part are not its configuration."""
    if isinstance(p, n.LearnedCoef):
        return dataclasses.replace(p, tanh=False, scale_init=0.0, norm="", norm_affine=False,
                                   norm_eps=0.0)
    return p


def _configuration(p: n.Node) -> n.Node:
    """What changes what a module's tensors do: its payload without its init, and, for a
    layer, without the init scale of its output projection, its training-time dropout and
    the taps it exposes."""
    p = _without_init(p)
    if isinstance(p, n.Layer):
        p = dataclasses.replace(p, out_scale=0.0, dropout=0.0, taps=())
    return p


def _without_init(p: n.Node) -> n.Node:
    """The payload with its init values blanked (what `--tie-inits` compares)."""
    changes: dict[str, object] = {}
    for name in ("init", "scale_init", "alpha"):
        if any(f.name == name for f in dataclasses.fields(p)):
            changes[name] = None
    if isinstance(p, n.TemplateCoef):
        changes["params"] = tuple((name, None, bound) for name, _, bound in p.params)
    if isinstance(p, n.GeneratorCoef):
        changes["spec"] = without_inits(p.spec)
    return dataclasses.replace(p, **changes) if changes else p
