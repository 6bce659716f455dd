"""LoRA on every llmbook model family (the chapter shows it on an encoder): adapters on every kind of linear
layer, a real training step that moves only the adapters, merged = unmerged, and a save/load round trip
onto a fresh copy of the base."""
import copy
import pytest
import torch
import torch.nn.functional as F
from llmbook.decoder import Decoder, preset
from llmbook.seq2seq import Seq2Seq
from llmbook.finetune import add_lora, lora_layers, merge_lora, unmerge_lora, save_lora, load_lora

MODELS = {"tiny-gpt2": Decoder, "tiny-llama": Decoder, "tiny-t5": Seq2Seq, "tiny-bart": Seq2Seq}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "up", "down", "gate")

def run(model, x):
    return model(x) if isinstance(model, Decoder) else model(x, x[:, :5])

@pytest.mark.parametrize("name", MODELS)
def test_lora_on_every_family(name, tmp_path):
    torch.manual_seed(0)
    base = MODELS[name](preset(name)).eval()
    model = copy.deepcopy(base)
    add_lora(model, targets=TARGETS, rank=4, alpha=8)
    layers = lora_layers(model)
    kinds = {n.split(".")[-1] for n in layers}
    assert kinds == {t for t in TARGETS if any(n.endswith("." + t) for n, _ in base.named_modules())}
    x = torch.randint(0, base.config.vocab_size, (2, 12))
    with torch.no_grad(): torch.testing.assert_close(run(model, x), run(base, x))  # B = 0: the base model exactly
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    logits = run(model, x)
    F.cross_entropy(logits.flatten(0, 1), torch.randint(0, base.config.vocab_size, logits.shape[:2]).flatten()).backward()
    opt.step()
    model.eval()
    for k, v in model.state_dict().items():
        if "lora_" not in k: assert torch.equal(v, frozen[k]), f"{k} changed"
    with torch.no_grad():
        adapted = run(model, x)
        assert (adapted - run(base, x)).abs().max() > 1e-4  # the adapters do something
        merge_lora(model); torch.testing.assert_close(run(model, x), adapted, atol=1e-5, rtol=1e-5)
        unmerge_lora(model); torch.testing.assert_close(run(model, x), adapted, atol=1e-5, rtol=1e-5)
    path = save_lora(model, tmp_path / f"{name}.safetensors")
    fresh = load_lora(copy.deepcopy(base), path).eval()
    with torch.no_grad(): torch.testing.assert_close(run(fresh, x), adapted, atol=1e-6, rtol=1e-6)
