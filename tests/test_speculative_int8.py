"""Speculative decoding and int8 weights (llmbook.perf, chapter 17) beyond the chapter's own tests.

Speculative decoding must give the *same ids* as plain greedy decoding: here against transformers' greedy
`generate` (and its own assisted generation) on a tiny random GPT-2 loaded with `llmbook.hub.from_hf`, and
against llmbook's `generate` on the model kinds whose cache handling differs (rotary positions with grouped-query
attention, sliding-window layers, mixture-of-experts MLPs), with EOS, left padding and through
`generate(..., assistant_model=...)`. int8: `quantize_int8` equals the same model with the dequantized float
weights (the written-out version) on an untied Llama-style model, keeps bf16 models in bf16, and its bytes are
the real tensor bytes counted by hand."""
import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from llmbook.blocks import preset
from llmbook.core import param_bytes
from llmbook.decoder import Decoder
from llmbook.generation import generate, generation_config
from llmbook.hub import from_hf
from llmbook.perf import Int8Linear, quantize_int8, speculative_generate, logit_error
from parity import randomize

V, PAD, BOS = 320, 3, 1

def hf_gpt2(seed=0, **kw):
    cfg = dict(vocab_size=V, n_positions=128, n_embd=64, n_layer=2, n_head=4, bos_token_id=BOS, eos_token_id=2,
               pad_token_id=PAD, attn_implementation="eager", initializer_range=0.1)
    torch.manual_seed(seed)
    return randomize(GPT2LMHeadModel(GPT2Config(**{**cfg, **kw})), seed=seed, bias_std=0.02).eval()

def prompt(n, seed=0, vocab=V):
    return torch.randint(4, vocab, (1, n), generator=torch.Generator().manual_seed(seed))

def an_eos(model, ids, at=4, new=20):
    "A token the model writes `at` tokens into its greedy output, and that it did not write before."
    free = generate(model, ids, max_new_tokens=new, eos_token_id=[])[0, ids.shape[1]:].tolist()
    return next(t for i, t in enumerate(free) if i >= at and t not in free[:i])

@pytest.fixture(scope="module")
def gpt2_pair():
    hf, hf_draft = hf_gpt2(0), hf_gpt2(1, n_layer=1)
    return hf, from_hf(hf), hf_draft, from_hf(hf_draft)

@pytest.mark.parametrize("n, new", [(3, 1), (7, 24), (12, 40)])
def test_same_as_transformers_greedy(gpt2_pair, n, new):
    hf, ours, hf_draft, draft = gpt2_pair
    ids = prompt(n, seed=n)
    expected = hf.generate(ids, max_new_tokens=new, do_sample=False, eos_token_id=[], pad_token_id=PAD)
    greedy = generation_config(ours, eos_token_id=[])
    for assistant in (draft, quantize_int8(ours), ours):
        out, stats = speculative_generate(ours, assistant, ids, greedy, new, 4)
        assert torch.equal(out, expected), (out, expected)
        assert stats.new_tokens == new and stats.proposed >= stats.accepted >= 0
    if new > 1:  # transformers' own assisted generation writes the same ids
        assisted = hf.generate(ids, assistant_model=hf_draft, max_new_tokens=new, do_sample=False, eos_token_id=[],
                               pad_token_id=PAD)
        assert torch.equal(assisted, expected)

def test_same_as_transformers_with_eos(gpt2_pair):
    hf, ours, _, draft = gpt2_pair
    ids = prompt(6, seed=3)
    eos = an_eos(ours, ids, at=6)
    expected = hf.generate(ids, max_new_tokens=30, do_sample=False, eos_token_id=eos, pad_token_id=PAD)
    assert expected[0, -1].item() == eos and expected.shape[1] < 6 + 30  # the case stops at its EOS
    for assistant in (ours, draft):
        out, _ = speculative_generate(ours, assistant, ids, generation_config(ours, eos_token_id=eos), 30)
        assert torch.equal(out, expected)

def test_several_eos_ids(gpt2_pair):
    _, ours, _, _ = gpt2_pair
    ids = prompt(5, seed=4)
    first, second = an_eos(ours, ids, at=3), an_eos(ours, ids, at=9)
    expected = generate(ours, ids, max_new_tokens=30, eos_token_id=[second, first])
    greedy = generation_config(ours, eos_token_id=[second, first])
    out, stats = speculative_generate(ours, ours, ids, greedy, 30, 6)
    assert torch.equal(out, expected) and out[0, -1].item() == first
    assert stats.accepted > stats.new_tokens - 1  # the accepted run went past the first EOS, and was cut there

KINDS = {
    "llama (rotary, grouped-query)": dict(),
    "sliding window": dict(layer_types=["sliding_attention", "full_attention"], sliding_window=5),
    "experts": dict(mlp_types=["experts", "experts"], n_experts=4, n_experts_per_token=2, d_expert_ff=96),
}

