"""llmbook decoders against Hugging Face transformers: tiny random GPT-2 and Llama models built offline
from configs, loaded with `llmbook.hub.from_hf`, must give the same logits (fp32, 1e-5)."""
import json
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from llmbook.hub import from_hf, save, load, UnsupportedConfigError
from parity import randomize, trivial_parameters, mutated

ATOL = 1e-5
V = 320

def gpt2(**kw):
    cfg = dict(vocab_size=V, n_positions=64, n_embd=64, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=1,
               pad_token_id=0, attn_implementation="eager")
    torch.manual_seed(0)
    return randomize(GPT2LMHeadModel(GPT2Config(**{**cfg, **kw}))).eval()

def llama(**kw):
    cfg = dict(vocab_size=V, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=4, max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=0,
               attn_implementation="eager")
    torch.manual_seed(0)
    return randomize(LlamaForCausalLM(LlamaConfig(**{**cfg, **kw}))).eval()

VARIANTS = {
    "gpt2": lambda: gpt2(),
    "gpt2-untied": lambda: gpt2(tie_word_embeddings=False),
    "gpt2-n_inner-gelu": lambda: gpt2(n_inner=96, activation_function="gelu"),
    "gpt2-unscaled": lambda: gpt2(scale_attn_weights=False),
    "llama-mha": lambda: llama(),
    "llama-gqa": lambda: llama(num_key_value_heads=2),
    "llama-mqa": lambda: llama(num_key_value_heads=1),
    "llama-theta": lambda: llama(num_key_value_heads=2, rope_theta=500000.0),
    "llama-tied": lambda: llama(tie_word_embeddings=True),
    "llama-bias": lambda: llama(attention_bias=True, mlp_bias=True),
    "llama-head_dim": lambda: llama(head_dim=32, num_key_value_heads=2),
}

def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, V, (3, 11), generator=g)
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[0, :4] = 0; mask[1, :1] = 0  # left padding, as generate uses
    ids[mask == 0] = 0
    return ids, mask

def positions(mask): return (mask.cumsum(-1) - 1).clamp(min=0)

@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request):
    hf = VARIANTS[request.param]()
    return hf, from_hf(hf)

@torch.no_grad()
def check_logits(hf, ours):
    ids = torch.randint(0, V, (2, 16), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(ids), hf(ids).logits, atol=ATOL, rtol=0)

def test_logits_equal(pair):
    check_logits(*pair)

def test_every_parameter_is_random(pair):
    "No all-0 or all-1 tensor on either side: a weight mapped to the wrong place changes the logits."
    hf, ours = pair
    assert trivial_parameters(hf) == [] and trivial_parameters(ours) == []

@pytest.mark.parametrize("variant,mutation", [("gpt2", "zero_biases"), ("gpt2", "swap_norms"), ("gpt2", "reset_norms"),
                                              ("llama-gqa", "swap_norms"), ("llama-gqa", "reset_norms"),
                                              ("llama-bias", "zero_biases")])
def test_parity_notices_a_broken_model(variant, mutation):
    "The mutations that passed test_logits_equal under transformers' default init (biases 0, norms 1) now fail it."
    hf = VARIANTS[variant]()
    ours = from_hf(hf)
    check_logits(hf, ours)
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        check_logits(hf, mutated(ours, mutation))

