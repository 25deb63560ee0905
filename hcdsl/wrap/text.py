"""The .hc text of a wrapped model: its width, vocabulary, norm and blocks as recognised, one
extern layer per sub-layer (`extern wrapped(block=i, index=j)`, attention with ports q, k,
v), and the connection the caller asked for.

The connection is a preset call ("hyper(n=4, dynamic)") or .hc text that only names the
connection: `connection NAME { ... }` blocks followed by `connect NAME` (or `connect
PRESET(...) { rules }`). The model around it is written here, so the front end checks the
whole as one spec and every mistake is located in the text shown with it.
"""

from __future__ import annotations

import re

from hcdsl.errors import CompileError
from hcdsl.frontend.printer import format_value
from hcdsl.wrap.recognise import Recognised

FACTORY = "wrapped"  # the extern kind of every sub-layer
_CONNECT = re.compile(r"\bconnect\b")
_MODEL = re.compile(r"\bmodel\b")


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def split_connection(connection: str) -> tuple[str, str]:
    """(connection blocks, the connect statement) of what the caller gave."""
    if not isinstance(connection, str) or not connection.strip():
        raise CompileError("hcdsl.wrap needs a connection: a preset such as "
                           "'hyper(n=4, dynamic)', or .hc text with `connection NAME {...}` "
                           "and `connect NAME`")
    text = _strip_comments(connection).strip()
    if _MODEL.search(text):
        raise CompileError("hcdsl.wrap takes the connection only, not a model: give a preset "
                           "such as 'hyper(n=4, dynamic)', or `connection NAME { ... }` blocks "
                           "and `connect NAME`; the model's layers come from the wrapped model")
    found = _CONNECT.search(text)
    if found is None:
        if re.search(r"\bconnection\b", text):
            raise CompileError("the connection text defines a connection but does not use "
                               "it: add `connect NAME` after the block")
        return "", f"connect {text}"
    return text[:found.start()].strip(), text[found.start():].strip()


def layer_names(rec: Recognised) -> list[list[str]]:
    """attn0, mlp0, attn1, ...: a role and the block index (and a suffix when a block has
    two sub-layers of one role)."""
    out = []
    for i, block in enumerate(rec.blocks):
        roles = [s.role for s in block]
        out.append([f"{s.role}{i}" if roles.count(s.role) == 1 else f"{s.role}{i}_{j}"
                    for j, s in enumerate(block)])
    return out


def spec_text(rec: Recognised, connection: str) -> str:
    defs, connect = split_connection(connection)
    norm = rec.norm
    lines = [defs, ""] if defs else []
    lines += [f"# {rec.what}, wrapped by hcdsl.wrap", f"model {rec.name} {{",
              f"  dim = {rec.dim}"]
    if rec.vocab:
        lines.append(f"  vocab = {rec.vocab}")
    else:
        lines.append("  input = hidden")
    if rec.positions:
        lines += [f"  context = {rec.positions}", "  pos = learned"]
    lines.append(f"  norm = {norm.kind}(affine={format_value(norm.affine)}, "
                 f"eps={format_value(float(norm.eps))})")
    if rec.embed_dropout:
        lines.append(f"  dropout = rates(embed={format_value(float(rec.embed_dropout))})")
    names = layer_names(rec)
    for i, block in enumerate(rec.blocks):
        for j, sub in enumerate(block):
            ports = f", ports=[{', '.join(sub.ports)}]" if sub.ports != ("x",) else ""
            lines.append(f"  layer {names[i][j]} = extern {FACTORY}(block={i}, index={j}"
                         f"{ports})")
    lines.append("  body = " + ", ".join("[" + ", ".join(b) + "]" for b in names))
    lines += ["  " + line for line in connect.splitlines()]
    if rec.vocab:
        final = "true" if rec.final_norm is not None else "false"  # Qwen4-exp: no final norm
        lines.append(f"  head = unembed(tied={format_value(rec.tied)}, final_norm={final})")
    lines.append("}")
    return "\n".join(lines) + "\n"
