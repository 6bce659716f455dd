"""Mixtral (mixture of experts) against Hugging Face transformers: tiny random MixtralForCausalLM models built
offline, loaded with `llmbook.hub.from_hf`, give the same logits (fp32, 1e-5) on left-padded batches, with the
dynamic and static KV cache, and the same greedy `generate` ids, with prompts and outputs longer than the
sliding window. Also: the mixtral-8x7b preset counts exactly transformers' parameters on the meta device
(total and active per token), and whether the MoE layer compiles as one graph."""
import json
import pytest
import torch
from transformers import MixtralConfig, MixtralForCausalLM
from llmbook.blocks import MoE, experts_math, active_params, preset
from llmbook.decoder import Decoder, model_size
from llmbook.generation import generate
from llmbook.hub import from_hf, to_hf, save, load, UnsupportedConfigError
from parity import randomize, trivial_parameters

ATOL = 1e-5
V, PAD, BOS, EOS = 320, 3, 1, 2
WINDOW = 5  # shorter than the prompts (11) and the generations (11 + 16)

def mixtral(**kw):
    cfg = dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=128, num_local_experts=4, num_experts_per_tok=2,
               sliding_window=WINDOW, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
               attn_implementation="eager", initializer_range=0.1)  # 0.1: decisive routing, experts that matter
    torch.manual_seed(0)
    return randomize(MixtralForCausalLM(MixtralConfig(**{**cfg, **kw}))).eval()

VARIANTS = {
    "window": lambda: mixtral(),
    "full-attention": lambda: mixtral(sliding_window=None),
    "top1-8experts-mqa": lambda: mixtral(num_local_experts=8, num_experts_per_tok=1, num_key_value_heads=1,
                                         sliding_window=None),
    "top3-tied": lambda: mixtral(num_experts_per_tok=3, tie_word_embeddings=True),
}

@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request):
    hf = VARIANTS[request.param]()
    return hf, from_hf(hf)

def batch(T=11):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, V, (3, T), generator=g)
    mask = torch.ones(3, T, dtype=torch.long)
    mask[0, :4] = 0; mask[1, :1] = 0  # left padding, as generate uses
    ids[mask == 0] = PAD
    return ids, mask

def positions(mask): return (mask.cumsum(-1) - 1).clamp(min=0)

@torch.no_grad()
def check_logits(hf, ours, T=16):
    ids = torch.randint(0, V, (2, T), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(ids), hf(ids).logits, atol=ATOL, rtol=0)

def test_logits_equal(pair):
    check_logits(*pair)
    check_logits(*pair, T=40)  # many windows long

def test_every_parameter_is_random(pair):
    hf, ours = pair
    assert trivial_parameters(hf) == [] and trivial_parameters(ours) == []

def test_structure(pair):
    hf, ours = pair
    c = hf.config
    assert all(type(b.mlp) is MoE for b in ours.blocks)
    assert (ours.config.n_experts, ours.config.n_experts_per_token) == (c.num_local_experts, c.num_experts_per_tok)
    assert ours.config.sliding_window == c.sliding_window
    n_hf = sum(p.numel() for p in hf.parameters())  # tied embeddings counted once on both sides
    assert sum(p.numel() for p in ours.parameters()) == n_hf

@torch.no_grad()
@pytest.mark.parametrize("mutation", ["swap_experts", "swap_gate_up", "no_renormalisation"])
def test_parity_notices_a_broken_moe(mutation):
    hf = VARIANTS["window"]()
    ours = from_hf(hf)
    check_logits(hf, ours)
    for block in ours.blocks:
        if mutation == "swap_experts":  # experts 0 and 1 trade places: the router now sends tokens to the wrong one
            block.mlp.experts[0], block.mlp.experts[1] = block.mlp.experts[1], block.mlp.experts[0]
        elif mutation == "swap_gate_up":
            for expert in block.mlp.experts: expert.gate, expert.up = expert.up, expert.gate
        else: block.mlp.renormalise = False
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        check_logits(hf, ours)

@torch.no_grad()
def test_padded_batch_equal(pair):
    hf, ours = pair
    ids, mask = batch()
    ref = hf(ids, attention_mask=mask, position_ids=positions(mask)).logits
    out = ours(ids, attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(out[real], ref[real], atol=ATOL, rtol=0)

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
@pytest.mark.parametrize("static", [False, True])
def test_generate_same_ids(pair, static):
    "Greedy, left-padded prompts of 11 tokens (longer than the window of 5), 16 new tokens."
    hf, ours = pair
    ids, mask = batch()
    a = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=16, pad_token_id=PAD, eos_token_id=[])
    b = generate(ours, ids, attention_mask=mask, max_new_tokens=16, pad_token_id=PAD, eos_token_id=[], static_cache=static)
    assert torch.equal(a, b), f"transformers\n{a}\nllmbook\n{b}"