@torch.no_grad()
def test_padded_batch_equal(pair):
    hf, ours = pair
    ids, mask = batch()
    ref = hf(ids, attention_mask=mask, position_ids=positions(mask)).logits
    out = ours(ids, attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(out[real], ref[real], atol=ATOL, rtol=0)

@torch.no_grad()
def test_padding_never_changes_a_row(pair):
    hf, ours = pair
    ids, mask = batch()
    out = ours(ids, attention_mask=mask)
    for row in range(3):
        alone = ids[row][mask[row].bool()][None]
        torch.testing.assert_close(out[row][mask[row].bool()], ours(alone)[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(ours(alone), hf(alone).logits, atol=ATOL, rtol=0)

@torch.no_grad()
@pytest.mark.parametrize("static", [False, True])
def test_cached_equals_full(pair, static):
    hf, ours = pair
    ids, mask = batch()
    full = hf(ids, attention_mask=mask, position_ids=positions(mask)).logits
    cache = ours.new_cache(max_len=16 if static else None)
    steps = [ours(ids[:, :5], attention_mask=mask[:, :5], cache=cache)]
    steps += [ours(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], cache=cache) for t in range(5, 11)]
    real = mask.bool()
    torch.testing.assert_close(torch.cat(steps, 1)[real], full[real], atol=ATOL, rtol=0)

@torch.no_grad()
def test_folder_equals_object(pair, tmp_path):
    hf, ours = pair
    hf.save_pretrained(tmp_path)
    ids = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(from_hf(tmp_path)(ids), ours(ids), atol=0, rtol=0)

@torch.no_grad()
def test_sharded_folder(tmp_path):
    hf = llama(num_key_value_heads=2)
    hf.save_pretrained(tmp_path, max_shard_size="50KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    ids = torch.randint(0, V, (1, 7))
    torch.testing.assert_close(from_hf(tmp_path)(ids), hf(ids).logits, atol=ATOL, rtol=0)

@torch.no_grad()
def test_llmbook_save_load_roundtrip(pair, tmp_path):
    _, ours = pair
    save(ours, tmp_path / "ck")
    back = load(tmp_path / "ck")
    ids = torch.randint(0, V, (2, 9))
    torch.testing.assert_close(back(ids), ours(ids), atol=0, rtol=0)
    assert back.config == ours.config

@torch.no_grad()
def test_padded_vocab_and_math_backend(pair):
    hf, _ = pair
    ours = from_hf(hf, pad_vocab_multiple=128, backend="math")
    assert ours.tok_embed.weight.shape[0] == 384
    ids, mask = batch()
    ref = hf(ids, attention_mask=mask, position_ids=positions(mask)).logits
    out = ours(ids, attention_mask=mask)
    assert out.shape[-1] == V
    torch.testing.assert_close(out[mask.bool()], ref[mask.bool()], atol=ATOL, rtol=0)

@pytest.mark.parametrize("make,change,field", [
    (llama, {"rope_parameters": {"rope_type": "yarn", "factor": 2.0, "rope_theta": 10000.0}}, "rope_type='yarn'"),  # linear and llama3: tests/test_rope_scaling.py
    (llama, {"rope_scaling": {"type": "dynamic", "factor": 2.0}}, "rope_type='dynamic'"),
    (llama, {"hidden_act": "gelu"}, "hidden_act='gelu'"),
    (llama, {"rope_interleaved": True}, "rope_interleaved=True"),  # attention_bias without mlp_bias: tests/test_newer_decoders.py
    (llama, {"sliding_window": 128}, "sliding_window"),
    (gpt2, {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True"),
    (gpt2, {"add_cross_attention": True}, "add_cross_attention=True"),
    (gpt2, {"activation_function": "quick_gelu"}, "activation_function='quick_gelu'"),
])
def test_unsupported_config_is_refused(tmp_path, make, change, field):
    hf = make()
    hf.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(UnsupportedConfigError, match=field.replace("[", r"\[").replace("(", r"\(")):
        from_hf(tmp_path)

def test_broken_folders(tmp_path):
    hf = llama(num_key_value_heads=2)
    hf.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    key = "model.layers.0.self_attn.k_proj.weight"
    save_file({k: v for k, v in state.items() if k != key}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"lacks 1 tensor\(s\) the model needs: \['blocks.0.attn.k_proj.weight'\]"):
        from_hf(tmp_path)
    save_file({**state, key: torch.zeros(64, 64)}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"k_proj.weight has shape \(64, 64\) in the checkpoint but the model expects \(32, 64\)"):
        from_hf(tmp_path)
    save_file({**state, "model.layers.0.self_attn.q_norm.weight": torch.ones(16)}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="does not use"):
        from_hf(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        from_hf(tmp_path)

def test_folder_needs_no_transformers(tmp_path):
    "Loading a folder must work in a process where `transformers` cannot be imported."
    import subprocess, sys, textwrap
    gpt2().save_pretrained(tmp_path)
    code = textwrap.dedent(f"""
        import sys; sys.modules['transformers'] = None  # any import of it now fails
        import torch
        from llmbook.hub import from_hf
        m = from_hf({str(tmp_path)!r})
        print(m(torch.tensor([[1, 2, 3]])).shape)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"torch.Size([1, 3, {V}])" in r.stdout
