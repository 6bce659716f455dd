"""llmbook decoding against Hugging Face transformers' `generate`: tiny random GPT-2, Llama, T5 and BART models
built offline, loaded with `llmbook.hub.from_hf`, must give the *same token ids* for greedy decoding and beam search
(with EOS, padding, penalties, n-gram blocking, several beams, length penalties and early-stopping modes);
each logits filter must give the same processed scores as transformers' processor on the same input;
seeded sampling must be reproducible; bad settings must raise clear errors.

Pad ids are nonzero on purpose in the decoder models: transformers' beam search fills the shorter returned
sequences with `pad_token_id or eos_token_id[0]`, so a pad id of 0 (T5's) makes it fill with EOS instead; llmbook
follows the same rule. The T5 tests keep T5's real pad id 0 and check that filler exactly."""
import pytest
import torch
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration,
                          BartConfig, BartForConditionalGeneration)
from transformers.generation import logits_process as lp
from llmbook.hub import from_hf
from parity import randomize
from llmbook.generation import (generate, stream, beam_search, generation_config, DecoderSession, apply_temperature,
                                top_k_filter, top_p_filter, min_p_filter, repetition_penalty, no_repeat_ngram,
                                logits_processors, apply_processors)

V, PAD, BOS = 320, 3, 1
P = 7  # prompt length

def gpt2(**kw):
    cfg = dict(vocab_size=V, n_positions=128, n_embd=64, n_layer=2, n_head=4, bos_token_id=BOS, eos_token_id=2,
               pad_token_id=PAD, attn_implementation="eager", initializer_range=0.1)
    torch.manual_seed(0)
    # small random biases: larger ones in the final LayerNorm add one direction to every hidden state, and the tied
    # output layer then writes the same token or two over and over (too few distinct tokens to pick EOS among)
    return randomize(GPT2LMHeadModel(GPT2Config(**{**cfg, **kw})), bias_std=0.02).eval()

def llama(**kw):
    cfg = dict(vocab_size=V, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=128, bos_token_id=BOS, eos_token_id=2, pad_token_id=PAD,
               attn_implementation="eager", initializer_range=0.1)
    torch.manual_seed(0)
    return randomize(LlamaForCausalLM(LlamaConfig(**{**cfg, **kw}))).eval()

FAMILIES = {"gpt2": gpt2, "llama": llama}

@pytest.fixture(scope="module", params=list(FAMILIES))
def pair(request):
    hf = FAMILIES[request.param]()
    return hf, from_hf(hf)

_EOS = {}

