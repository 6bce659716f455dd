"""Parity table for the open-weight decoder architectures (the closing-note table of the modern-architectures work):
for each tiny random model of `tests/test_newer_decoders.py` (plus a Mixtral), the max logit error against
transformers on a left-padded batch, the max error of the cached forward (dynamic and static cache) against the full
pass, and whether greedy `generate` gives the same ids. fp32, CPU.

    python bench/parity_table.py
"""
import sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from test_newer_decoders import MODELS, SMALL, batch
from parity import randomize
from transformers import MixtralConfig, MixtralForCausalLM
from llmbook.attention import KVCache
from llmbook.generation import generate
from llmbook.hub import from_hf

MODELS = {**MODELS, "mixtral-window": lambda: MixtralForCausalLM(MixtralConfig(**SMALL, sliding_window=5, num_local_experts=4, num_experts_per_tok=2))}

@torch.no_grad()
def row(make):
    torch.manual_seed(0)
    hf = make().eval()
    randomize(hf)
    ours = from_hf(hf)
    ids, mask = batch()
    logit = (ours(ids, attention_mask=mask) - hf(ids, attention_mask=mask).logits)[mask.bool()].abs().max().item()
    one, full = ids[:1], hf(ids[:1]).logits
    cached = []
    for static in (False, True):
        cache = KVCache(ours.config.n_layers, max_len=one.shape[1] if static else None)
        steps = [ours(one[:, :4], cache=cache)] + [ours(one[:, t:t + 1], cache=cache) for t in range(4, one.shape[1])]
        cached.append((torch.cat(steps, 1) - full).abs().max().item())
    same = torch.equal(generate(ours, ids, attention_mask=mask, max_new_tokens=12),
                       hf.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0))
    return logit, *cached, same

print(f"{'architecture':<24}{'max logit err':>14}{'cache dyn':>11}{'cache static':>13}{'generate ids':>14}")
for name, make in MODELS.items():
    logit, dyn, static, same = row(make)
    print(f"{name:<24}{logit:>14.1e}{dyn:>11.1e}{static:>13.1e}{'same' if same else 'DIFFERENT':>14}")
