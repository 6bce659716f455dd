"""Mistral, Qwen2 and Qwen3 (and Llama with attention biases but no MLP biases) through `from_hf`, against
transformers: logits of a left-padded batch, the cached forward step by step (dynamic and static cache), and greedy
`generate` ids, with prompts longer than the sliding window; every parameter random."""
import pytest, torch
from transformers import Phi3Config, Phi3ForCausalLM, Gemma3TextConfig, Gemma3ForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM
from llmbook.attention import KVCache
from llmbook.generation import generate
from llmbook.hub import from_hf, UnsupportedConfigError
from parity import randomize, trivial_parameters

V, ATOL = 200, 1e-5
SMALL = dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0)
MODELS = {
    "mistral-window": lambda: MistralForCausalLM(MistralConfig(**SMALL, sliding_window=6)),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**SMALL)),
    "qwen2-window-layers": lambda: Qwen2ForCausalLM(Qwen2Config(**SMALL, use_sliding_window=True, sliding_window=5, max_window_layers=1)),
    "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(**SMALL, head_dim=32)),
    "llama3.1-rope": lambda: LlamaForCausalLM(LlamaConfig(**SMALL, rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8,
                                                                      "rope_theta": 500000.0})),
    "phi3-window": lambda: Phi3ForCausalLM(Phi3Config(**SMALL, sliding_window=6)),
    "llama-attention-bias": lambda: LlamaForCausalLM(LlamaConfig(**SMALL, attention_bias=True, mlp_bias=False)),
    "qwen3-moe": lambda: Qwen3MoeForCausalLM(Qwen3MoeConfig(**SMALL, head_dim=16, moe_intermediate_size=24, num_experts=4, num_experts_per_tok=2,
                                                         mlp_only_layers=[1], norm_topk_prob=False)),
    "qwen3-moe-step2-renorm": lambda: Qwen3MoeForCausalLM(Qwen3MoeConfig(**SMALL, head_dim=16, moe_intermediate_size=24, num_experts=5,
                                                                      num_experts_per_tok=3, decoder_sparse_step=2, norm_topk_prob=True)),
    "gemma3": lambda: Gemma3ForCausalLM(Gemma3TextConfig(**{**SMALL, "bos_token_id": 2, "eos_token_id": 1}, head_dim=16, sliding_window=5,
                                                         layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                                                         query_pre_attn_scalar=24, rope_parameters={
                                                             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                                             "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}})),
}

@pytest.fixture(scope="module", params=list(MODELS))
def pair(request):
    torch.manual_seed(0)
    hf = MODELS[request.param]().eval()
    randomize(hf)
    assert not trivial_parameters(hf)
    return request.param, hf, from_hf(hf)

def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, V, (3, 14), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4], mask[2, :9] = 0, 0  # left padding; row 0 is longer than every window
    return ids.masked_fill(mask == 0, 0), mask

def test_config_as_read(pair):
    name, hf, ours = pair
    c = ours.config
    expected = {"mistral-window": (["sliding_attention"] * 3, 6), "qwen2-window-layers": (["full_attention", "sliding_attention", "sliding_attention"], 5),
                "gemma3": (["sliding_attention", "sliding_attention", "full_attention"], 5), "phi3-window": (["sliding_attention"] * 3, 6)}
    assert (c.layer_types, c.sliding_window) == expected.get(name, (None, None))
    assert c.qk_norm == (name in ("qwen3", "gemma3") or name.startswith("qwen3-moe"))
    if name == "qwen3-moe": assert (c.mlp_types, c.n_experts, c.d_expert_ff, c.norm_topk_prob) == (["experts", "dense", "experts"], 4, 24, False)
    if name == "qwen3-moe-step2-renorm": assert (c.mlp_types, c.n_experts_per_token, c.norm_topk_prob) == (["dense", "experts", "dense"], 3, True)
    if name == "gemma3": assert (c.rope_local_theta, c.rope_scaling, c.sandwich_norm, c.embed_scale) == (1e4, {"rope_type": "linear", "factor": 8.0}, True, True)
    if name == "qwen2": assert (c.bias, c.qkv_bias, c.out_bias) == (False, True, False)

def test_logits_padded(pair):
    _, hf, ours = pair
    ids, mask = batch()
    with torch.no_grad():
        out, ref = ours(ids, attention_mask=mask), hf(ids, attention_mask=mask).logits
    torch.testing.assert_close(out[mask.bool()], ref[mask.bool()], atol=ATOL, rtol=0)

@pytest.mark.parametrize("static", [False, True])
def test_cached_steps(pair, static):
    _, hf, ours = pair
    ids = batch()[0][:1]
    cache = KVCache(ours.config.n_layers, max_len=ids.shape[1] if static else None)
    with torch.no_grad():
        steps = [ours(ids[:, :4], cache=cache)] + [ours(ids[:, t:t + 1], cache=cache) for t in range(4, ids.shape[1])]
        torch.testing.assert_close(torch.cat(steps, 1), hf(ids).logits, atol=ATOL, rtol=0)

def test_generate_same_ids(pair):
    _, hf, ours = pair
    ids, mask = batch()
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert torch.equal(generate(ours, ids, attention_mask=mask, max_new_tokens=12), ref)

def test_changed_weights_are_noticed(pair):
    "The checks above can fail: a q_norm or q/k/v bias left at its initial value changes the logits."
    name, hf, ours = pair
    if name not in ("qwen2", "qwen3", "gemma3"): return
    ids, mask = batch()
    with torch.no_grad():
        assert all(a.data_ptr() != b.data_ptr() for a in ours.parameters() for b in hf.parameters())  # not shared
        block = ours.blocks[1]
        p = {"qwen3": lambda: block.attn.q_norm.weight, "qwen2": lambda: block.attn.q_proj.bias, "gemma3": lambda: block.post_norm2.weight}[name]()
        p.fill_(0.0 if name == "qwen2" else 1.0)
        assert (ours(ids, attention_mask=mask) - hf(ids, attention_mask=mask).logits)[mask.bool()].abs().max() > 1e-3

@pytest.mark.parametrize("make,change,message", [
    (lambda: Qwen3ForCausalLM(Qwen3Config(**SMALL)), {"hidden_act": "gelu"}, "qwen3 config field hidden_act='gelu'"),
    (lambda: MistralForCausalLM(MistralConfig(**SMALL)), {"rope_parameters": {"rope_type": "yarn", "factor": 2.0, "rope_theta": 1e4}}, "rope_type='yarn'"),
    (lambda: Qwen2ForCausalLM(Qwen2Config(**SMALL)), {"use_mrope": True}, "use_mrope"),
    (lambda: Gemma3ForCausalLM(Gemma3TextConfig(**SMALL, head_dim=16)), {"final_logit_softcapping": 30.0}, "final_logit_softcapping=30.0"),
    (lambda: Gemma3ForCausalLM(Gemma3TextConfig(**SMALL, head_dim=16)), {"use_bidirectional_attention": True}, "use_bidirectional_attention=True"),
])
def test_refused(tmp_path, make, change, message):
    import json
    make().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(UnsupportedConfigError, match=message): from_hf(tmp_path)

def test_phi3_fused_weights(tmp_path):
    "Phi-3's fused qkv_proj and gate_up_proj, cut by rows; sliding window on every layer; generate equal."
    from transformers import Phi3Config, Phi3ForCausalLM
    torch.manual_seed(0)
    cfg = {**SMALL, "num_attention_heads": 4, "num_key_value_heads": 1}
    hf = Phi3ForCausalLM(Phi3Config(**cfg, sliding_window=5)).eval()
    randomize(hf)
    hf.save_pretrained(tmp_path)
    ours = from_hf(tmp_path)
    assert (ours.config.layer_types, ours.config.sliding_window) == (["sliding_attention"] * 3, 5)
    ids, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, attention_mask=mask)[mask.bool()], hf(ids, attention_mask=mask).logits[mask.bool()], atol=ATOL, rtol=0)
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert torch.equal(generate(ours, ids, attention_mask=mask, max_new_tokens=10), ref)

def test_phi3_partial_rotary_refused(tmp_path):
    import json
    from transformers import Phi3Config, Phi3ForCausalLM
    Phi3ForCausalLM(Phi3Config(**SMALL)).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["rope_parameters"]["partial_rotary_factor"] = 0.75
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedConfigError, match="partial_rotary_factor=0.75"): from_hf(tmp_path)


def test_qwen3_moe_folder(tmp_path):
    "A saved Qwen3-MoE folder (one tensor per expert) loads like the model object (experts fused over experts in memory)."
    torch.manual_seed(0)
    hf = MODELS["qwen3-moe"]().eval()
    randomize(hf)
    hf.save_pretrained(tmp_path)
    ids, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(from_hf(tmp_path)(ids, attention_mask=mask)[mask.bool()], from_hf(hf)(ids, attention_mask=mask)[mask.bool()], atol=0, rtol=0)