@torch.no_grad()
def test_folder_equals_object(pair, tmp_path):
    "save_pretrained writes the files' per-expert names (w1/w2/w3); the object holds the fused 3-D tensors."
    hf, ours = pair
    hf.save_pretrained(tmp_path)
    from safetensors import safe_open
    with safe_open(tmp_path / "model.safetensors", "pt") as f: names = set(f.keys())
    assert "model.layers.0.block_sparse_moe.experts.0.w1.weight" in names
    assert "model.layers.0.mlp.experts.gate_up_proj" in hf.state_dict()
    ids = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(2))
    loaded = from_hf(tmp_path)
    theirs, mine = loaded.state_dict(), ours.state_dict()
    assert theirs.keys() == mine.keys()
    for name in mine: assert torch.equal(theirs[name], mine[name]), name  # the same weights, bit for bit
    # the same function: float32 rounding only (the fused tensors' layout can change the CPU kernels' summation order)
    torch.testing.assert_close(loaded(ids), ours(ids), atol=1e-5, rtol=1e-5)

@torch.no_grad()
def test_llmbook_save_load_roundtrip(pair, tmp_path):
    _, ours = pair
    save(ours, tmp_path / "ck")
    back = load(tmp_path / "ck")
    assert back.config == ours.config and type(back.blocks[0].mlp) is MoE
    ids = torch.randint(0, V, (2, 9))
    torch.testing.assert_close(back(ids), ours(ids), atol=0, rtol=0)

@pytest.mark.parametrize("change,field", [
    ({"router_jitter_noise": 0.01}, "router_jitter_noise=0.01"),
    ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6}}, "yarn"),
    ({"attention_bias": True}, "['attention_bias']"),
    ({"num_experts_per_tok": 5}, "n_experts_per_token=5 is more than n_experts=4"),
])
def test_unsupported_config_is_refused(tmp_path, change, field):
    hf = mixtral()
    hf.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("(", r"\(")):
        from_hf(tmp_path)

def test_to_hf_refuses_moe(tmp_path):
    "Writing back is not implemented for experts layers: refused, naming the fields a Llama config cannot hold."
    with pytest.raises(UnsupportedConfigError, match="cannot express .*mlp_types=\\['experts', 'experts'\\], n_experts=4"):
        to_hf(from_hf(mixtral()), tmp_path / "out")
    assert not (tmp_path / "out").exists()

def test_mixtral_8x7b_counts_like_transformers():
    "Total and active parameters of the preset equal transformers' MixtralForCausalLM on the meta device."
    c = preset("mixtral-8x7b")
    hf_cfg = MixtralConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_expert_ff,
                           num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
                           max_position_embeddings=c.max_seq_len, num_local_experts=c.n_experts,
                           num_experts_per_tok=c.n_experts_per_token, rms_norm_eps=c.norm_eps,
                           rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta}, sliding_window=None)
    with torch.device("meta"):
        hf = MixtralForCausalLM(hf_cfg)
        ours = Decoder(c)
    hf_total = sum(p.numel() for p in hf.parameters())
    idle = sum((layer.mlp.experts.gate_up_proj.numel() + layer.mlp.experts.down_proj.numel())
               * (hf_cfg.num_local_experts - hf_cfg.num_experts_per_tok) // hf_cfg.num_local_experts
               for layer in hf.model.layers)
    assert model_size("mixtral-8x7b") == hf_total == 46_702_792_704
    assert active_params(ours) == hf_total - idle == 12_879_925_248
    assert all(p.is_meta for p in ours.parameters())

def test_moe_layer_and_compile():
    """The batched layer reads the expert counts on the host (`tolist`): a plain compile breaks the graph there;
    fullgraph=True traces them as symbolic sizes (torch 2.13 turns on scalar capture for one-graph compiles) and
    gives the eager result; `experts_math` (every expert on every token) has no such read."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    moe = MoE(32, 48, n_experts=4, k=2)
    x = torch.randn(2, 9, 32)
    explained = torch._dynamo.explain(moe)(x)
    assert explained.graph_break_count == 1 and "Data dependent" in str(explained.break_reasons[0].reason)
    for fullgraph in (False, True):
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(moe, fullgraph=fullgraph, backend="aot_eager")(x), moe(x), atol=1e-6, rtol=0)
    torch._dynamo.reset()
    math = torch.compile(lambda x: experts_math(moe, x), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(math(x), moe(x), atol=1e-6, rtol=0)
    torch._dynamo.reset()

def test_moe_decoder_compiles_fullgraph(backend="aot_eager"):  # inductor passes too, in about a minute more
    """A whole Mixtral-shaped Decoder compiles as one graph (training forward + backward, left padding, sliding
    window), giving the eager loss and gradients."""
    import torch.nn.functional as F
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = from_hf(VARIANTS["window"]()).train()
    ids, mask = batch()
    labels = torch.randint(0, V, ids.shape, generator=torch.Generator().manual_seed(3))
    def loss_and_grads(fn):
        model.zero_grad()
        loss = F.cross_entropy(fn(ids, attention_mask=mask).flatten(0, 1), labels.flatten())
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}
    eager_loss, eager_grads = loss_and_grads(model)
    loss, grads = loss_and_grads(torch.compile(model, fullgraph=True, backend=backend))
    torch._dynamo.reset()
    torch.testing.assert_close(loss, eager_loss, atol=1e-5, rtol=1e-5)
    for n in grads: torch.testing.assert_close(grads[n], eager_grads[n], atol=1e-5, rtol=1e-4, msg=n)