def prompts(padded=True, B=3, seed=1):
    ids = torch.randint(4, V, (B, P), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    if padded: mask[0, :3] = 0; mask[1, :1] = 0  # left padding, different per row
    ids[mask == 0] = PAD
    return ids, mask

def run_both(hf, ours, ids, mask, **kw):
    "Same settings to both; transformers gets do_sample=False and the token ids explicitly, never its defaults."
    kw = {"max_new_tokens": 24, "pad_token_id": PAD, **kw}
    a = hf.generate(ids, attention_mask=mask, do_sample=False, **kw)
    b = generate(ours, ids, attention_mask=mask, **kw)
    return a, b

def assert_same(a, b):
    assert a.shape == b.shape, f"transformers {tuple(a.shape)} vs llmbook {tuple(b.shape)}\n{a}\n{b}"
    assert torch.equal(a, b), f"transformers\n{a}\nllmbook\n{b}"

def eos_in_the_middle(hf, ids, mask, k=0):
    "A token the model picks in the middle of its greedy output: with it as EOS, rows stop at different steps."
    key = (hf.config.model_type, tuple(ids.flatten().tolist()), None if mask is None else tuple(mask.flatten().tolist()))
    if key not in _EOS:
        out = hf.generate(ids, attention_mask=mask, max_new_tokens=24, do_sample=False, eos_token_id=[], pad_token_id=PAD)
        _EOS[key] = common_tokens(out[:, P + 2:P + 12], V, exclude={PAD, BOS})  # chosen early, but not first
    return _EOS[key][k]

def beam_eos(hf, ids, mask, kw, k=0, start=P, vocab=V, exclude=(PAD, BOS), also=(), **gen):
    """EOS for a beam-search case, so that it stops: the k-th of the tokens that each prompt's best beam writes
    (steps 3 to 12, or after `min_new_tokens`) when nothing stops the search, keeping only those with which
    transformers' output holds an EOS. Beam search with such a token runs the same steps until it is among the
    candidates, so the prompts get finished hypotheses. Returns the token and transformers' output with it."""
    key = (hf.config.model_type, "beam", str(sorted(kw.items())))
    if key not in _EOS:
        settings = {"max_new_tokens": 24, **gen, **kw}
        pad = gen.get("pad_token_id", hf.config.pad_token_id)  # no EOS; transformers' beam filler needs a nonzero pad id
        free = hf.generate(ids, attention_mask=mask, do_sample=False, eos_token_id=[] if pad else [pad],
                           **{**settings, "num_return_sequences": kw["num_beams"]})
        first = start + max(2, kw.get("min_new_tokens", 0))
        _EOS[key] = []
        for eos in common_tokens(free[::kw["num_beams"], first:first + 10], vocab, exclude=set(exclude))[:8]:
            eos = [*also, eos] if also else eos
            out = hf.generate(ids, attention_mask=mask, do_sample=False, eos_token_id=eos, **settings)
            if torch.isin(out[:, start:], torch.tensor(eos)).any(): _EOS[key].append((eos, out))
            if len(_EOS[key]) == 2: break
    assert len(_EOS[key]) > k, f"no EOS candidate stops {kw}: rebuild the case"
    return _EOS[key][k]

def assert_eos_reached(out, eos, start=P):
    "The case is one that stops: EOS is in the output (where length penalty and early stopping decide)."
    eos = torch.tensor(eos if isinstance(eos, list) else [eos])
    assert torch.isin(out[:, start:], eos).any(), f"EOS {eos.tolist()} never reached: the case tests no stopping\n{out}"

def common_tokens(new, vocab, exclude):
    "Token ids by the number of rows they appear in, then by count: good EOS candidates to stop several rows."
    rows = torch.zeros(vocab, dtype=torch.long)
    for r in new: rows[r.unique()] += 1
    counts = torch.bincount(new.flatten(), minlength=vocab)
    order = sorted(range(vocab), key=lambda t: (-rows[t].item(), -counts[t].item(), t))
    return [t for t in order if t not in exclude]

# ---------------------------------------------------------------- greedy

@pytest.mark.parametrize("padded", [False, True])
def test_greedy(pair, padded):
    hf, ours = pair
    ids, mask = prompts(padded)
    assert_same(*run_both(hf, ours, ids, mask, eos_token_id=[]))

def test_greedy_single_prompt_no_mask(pair):
    hf, ours = pair
    ids, _ = prompts(False, B=1)
    a = hf.generate(ids, max_new_tokens=40, do_sample=False, eos_token_id=[], pad_token_id=PAD)
    assert_same(a, generate(ours, ids, max_new_tokens=40, eos_token_id=[]))

@pytest.mark.parametrize("k", [0, 1, 2])
def test_greedy_eos_mid_sequence(pair, k):
    hf, ours = pair
    ids, mask = prompts()
    eos = eos_in_the_middle(hf, ids, mask, k)
    a, b = run_both(hf, ours, ids, mask, eos_token_id=eos)
    assert_same(a, b)
    assert (b[:, P:] == eos).any(), "the test should see EOS generated"

def test_greedy_several_eos(pair):
    hf, ours = pair
    ids, mask = prompts()
    eos = [eos_in_the_middle(hf, ids, mask, 0), eos_in_the_middle(hf, ids, mask, 3)]
    assert_same(*run_both(hf, ours, ids, mask, eos_token_id=eos))

@pytest.mark.parametrize("kw", [dict(repetition_penalty=1.3), dict(repetition_penalty=0.8), dict(no_repeat_ngram_size=1),
                                dict(no_repeat_ngram_size=2), dict(no_repeat_ngram_size=3),
                                dict(repetition_penalty=1.2, no_repeat_ngram_size=2)], ids=str)
def test_greedy_penalties(pair, kw):
    hf, ours = pair
    ids, mask = prompts()
    assert_same(*run_both(hf, ours, ids, mask, eos_token_id=eos_in_the_middle(hf, ids, mask), **kw))

def test_greedy_min_new_tokens(pair):
    hf, ours = pair
    ids, mask = prompts()
    eos = eos_in_the_middle(hf, ids, mask)
    a, b = run_both(hf, ours, ids, mask, eos_token_id=eos, min_new_tokens=10)
    assert_same(a, b)
    assert not (b[:, P:P + 10] == eos).any()

# ---------------------------------------------------------------- beam search

BEAM_CASES = [
    dict(num_beams=2), dict(num_beams=3), dict(num_beams=5),
    dict(num_beams=4, num_return_sequences=4), dict(num_beams=3, num_return_sequences=2),
    dict(num_beams=3, length_penalty=0.0), dict(num_beams=3, length_penalty=-1.0),
    # a length penalty of 2 favours the long unfinished beams: all beams are returned, so the finished ones show
    dict(num_beams=3, length_penalty=2.0, num_return_sequences=3),
    dict(num_beams=3, early_stopping=True), dict(num_beams=3, early_stopping="never"),
    dict(num_beams=4, early_stopping="never", length_penalty=2.0, num_return_sequences=4),
    dict(num_beams=4, early_stopping="never", length_penalty=-0.5),
    dict(num_beams=3, early_stopping=True, length_penalty=0.5, num_return_sequences=3),
    dict(num_beams=3, repetition_penalty=1.4), dict(num_beams=3, no_repeat_ngram_size=2),
    dict(num_beams=3, min_new_tokens=8),
]

@pytest.mark.parametrize("kw", BEAM_CASES, ids=str)
@pytest.mark.parametrize("eos_k", [0, 1])
def test_beam_search(pair, kw, eos_k):
    hf, ours = pair
    ids, mask = prompts()
    eos, a = beam_eos(hf, ids, mask, kw, eos_k, pad_token_id=PAD)
    b = generate(ours, ids, attention_mask=mask, max_new_tokens=24, pad_token_id=PAD, eos_token_id=eos, **kw)
    assert_same(a, b)
    assert_eos_reached(b, eos)

@pytest.mark.parametrize("kw", [dict(num_beams=3), dict(num_beams=4, num_return_sequences=2, length_penalty=0.7)], ids=str)
def test_beam_search_no_eos_unpadded(pair, kw):
    hf, ours = pair
    ids, mask = prompts(padded=False)
    assert_same(*run_both(hf, ours, ids, None, eos_token_id=[], **kw))

def test_beam_search_several_eos(pair):
    hf, ours = pair
    ids, mask = prompts()
    eos = [eos_in_the_middle(hf, ids, mask, 0), eos_in_the_middle(hf, ids, mask, 1)]
    assert_same(*run_both(hf, ours, ids, mask, eos_token_id=eos, num_beams=3, num_return_sequences=2))

def test_beam_search_scores_and_trace(pair):
    "The returned scores are transformers' `sequences_scores`; the trace has one record per step."
    hf, ours = pair
    ids, mask = prompts()
    eos = eos_in_the_middle(hf, ids, mask)
    out = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=24, num_beams=3, num_return_sequences=2,
                      eos_token_id=eos, pad_token_id=PAD, return_dict_in_generate=True, output_scores=True)
    cfg = generation_config(ours, num_beams=3, num_return_sequences=2, eos_token_id=eos, pad_token_id=PAD)
    trace = []
    seqs, scores = beam_search(DecoderSession(ours, ids, mask), cfg, 24, logits_processors(cfg, P), trace=trace)
    assert_same(out.sequences, seqs)
    torch.testing.assert_close(scores, out.sequences_scores, atol=1e-4, rtol=0)
    assert 1 <= len(trace) <= 24 and trace[0]["token"].shape == (3, 3)

