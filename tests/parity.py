"""Helpers shared by the parity tests: random weights for every parameter of a reference model, and the
mutations a parity check must notice.

transformers initialises every bias to 0 and every norm weight to 1. A llmbook model that drops a bias or
swaps two norms then computes the same numbers, and a parity test built on that init cannot see the bug.
`randomize` gives every 1-D parameter (biases, norm weights and biases) and BART's `final_logits_bias`
random values; matrices and embeddings are random already. The scales keep the logits of a few units, so
fp32 error stays far below the tests' 1e-5."""
import copy
import torch
from torch import nn

def is_norm(name: str) -> bool:
    n = name.lower()
    return "norm" in n or ".ln_" in n or n.startswith("ln_")

@torch.no_grad()
def randomize(model: nn.Module, seed: int = 0, norm_std: float = 0.2, bias_std: float = 0.1) -> nn.Module:
    "Every 1-D parameter random: norm weights around 1, every other vector (biases) around 0."
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.ndim != 1: continue
        noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
        p.copy_(1 + norm_std * noise if is_norm(name) and name.endswith("weight") else bias_std * noise)
    for name, b in model.named_buffers():
        if name.endswith("final_logits_bias"): b.copy_(bias_std * torch.randn(b.shape, generator=g))
    return model

def trivial_parameters(model: nn.Module) -> list[str]:
    "Names of the parameters whose entries are all equal (all 0, all 1, ...): a mapping mistake there is invisible."
    return [n for n, p in model.named_parameters() if p.numel() > 1 and bool((p == p.flatten()[0]).all())]

# ---------------------------------------------------------------- mutations of a loaded llmbook model

def _blocks(model):
    return [m for m in model.modules() if hasattr(m, "norm1") and hasattr(m, "norm2")]

@torch.no_grad()
def zero_biases(model):
    found = False
    for n, p in model.named_parameters():
        if n.endswith("bias") and not is_norm(n): p.zero_(); found = True
    return found

@torch.no_grad()
def swap_norms(model):
    "norm1 <-> norm2 in every block (the weights, and biases where there are some)."
    for b in _blocks(model):
        for (n1, p1), (n2, p2) in zip(b.norm1.named_parameters(), b.norm2.named_parameters()):
            tmp = p1.clone(); p1.copy_(p2); p2.copy_(tmp)
    return bool(_blocks(model))

@torch.no_grad()
def reset_norms(model):
    "Every norm back to weight 1, bias 0: what a loader that forgot the norms would compute."
    found = False
    for n, p in model.named_parameters():
        if is_norm(n): p.fill_(1.0 if n.endswith("weight") else 0.0); found = True
    return found

MUTATIONS = {"zero_biases": zero_biases, "swap_norms": swap_norms, "reset_norms": reset_norms}

def mutated(model, mutation: str):
    "A deep copy of `model` with the mutation applied; fails if the mutation has nothing to change."
    m = copy.deepcopy(model)
    assert MUTATIONS[mutation](m), f"{mutation} does not apply to {type(model).__name__}"
    return m