@pytest.mark.parametrize("kind", list(KINDS))
def test_same_as_generate(kind):
    torch.manual_seed(0)
    target = Decoder(preset("tiny-llama", init_std=0.1, **KINDS[kind])).eval()
    torch.manual_seed(1)
    unrelated = Decoder(preset("tiny-llama", init_std=0.1, n_layers=1)).eval()
    vocab, greedy = target.config.vocab_size, generation_config(target, eos_token_id=[])
    for n in (1, 8):
        ids = prompt(n, seed=n, vocab=vocab)
        expected = generate(target, ids, max_new_tokens=32, eos_token_id=[])
        for assistant in (target, unrelated, quantize_int8(target)):
            for k in (1, 3, 8):
                out, stats = speculative_generate(target, assistant, ids, greedy, 32, k)
                assert torch.equal(out, expected), (kind, n, k)
                if assistant is target: assert stats.accepted == stats.proposed

def test_left_padding_and_the_generate_hook():
    torch.manual_seed(0)
    target = Decoder(preset("tiny-gpt2", init_std=0.1)).eval()
    draft = quantize_int8(target)
    ids = prompt(6, seed=5, vocab=256)
    expected = generate(target, ids, max_new_tokens=20, eos_token_id=[])
    assert torch.equal(generate(target, ids, max_new_tokens=20, eos_token_id=[], assistant_model=draft), expected)
    padded = torch.cat([torch.full((1, 2), 7), ids], dim=1)
    mask = torch.tensor([[0, 0] + [1] * 6])
    with_padding = generate(target, padded, attention_mask=mask, max_new_tokens=20, eos_token_id=[])
    out, _ = speculative_generate(target, draft, padded, generation_config(target, eos_token_id=[]), 20,
                                  attention_mask=mask)
    assert torch.equal(out, with_padding) and torch.equal(out[:, 2:], expected)
    with pytest.raises(ValueError, match="decodes one prompt: input_ids has 2 rows"):
        generate(target, ids.repeat(2, 1), max_new_tokens=5, assistant_model=draft)
    with pytest.raises(ValueError, match="do_sample=True"):
        generate(target, ids, max_new_tokens=5, do_sample=True, assistant_model=draft)

def test_crop_then_continue_matches_a_fresh_cache():
    torch.manual_seed(0)
    model = Decoder(preset("tiny-llama", init_std=0.1)).eval()
    ids = prompt(12, vocab=model.config.vocab_size)
    with torch.no_grad():
        cache = model.new_cache()
        model(ids, cache=cache)
        cache.crop(5).crop(5)  # cropping to the current length changes nothing
        assert cache.lengths == [5] * model.config.n_layers
        resumed = model(ids[:, 5:], cache=cache)
        torch.testing.assert_close(resumed, model(ids)[:, 5:], rtol=1e-5, atol=1e-5)
        assert cache.crop(0).length == 0 and all(k.shape[2] == 0 for k in cache.k)

# ---------------------------------------------------------------- int8

def dequantized_float_copy(model_int8):
    "The written-out version: each Int8Linear replaced by an nn.Linear holding its dequantized weight."
    import copy
    out = copy.deepcopy(model_int8)
    for name, m in list(out.named_modules()):
        if isinstance(m, Int8Linear):
            linear = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
            with torch.no_grad():
                linear.weight.copy_(m.dequantized_weight())
                if m.bias is not None: linear.bias.copy_(m.bias)
            parent, _, child = name.rpartition(".")
            setattr(out.get_submodule(parent), child, linear)
    return out

def test_int8_llama_equals_dequantized_weights():
    torch.manual_seed(0)
    model = Decoder(preset("tiny-llama", init_std=0.1, tie_embeddings=False)).eval()
    q = quantize_int8(model)
    ids = prompt(20, vocab=model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(q(ids), dequantized_float_copy(q)(ids), rtol=1e-5, atol=1e-5)
    error = logit_error(model, q, ids)
    assert 0 < error["max_rel"] < 0.05 and error["same_argmax"] > 0.8, error
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert not any(m.bias is not None for m in linears)  # Llama: no biases; int8 bytes are weights + scales
    by_hand = param_bytes(model) - sum(m.weight.numel() * 4 for m in linears) + sum(
        m.weight.numel() + m.out_features * 4 for m in linears)
    assert param_bytes(q) == by_hand
    assert param_bytes(q) < 0.4 * param_bytes(model)

def test_int8_in_bf16():
    torch.manual_seed(0)
    model = Decoder(preset("tiny-gpt2", init_std=0.1)).eval().to(torch.bfloat16)
    q = quantize_int8(model)
    ids = prompt(10, vocab=256)
    with torch.no_grad(): logits = q(ids)
    assert logits.dtype == torch.bfloat16
    assert all(m.scale.dtype == torch.bfloat16 for m in q.modules() if isinstance(m, Int8Linear))
    assert logit_error(model, q, ids)["max_rel"] < 0.05