# ---------------------------------------------------------------- caches, streaming

@pytest.mark.parametrize("kw", [dict(), dict(num_beams=3, num_return_sequences=2)], ids=str)
def test_static_cache_same_ids(pair, kw):
    hf, ours = pair
    ids, mask = prompts()
    eos = eos_in_the_middle(hf, ids, mask)
    a = generate(ours, ids, attention_mask=mask, max_new_tokens=24, eos_token_id=eos, pad_token_id=PAD, **kw)
    b = generate(ours, ids, attention_mask=mask, max_new_tokens=24, eos_token_id=eos, pad_token_id=PAD, static_cache=True, **kw)
    assert_same(a, b)

def test_stream_equals_generate(pair):
    hf, ours = pair
    ids, mask = prompts()
    eos = eos_in_the_middle(hf, ids, mask)
    full = generate(ours, ids, attention_mask=mask, max_new_tokens=24, eos_token_id=eos)
    steps = list(stream(ours, ids, attention_mask=mask, max_new_tokens=24, eos_token_id=eos))
    assert_same(full[:, P:], torch.stack(steps, 1))
    seen = []
    generate(ours, ids, attention_mask=mask, max_new_tokens=24, eos_token_id=eos, streamer=seen.append)
    assert_same(full[:, P:], torch.stack(seen, 1))

