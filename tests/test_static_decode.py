"""Decoding in one graph (the performance chapter), proven on the CPU: a static cache of fixed-address buffers,
greedy steps through `GreedyGraph`, compiled with `fullgraph=True, dynamic=False`.

- a whole greedy `generate` compiles two graphs (the prompt and the step) and none over 100 decode steps, nor for
  a second prompt of the same length; the ids equal the clear loop's and transformers';
- at most 0.25 host reads (`.item()`, `bool()`, `int()`, `float()`, `.tolist()`) per greedy step at batch 1 with
  an EOS id, and the buffers keep their addresses;
- beams, padded batches, sliding windows and encoder-decoders (T5's relative positions) through the static,
  compiled step give the same ids as the clear path;
- bad settings are refused.
Graphs are counted with dynamo's `CompileCounter` backend (it runs each graph as traced, without Inductor)."""
import logging
from dataclasses import replace
import pytest
import torch
import torch._dynamo.utils as dynamo_utils
from torch._dynamo.testing import CompileCounter
from llmbook.blocks import preset
from llmbook.decoder import Decoder
from llmbook.seq2seq import Seq2Seq
from llmbook.hub import from_hf
from llmbook.generation import generate, GreedyGraph, DecoderSession, DECODE_CHECK_EVERY
from llmbook.perf import count_host_reads
from test_generation_parity import gpt2, llama, prompts, eos_in_the_middle, assert_same, P, PAD

logging.getLogger("torch._dynamo").setLevel(logging.ERROR)

@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Decoder(replace(preset("tiny-gpt2"), max_seq_len=256, init_std=0.1)).eval()

def ids_of(seed, T=9, B=1):
    return torch.randint(3, 256, (B, T), generator=torch.Generator().manual_seed(seed))

def recompiles() -> int:
    return sum(dynamo_utils.counters["recompiles"].values())

def test_one_graph_no_recompiles(model):
    torch._dynamo.reset()
    counter = CompileCounter()
    ids = ids_of(0)
    clear = generate(model, ids, max_new_tokens=101, eos_token_id=[])
    before = recompiles()
    fast = generate(model, ids, max_new_tokens=101, eos_token_id=[], static_cache=True, compile=counter)
    assert torch.equal(fast, clear) and fast.shape == (1, 9 + 101)
    assert counter.frame_count == 2  # the prompt, and the step: none more over 100 steps
    again = generate(model, ids_of(1), max_new_tokens=101, eos_token_id=[], static_cache=True, compile=counter)
    assert counter.frame_count == 2 and recompiles() == before  # another prompt of the same length: nothing new
    assert torch.equal(again, generate(model, ids_of(1), max_new_tokens=101, eos_token_id=[]))

def test_host_reads_per_greedy_step(model):
    counter = CompileCounter()
    kw = dict(max_new_tokens=101, eos_token_id=255, pad_token_id=0, static_cache=True, compile=counter)
    generate(model, ids_of(2), **kw)  # compile first
    with count_host_reads() as reads:
        generate(model, ids_of(3), **kw)
    assert reads.total / 100 <= 0.25, dict(reads)
    assert reads["__bool__"] == 100 // DECODE_CHECK_EVERY  # the EOS check, read back every DECODE_CHECK_EVERY steps
    with count_host_reads() as clear_reads:
        generate(model, ids_of(3), max_new_tokens=101, eos_token_id=255, pad_token_id=0)
    assert clear_reads.total >= 100  # the clear loop asks at every step: the count above is not vacuous

def test_fixed_addresses(model):
    graph = GreedyGraph(model, rows=1, max_len=128, eos=[255], pad=0, backend=CompileCounter())
    buffers = lambda: [t.data_ptr() for t in (*graph.cache.k, *graph.cache.v, graph.cache.pos, graph.cache.mask,
                                               graph.tokens, graph.out, graph.column, graph.running)]
    session = DecoderSession(model, ids_of(4), max_len=128)
    session.static = graph.cache
    _, logits = session.start()
    start = buffers()
    new = graph.run(logits, 60)
    assert buffers() == start and session.cache is graph.cache
    assert torch.equal(new, generate(model, ids_of(4), max_new_tokens=60, eos_token_id=255, pad_token_id=0)[:, 9:])

