"""Context-extended rotary positions (Llama 3.1's `llama3` and `linear` scaling) equal transformers at long positions,
read from both config spellings, written back by `to_hf`; other kinds refused by name."""
import dataclasses
import pytest, torch
from transformers import LlamaConfig, LlamaForCausalLM
from llmbook.hub import from_hf, to_hf, UnsupportedConfigError
from parity import randomize

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
LINEAR = {"rope_type": "linear", "factor": 4.0}

def llama(rope_parameters: dict | None = None, **legacy):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, **({"rope_parameters": rope_parameters} if rope_parameters else {}), **legacy)
    model = LlamaForCausalLM(cfg).eval()
    randomize(model)
    return model

@pytest.mark.parametrize("scaling", [LLAMA3, LINEAR], ids=["llama3", "linear"])
def test_long_positions_equal_transformers(scaling, tmp_path):
    hf = llama({**scaling, "rope_theta": 50000.0})
    ours = from_hf(hf)
    assert ours.config.rope_scaling == scaling and ours.config.rope_theta == 50000.0
    ids = torch.randint(0, 100, (2, 300))  # positions far past original_max_position_embeddings
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-5, rtol=0)
        plain = from_hf(hf)
        for m in plain.modules():  # the same weights with the scaling taken away must differ: the test can see it
            if hasattr(m, "scaling"): m.scaling, m.inv_freq = None, None
        for m in plain.modules():
            if hasattr(m, "scaling"): m.inv_freq = m.frequencies()
        assert (plain(ids) - hf(ids).logits).abs().max() > 1e-3  # 100x the tolerance above
    back = LlamaForCausalLM.from_pretrained(to_hf(ours, tmp_path / "out")).eval()
    with torch.no_grad(): torch.testing.assert_close(back(ids).logits, hf(ids).logits, atol=1e-5, rtol=0)

def test_older_config_spelling():
    cfg = llama().config.to_dict()
    cfg.pop("rope_parameters", None)
    cfg.update(rope_theta=50000.0, rope_scaling={"type": "linear", "factor": 4.0})
    from llmbook.hub import config_from_hf
    c = config_from_hf(cfg)
    assert (c.rope_theta, c.rope_scaling) == (50000.0, {"rope_type": "linear", "factor": 4.0})

@pytest.mark.parametrize("scaling,message", [
    ({"rope_type": "dynamic", "factor": 2.0}, "rope_type='dynamic' is not implemented"),
    ({"rope_type": "yarn", "factor": 2.0, "beta_fast": 32.0}, "rope_type='yarn' is not implemented"),
    ({"rope_type": "llama3", "factor": 8.0}, "llama3 rope scaling needs exactly"),
    ({**LLAMA3, "high_freq_factor": 0.5}, "needs high_freq_factor > low_freq_factor"),
    ({"rope_type": "linear", "factor": -1.0}, "factor=-1.0 must be a number > 0"),
])
def test_refused(scaling, message):
    from llmbook.hub import config_from_hf
    cfg = llama().config.to_dict()
    cfg["rope_parameters"] = {**scaling, "rope_theta": 10000.0}
    with pytest.raises(UnsupportedConfigError, match=message): config_from_hf(cfg)