def test_hf_text_streamer_works():
    "An object with put/end (transformers' streamer protocol) gets the prompt, then each step's tokens."
    class Recorder:
        def __init__(self): self.calls = []
        def put(self, ids): self.calls.append(ids)
        def end(self): self.calls.append("end")
    ours = from_hf(gpt2())
    ids, _ = prompts(False, B=1)
    r = Recorder()
    out = generate(ours, ids, max_new_tokens=5, eos_token_id=[], streamer=r)
    assert torch.equal(r.calls[0], ids) and r.calls[-1] == "end" and len(r.calls) == 7
    assert torch.equal(torch.cat(r.calls[1:-1]), out[0, P:])

def test_defaults_from_config(pair):
    "Without explicit settings, both take EOS and padding from the model's config (greedy, 20 new tokens)."
    hf, ours = pair
    ids, mask = prompts()
    hf.generation_config.eos_token_id = eos_in_the_middle(hf, ids, mask)  # so that the default EOS is reached
    ours.config.eos_token_id = hf.generation_config.eos_token_id
    try:
        a, b = hf.generate(ids, attention_mask=mask, do_sample=False), generate(ours, ids, attention_mask=mask)
        assert_same(a, b)
        assert b.shape[1] <= P + 20 and (b[:, P:] == ours.config.eos_token_id).any()
    finally:
        hf.generation_config.eos_token_id = ours.config.eos_token_id = 2

def test_compiled_step_same_ids():
    "compile=True (torch.compile of the one-token step) with a static cache changes nothing but the speed."
    import logging
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
    ours = from_hf(gpt2())
    ids, mask = prompts()
    for kw in (dict(), dict(num_beams=3, num_return_sequences=2)):
        assert_same(generate(ours, ids, attention_mask=mask, max_new_tokens=12, **kw),
                    generate(ours, ids, attention_mask=mask, max_new_tokens=12, static_cache=True, compile=True, **kw))

# ---------------------------------------------------------------- sampling

def test_seeded_sampling_is_reproducible(pair):
    _, ours = pair
    ids, mask = prompts()
    kw = dict(do_sample=True, max_new_tokens=20, temperature=0.9, top_k=40, top_p=0.9, eos_token_id=[])
    a = generate(ours, ids, attention_mask=mask, seed=123, **kw)
    b = generate(ours, ids, attention_mask=mask, seed=123, **kw)
    c = generate(ours, ids, attention_mask=mask, seed=124, **kw)
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(generate(ours, ids, attention_mask=mask, generator=g1, **kw),
                       generate(ours, ids, attention_mask=mask, generator=g2, **kw))
    beams = dict(kw, num_beams=3, num_return_sequences=2)
    assert torch.equal(generate(ours, ids, attention_mask=mask, seed=5, **beams),
                       generate(ours, ids, attention_mask=mask, seed=5, **beams))

def test_num_return_sequences_sampling(pair):
    _, ours = pair
    ids, mask = prompts()
    out = generate(ours, ids, attention_mask=mask, do_sample=True, num_return_sequences=4, max_new_tokens=10,
                   eos_token_id=[], seed=0)
    assert out.shape == (12, P + 10)
    assert torch.equal(out[:, :P], ids.repeat_interleave(4, 0))  # each prompt's samples are adjacent, as in transformers

# ---------------------------------------------------------------- logits processors, one by one

def scores_and_ids(B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, V, generator=g) * 3
    scores[0, :5] = scores[0, 5]  # ties at the top
    ids = torch.randint(0, V, (B, 12), generator=g)
    ids[1, 6:] = ids[1, :6]  # a repeated stretch, for n-grams
    return scores, ids

@pytest.mark.parametrize("t", [0.3, 0.7, 1.0, 1.8])
def test_temperature_equals_hf(t):
    s, ids = scores_and_ids()
    torch.testing.assert_close(apply_temperature(s, t), lp.TemperatureLogitsWarper(t)(ids, s.clone()), atol=0, rtol=0)

