"""README, "Wrap your model": a small Llama from transformers (random weights, built from a
config: nothing is downloaded), wrapped with DHC x4 and mHC x4, equal at init, then trained.

    .venv/bin/python benchmarks/wrap_llama.py            (needs: pip install transformers)

Prints the extra parameters of each connection, the max |logits difference| from the
original model on random tokens, and the training loss (next byte of the Zen of Python,
AdamW with hcdsl.param_groups, the same batches and the same Llama weights for all three).
"""

from __future__ import annotations

import codecs
import copy
import contextlib
import importlib
import io

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

import hcdsl

STEPS, BATCH, SEQ, LR = 40, 8, 64, 3e-3
CONNECTIONS = {"Llama (Pre-Norm)": "residual", "DHC x4": "hyper(n=4, dynamic)",
               "mHC x4 (identity init)": "mhc(n=4, identity, readout=mean)"}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=172, vocab_size=256,
                         max_position_embeddings=SEQ)
    llama = AutoModelForCausalLM.from_config(config).eval()
    with contextlib.redirect_stdout(io.StringIO()):  # `import this` prints the Zen
        zen = codecs.decode(importlib.import_module("this").s, "rot13")
    data = torch.tensor(list(zen.encode()))
    x = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = llama(x).logits
    base = sum(p.numel() for p in llama.parameters())
    print(f"Llama: {base:,} params, {config.num_hidden_layers} blocks, d = {config.hidden_size}")
    batches = torch.Generator().manual_seed(1)
    starts = torch.randint(0, len(data) - SEQ - 1, (STEPS, BATCH), generator=batches)
    # HC's readout is 4·h and RMSNorm(4h; ε) = RMSNorm(h; ε/16): the same Llama with its final
    # norm's ε / 16 is what DHC x4 equals exactly
    eps16 = copy.deepcopy(llama)
    eps16.model.norm.variance_epsilon /= 16
    with torch.no_grad():
        want16 = eps16(x).logits
    for name, connection in CONNECTIONS.items():
        model = hcdsl.wrap(llama, connection, seed=0).eval()
        with torch.no_grad():
            diff = (model(x) - want).abs().max().item()
            exact = (model(x) - want16).abs().max().item()
        extra = sum(p.numel() for p in model.parameters()) - base
        model.train()
        opt = torch.optim.AdamW(hcdsl.param_groups(model, weight_decay=0.1), lr=LR)
        losses = []
        for step in range(STEPS):
            window = torch.stack([data[s:s + SEQ + 1] for s in starts[step].tolist()])
            loss = model(window[:, :-1], targets=window[:, 1:]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        shown = ", ".join(f"{losses[i]:.3f}" for i in (0, 9, 19, 29, 39))
        print(f"{name:24s} extra params {extra:+6,d}  max |logits - Llama's| at init "
              f"{diff:.1e}  loss at steps 1, 10, 20, 30, 40: {shown}")
        if connection.startswith("hyper"):
            print(f"{'':24s} max |logits - Llama's with its final norm's eps / 16| at init "
                  f"{exact:.1e}")


if __name__ == "__main__":
    main()