def test_stops_like_the_clear_loop(model):
    "EOS in the middle: the extra steps between two checks only write padding, and are cut off."
    ids = ids_of(5, B=3)
    clear = generate(model, ids, max_new_tokens=60)
    eos = [int(clear[0, 9 + 3]), int(clear[1, 9 + 13]), int(clear[2, 9 + 21])]  # each row ends at another step
    a = generate(model, ids, max_new_tokens=60, eos_token_id=eos, pad_token_id=0)
    b = generate(model, ids, max_new_tokens=60, eos_token_id=eos, pad_token_id=0, static_cache=True)
    assert torch.equal(a, b) and a.shape[1] < 9 + 60

@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_same_ids_as_transformers(family):
    hf = {"gpt2": gpt2, "llama": llama}[family]()
    ours = from_hf(hf)
    ids, mask = prompts()
    eos = eos_in_the_middle(hf, ids, mask)
    a = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=24, eos_token_id=eos, pad_token_id=PAD)
    b = generate(ours, ids, attention_mask=mask, max_new_tokens=24, eos_token_id=eos, pad_token_id=PAD,
                 static_cache=True, compile=CompileCounter())
    assert_same(a, b)

@pytest.mark.parametrize("kind", ["beams", "sampling", "sliding window", "seq2seq"])
def test_other_paths_static_compiled(kind):
    "Settings that keep Python between the steps: the static, compiled model step changes nothing but the speed."
    torch.manual_seed(0)
    counter, extra = CompileCounter(), {}
    if kind == "seq2seq":
        m = Seq2Seq(preset("tiny-t5")).eval()
        ids, mask, extra = ids_of(6, T=11, B=2), None, dict(decoder_start_token_id=0, num_beams=2)
    else:
        cfg = replace(preset("tiny-llama"), max_seq_len=256)
        if kind == "sliding window": cfg = replace(cfg, layer_types=["sliding_attention", "full_attention"], sliding_window=4)
        m = Decoder(cfg).eval()
        ids = ids_of(6, B=2)
        mask = torch.ones_like(ids)
        mask[0, :3] = 0
        extra = {"beams": dict(num_beams=3, num_return_sequences=2), "sampling": dict(do_sample=True, seed=0)}.get(kind, {})
    kw = dict(attention_mask=mask, max_new_tokens=30, eos_token_id=[], **extra)
    clear = generate(m, ids, **kw)
    fast = generate(m, ids, static_cache=True, compile=counter, **kw)
    assert torch.equal(fast, clear)
    assert counter.frame_count <= 2  # the prompt (encoder-decoders: none) and one step graph for all 30 steps

def test_refusals(model):
    with pytest.raises(TypeError, match="compile must be True/False, a backend name or a backend function, got int"):
        generate(model, ids_of(0), max_new_tokens=3, compile=3)
    with pytest.raises(ValueError, match="static_cache and compile do not apply to it"):
        generate(model, ids_of(0), max_new_tokens=3, static_cache=True, assistant_model=model)
    with pytest.raises(ValueError, match="token id 300 is outside the vocabulary"):
        generate(model, torch.tensor([[1, 300]]), max_new_tokens=3, static_cache=True, compile=CompileCounter())

def test_model_changed_between_calls(model):
    "A GreedyGraph is reused only for the same shapes, device and dtype: a model cast to float64 gets new buffers."
    ids = ids_of(7)
    generate(model, ids, max_new_tokens=20, static_cache=True)  # a float32 GreedyGraph for this model
    model.double()
    try:
        fast = generate(model, ids, max_new_tokens=20, static_cache=True)
        assert torch.equal(fast, generate(model, ids, max_new_tokens=20))
    finally: model.float()