@pytest.mark.parametrize("k,keep", [(1, 1), (5, 1), (50, 1), (V + 10, 1), (1, 3)])
def test_top_k_equals_hf(k, keep):
    s, ids = scores_and_ids()
    torch.testing.assert_close(top_k_filter(s, k, keep), lp.TopKLogitsWarper(k, min_tokens_to_keep=keep)(ids, s.clone()), atol=0, rtol=0)

@pytest.mark.parametrize("p,keep", [(0.01, 1), (0.5, 1), (0.9, 1), (0.999, 1), (1.0, 1), (0.3, 4)])
def test_top_p_equals_hf(p, keep):
    s, ids = scores_and_ids()
    torch.testing.assert_close(top_p_filter(s, p, keep), lp.TopPLogitsWarper(p, min_tokens_to_keep=keep)(ids, s.clone()), atol=0, rtol=0)

@pytest.mark.parametrize("m,keep", [(0.0, 1), (0.05, 1), (0.3, 1), (1.0, 1), (0.5, 3)])
def test_min_p_equals_hf(m, keep):
    s, ids = scores_and_ids()
    torch.testing.assert_close(min_p_filter(s, m, keep), lp.MinPLogitsWarper(m, min_tokens_to_keep=keep)(ids, s.clone()), atol=0, rtol=0)

@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.3, 2.0])
def test_repetition_penalty_equals_hf(penalty):
    s, ids = scores_and_ids()
    torch.testing.assert_close(repetition_penalty(s, ids, penalty),
                               lp.RepetitionPenaltyLogitsProcessor(penalty)(ids, s.clone()), atol=0, rtol=0)
    skip = torch.tensor([0, 3, 11, 5])  # left padding per row, ignored
    torch.testing.assert_close(repetition_penalty(s, ids, penalty, skip),
                               lp.RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=skip)(ids, s.clone()), atol=0, rtol=0)

@pytest.mark.parametrize("n", [1, 2, 3, 5, 13])
def test_no_repeat_ngram_equals_hf(n):
    s, ids = scores_and_ids()
    torch.testing.assert_close(no_repeat_ngram(s, ids, n), lp.NoRepeatNGramLogitsProcessor(n)(ids, s.clone()), atol=0, rtol=0)

def test_processor_pipeline_equals_hf():
    "The whole pipeline, in transformers' order: penalties, EOS suppression, then temperature, top-k, top-p, min-p."
    s, ids = scores_and_ids()
    cfg = generation_config(None, do_sample=True, temperature=0.8, top_k=30, top_p=0.9, min_p=0.02, repetition_penalty=1.2,
                            no_repeat_ngram_size=2, min_new_tokens=3, eos_token_id=[2, 7])
    ours = apply_processors(logits_processors(cfg, prompt_len=10), s, ids)
    theirs = lp.LogitsProcessorList([
        lp.RepetitionPenaltyLogitsProcessor(1.2), lp.NoRepeatNGramLogitsProcessor(2),
        lp.MinNewTokensLengthLogitsProcessor(10, 3, [2, 7]), lp.TemperatureLogitsWarper(0.8),
        lp.TopKLogitsWarper(30), lp.TopPLogitsWarper(0.9), lp.MinPLogitsWarper(0.02)])(ids, s.clone())
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
    assert [p.fn.__name__ for p in logits_processors(cfg, 10)] == [
        "repetition_penalty", "no_repeat_ngram", "_no_eos_before", "apply_temperature", "top_k_filter", "top_p_filter", "min_p_filter"]

# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("kw,msg", [
    (dict(do_sample=True, temperature=0.0), "temperature must be a finite number > 0 when sampling, got 0.0"),
    (dict(do_sample=True, temperature=-1.0), "temperature must be a finite number > 0 when sampling, got -1.0"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\], got 0.0"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\], got 1.5"),
    (dict(num_return_sequences=2), "num_return_sequences=2 is more than num_beams=1"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences=3 is more than num_beams=2"),
    (dict(num_beams=0), "num_beams must be an int >= 1, got 0"),
    (dict(early_stopping="sometimes"), "early_stopping must be True, False or 'never', got 'sometimes'"),
    (dict(top_k=-1), "top_k must be an int >= 0"),
    (dict(min_p=2.0), r"min_p must be in \[0, 1\], got 2.0"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be > 0, got 0.0"),
    (dict(max_new_tokens=0), "max_new_tokens must be an int >= 1"),
    (dict(min_new_tokens=30, max_new_tokens=10), "min_new_tokens=30 is more than max_new_tokens=10"),
    (dict(eos_token_id=V), f"eos_token_id {V} is not a token id of the vocabulary \\[0, {V}\\)"),
    (dict(max_new_tokens=200), r"7 prompt tokens \+ max_new_tokens=200 = 207 do not fit the context of 128 tokens: ask for at most 121"),
    (dict(stop_strings=["x"]), "stop_strings need a tokenizer"),
    (dict(num_beams=2, streamer=print), "streaming needs num_beams=1"),
])
def test_bad_settings(kw, msg):
    ours = from_hf(gpt2())
    ids, _ = prompts(False, B=1)
    with pytest.raises(ValueError, match=msg):
        generate(ours, ids, **kw)

