"""hcdsl.wrap: bring your own model. An existing PyTorch model whose body is a sequence of
pre-norm residual blocks (a transformers GPT-2, Llama, Qwen2 or Mistral; or a ModuleList of
your blocks), its weights kept, with the connection family you choose. See docs/wrap.md.

`hcdsl.wrap(model, connection)` calls `hcdsl.wrap.wrap`: once imported, the package is the
attribute `hcdsl.wrap`, so the package itself is made callable.
"""

import sys
import types

from hcdsl.wrap.api import recognise, wrap

__all__ = ["recognise", "wrap"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        return wrap(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