def test_bad_prompts():
    ours = from_hf(gpt2(bos_token_id=None))
    with pytest.raises(ValueError, match="the prompt is empty and there is no bos_token_id to start from"):
        generate(ours, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="the prompt has 130 tokens but the context of the model is 128 tokens"):
        generate(ours, torch.full((1, 130), 5))
    with pytest.raises(ValueError, match="fills the context of 128: no room"):
        generate(ours, torch.full((1, 128), 5), max_new_tokens=None)
    ids = torch.full((2, 5), 5); mask = torch.ones(2, 5, dtype=torch.long); mask[1, -2:] = 0
    with pytest.raises(ValueError, match="row 1 of attention_mask has padding after its first token"):
        generate(ours, ids, attention_mask=mask)
    with pytest.raises(TypeError, match=r"unknown generation argument\(s\) \['max_lenght'\]"):
        generate(ours, ids, max_lenght=5)
    with pytest.raises(ValueError, match="input_ids must be \\(B, T\\)"):
        generate(ours, torch.full((5,), 5))

def test_empty_prompt_starts_from_bos():
    hf = gpt2()
    ours = from_hf(hf)
    a = hf.generate(torch.full((1, 1), BOS), max_new_tokens=10, do_sample=False, eos_token_id=[], pad_token_id=PAD)
    assert_same(a, generate(ours, torch.zeros(1, 0, dtype=torch.long), max_new_tokens=10, eos_token_id=[]))
    assert_same(a, generate(ours, max_new_tokens=10, eos_token_id=[]))

def test_context_limit_stop():
    "max_new_tokens=None generates until EOS or until the context is full, never past it."
    ours = from_hf(gpt2())
    out = generate(ours, torch.full((1, 120), 5), max_new_tokens=None, eos_token_id=[])
    assert out.shape == (1, 128)

def test_stop_strings():
    ours = from_hf(gpt2())
    ids, _ = prompts(False, B=2)
    decode = lambda toks: " ".join(map(str, toks))  # a toy tokenizer: token ids as words
    free = generate(ours, ids, max_new_tokens=20, eos_token_id=[])
    word = str(free[0, P + 4].item())  # a token the first row generates at step 5
    out = generate(ours, ids, max_new_tokens=20, eos_token_id=[], stop_strings=word, tokenizer=decode)
    first = (free[0, P:] == int(word)).nonzero()[0, 0].item()
    assert torch.equal(out[0, :P + first + 1], free[0, :P + first + 1])
    assert (out[0, P + first + 1:] == PAD).all()  # the row stopped and was padded
    assert word in decode(out[0, P:P + first + 1].tolist())


# ---------------------------------------------------------------- encoder-decoders: T5 and BART

SV, S = 120, 9  # vocabulary and source length of the seq2seq models

def t5(**kw):
    cfg = dict(vocab_size=SV, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, decoder_start_token_id=0,
               pad_token_id=0, eos_token_id=1, attn_implementation="eager", initializer_factor=0.5)
    torch.manual_seed(0)
    m = randomize(T5ForConditionalGeneration(T5Config(**{**cfg, **kw}))).eval()
    # a random model with tied embeddings predicts its input token again and again (T5 would only ever write its
    # start token 0); an output layer of its own makes it write varied text. T5Config(tie_word_embeddings=False)
    # is not honoured by transformers 5.24, so untie by hand: the config flag also turns off the d**-0.5 scaling.
    m.config.tie_word_embeddings = False
    m.lm_head.weight = torch.nn.Parameter(torch.randn(SV, 64, generator=torch.Generator().manual_seed(2)) * 0.3)
    return m

def bart(**kw):
    cfg = dict(vocab_size=SV, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
               decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=64,
               bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2, attn_implementation="eager",
               init_std=0.1)
    torch.manual_seed(0)
    return randomize(BartForConditionalGeneration(BartConfig(**{**cfg, **kw}))).eval()

# what each checkpoint's generation_config adds, passed to llmbook explicitly (BART forces EOS at the length limit)
S2S = {"t5": (t5, {}), "bart": (bart, {"forced_eos_token_id": 2})}

@pytest.fixture(scope="module", params=list(S2S))
def s2s(request):
    make, extra = S2S[request.param]
    hf = make()
    return hf, from_hf(hf), extra

def sources(hf, padded=True):
    ids = torch.randint(3, SV, (3, S), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    if padded: mask[0, -4:] = 0; mask[1, -1:] = 0  # encoders take padding on either side; tokenizers pad on the right
    ids[mask == 0] = hf.config.pad_token_id
    return ids, mask

def s2s_eos(hf, ids, mask, k=0):
    "A token the decoder picks in the middle of its greedy output."
    key = (hf.config.model_type, "source")
    if key not in _EOS:
        out = hf.generate(ids, attention_mask=mask, max_new_tokens=20, do_sample=False, eos_token_id=[])
        specials = {hf.config.pad_token_id, hf.config.decoder_start_token_id, getattr(hf.config, "bos_token_id", None)}
        _EOS[key] = common_tokens(out[:, 3:12], SV, exclude=specials)
    return _EOS[key][k]

def assert_same_s2s(hf, a, b, eos):
    """Equal ids, finished beams included. Once a row has stopped, transformers fills the rest with
    `pad_token_id or eos_token_id[0]` (EOS for T5, whose pad id is 0), and llmbook uses the same rule: each row must
    be equal up to and including its first EOS, and hold exactly that filler after it."""
    assert a.shape == b.shape, f"transformers {tuple(a.shape)} vs llmbook {tuple(b.shape)}\n{a}\n{b}"
    pad, eos = hf.config.pad_token_id, torch.tensor(eos if isinstance(eos, list) else [eos])
    fill = pad or eos[0].item()
    for r, (x, y) in enumerate(zip(a, b)):
        stops = torch.isin(x[1:], eos).nonzero()  # x[0] is the decoder start token (T5's is the pad id 0)
        end = 1 + stops[0, 0].item() if len(stops) else len(x) - 1
        assert torch.equal(x[:end + 1], y[:end + 1]), f"row {r} differs up to its end\ntransformers {x}\nllmbook      {y}"
        assert (x[end + 1:] == fill).all(), f"row {r}: transformers filled with something else than {fill}\n{x}"
        assert torch.equal(y[end + 1:], x[end + 1:]), f"row {r}: llmbook filled with something else than {fill}\n{y}"

def s2s_beam_eos(hf, ids, mask, kw, k):
    specials = {hf.config.pad_token_id, hf.config.decoder_start_token_id, getattr(hf.config, "bos_token_id", None)}
    # BART forces its EOS at the length limit (`forced_eos_token_id`), so its real EOS is always one of the stops;
    # its random model repeats one token per row, and those short finished beams lose to the forced long ones
    also = (hf.config.eos_token_id,) if hf.config.model_type == "bart" else ()
    return beam_eos(hf, ids, mask, kw, k, start=1, vocab=SV, exclude=specials - {None}, also=also, max_new_tokens=20)

def run_s2s(hf, ours, extra, ids, mask, **kw):
    kw = {"max_new_tokens": 20, **kw}
    return hf.generate(ids, attention_mask=mask, do_sample=False, **kw), generate(ours, ids, attention_mask=mask, **extra, **kw)

@pytest.mark.parametrize("padded", [False, True])
def test_seq2seq_greedy(s2s, padded):
    hf, ours, extra = s2s
    ids, mask = sources(hf, padded)
    a, b = run_s2s(hf, ours, extra, ids, mask, eos_token_id=[])
    assert_same(a, b)
    assert (b[:, 0] == hf.config.decoder_start_token_id).all()  # decoder ids, from the start token

@pytest.mark.parametrize("kw", [dict(), dict(repetition_penalty=1.3), dict(no_repeat_ngram_size=2), dict(min_new_tokens=6),
                                dict(forced_bos_token_id=5)], ids=str)
def test_seq2seq_greedy_eos(s2s, kw):
    hf, ours, extra = s2s
    ids, mask = sources(hf)
    eos = s2s_eos(hf, ids, mask)
    a, b = run_s2s(hf, ours, extra, ids, mask, eos_token_id=eos, **kw)
    assert_same(a, b)
    if "forced_bos_token_id" in kw: assert (b[:, 1] == 5).all()

S2S_BEAMS = [dict(num_beams=2), dict(num_beams=4, num_return_sequences=3), dict(num_beams=3, length_penalty=0.0),
             dict(num_beams=3, length_penalty=2.0), dict(num_beams=3, early_stopping=True),
             dict(num_beams=3, early_stopping="never", num_return_sequences=2), dict(num_beams=3, repetition_penalty=1.3),
             dict(num_beams=3, no_repeat_ngram_size=2)]

@pytest.mark.parametrize("kw", S2S_BEAMS, ids=str)
@pytest.mark.parametrize("eos_k", [0, 1])
def test_seq2seq_beam_search(s2s, kw, eos_k):
    hf, ours, extra = s2s
    ids, mask = sources(hf)
    eos, a = s2s_beam_eos(hf, ids, mask, kw, eos_k)
    b = generate(ours, ids, attention_mask=mask, max_new_tokens=20, eos_token_id=eos, **extra, **kw)
    assert_same_s2s(hf, a, b, eos)
    assert_eos_reached(b, eos, start=1)

def test_t5_beam_fill_is_transformers():
    """With T5's pad id 0, shorter beams are filled with EOS (`pad_token_id or eos_token_id[0]`), by both libraries.
    Filling with the pad id instead, or a beam that never stopped (its EOS replaced by the pad id), fails."""
    hf = t5()
    ours = from_hf(hf)
    ids, mask = sources(hf)
    kw = dict(num_beams=4, num_return_sequences=4)
    eos, a = s2s_beam_eos(hf, ids, mask, kw, 0)
    b = generate(ours, ids, attention_mask=mask, max_new_tokens=20, eos_token_id=eos, **kw)
    assert_same_s2s(hf, a, b, eos)
    first = (b[:, 1:] == eos).int().argmax(1) + 1  # each row's first EOS
    after = torch.arange(b.shape[1])[None] > first[:, None]
    assert (after & (b == eos)).any(), "no row was filled: the case shows nothing"
    with pytest.raises(AssertionError, match="llmbook filled with something else than"):
        assert_same_s2s(hf, a, b.masked_fill(after, hf.config.pad_token_id), eos)  # the pad id as filler
    with pytest.raises(AssertionError, match="differs up to its end"):
        assert_same_s2s(hf, a, b.masked_fill(b == eos, hf.config.pad_token_id), eos)

def test_seq2seq_static_cache_and_sampling(s2s):
    hf, ours, extra = s2s
    ids, mask = sources(hf)
    for kw in (dict(), dict(num_beams=3, num_return_sequences=2)):
        assert_same(generate(ours, ids, attention_mask=mask, max_new_tokens=15, **extra, **kw),
                    generate(ours, ids, attention_mask=mask, max_new_tokens=15, static_cache=True, **extra, **kw))
    kw = dict(do_sample=True, max_new_tokens=15, num_return_sequences=2, top_p=0.9)
    a = generate(ours, ids, attention_mask=mask, seed=0, **kw)
    assert a.shape[0] == 6 and torch.equal(a, generate(ours, ids, attention_mask=mask, seed=0, **kw))

def test_seq2seq_bad_input():
    ours = from_hf(bart())
    with pytest.raises(ValueError, match="the encoder input is empty"):
        generate(ours, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"1 decoder start token \+ max_new_tokens=100 = 101 do not fit the context of 64 tokens: ask for at most 63"):
        generate(ours, torch.full((1, 5), 7), max_new_tokens=100)
    with pytest.raises(ValueError, match="the prompt has 70 tokens but the context of the model is 64 tokens"):
        generate(ours, torch.full((1, 70), 7))
    t5_ours = from_hf(t5())  # relative positions: no context limit, so "until the context is full" means nothing
    with pytest.raises(ValueError, match="this model has no context limit"):
        generate(t5_ours, torch.full((1, 5), 7), max_new_tokens=None)
    assert generate(t5_ours, torch.full((1, 600), 7), max_new_tokens=3, eos_token_id=[]).shape == (1, 4)
