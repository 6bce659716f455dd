"""Issue 16, the silent wrong results: each setting llmbook accepts changes what it computes the way the reference
(transformers) does. The refusals are in `test_bad_inputs.py`."""
import json
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from llmbook.hub import from_hf

def tiny_llama(**kw):
    cfg = dict(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=4096, rope_theta=1e4, bos_token_id=1, eos_token_id=2,
               pad_token_id=0, initializer_range=0.2)
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**cfg, **kw})).eval()

def test_bf16_rope_keeps_fp32_frequencies(tmp_path):
    "bf16 Llama: the rotary frequencies stay fp32 (as transformers keeps them), so long positions agree with HF."
    hf = tiny_llama()
    hf.save_pretrained(tmp_path)
    hf16 = LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    ours = from_hf(tmp_path, dtype=torch.bfloat16)
    assert ours.pos.rope.inv_freq.dtype == torch.float32
    assert ours.to(torch.bfloat16).pos.rope.inv_freq.dtype == torch.float32  # a later cast keeps it too
    ids = torch.randint(3, 512, (1, 3072), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs, mine = hf16(ids).logits.argmax(-1)[0, 2048:], ours(ids).argmax(-1)[0, 2048:]
    agreement = (theirs == mine).float().mean().item()
    assert agreement > 0.8, f"argmax agreement with HF bf16 at positions 2048-3071 is {agreement:.1%}"  # 15% with bf16 frequencies

# --- item 2: every generation setting a checkpoint ships is carried (or refused, in test_bad_inputs.py)
from transformers import BartConfig, BartForConditionalGeneration, GenerationConfig
from llmbook.generation import generate

def small_llama(**kw):
    cfg = dict(vocab_size=320, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=3,
               initializer_range=0.1)
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**cfg, **kw})).eval()

def test_eos_list_and_generation_config_carried(tmp_path):
    "Llama 3.1 Instruct style: several EOS ids in config.json and generation_config.json; HF stops on any, so does llmbook."
    hf = small_llama()
    ids = torch.randint(4, 320, (2, 6), generator=torch.Generator().manual_seed(1))
    free = hf.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=[])[:, 6:]  # where greedy goes
    eos = [310, int(free[0, 3]), int(free[1, 5])]  # the first id never comes; rows end on the second and third
    hf.config.eos_token_id = eos
    hf.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=eos, pad_token_id=3, max_new_tokens=12)
    hf.save_pretrained(tmp_path)
    hf = LlamaForCausalLM.from_pretrained(tmp_path).eval()
    ours = from_hf(tmp_path)
    assert ours.config.eos_token_id == eos and ours.config.generation == {"max_new_tokens": 12}
    theirs, mine = hf.generate(ids, do_sample=False), generate(ours, ids)  # each with the checkpoint's own settings
    assert torch.equal(theirs, mine), f"{theirs}\n{mine}"
    assert mine.shape[1] < 6 + 12  # stopped early on the listed EOS ids

def test_bart_forced_tokens_and_lengths_carried(tmp_path):
    "BART's forced_bos/forced_eos and its max_length/min_length/num_beams reach generate as in transformers."
    cfg = BartConfig(vocab_size=96, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                     bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2)
    torch.manual_seed(0)
    hf = BartForConditionalGeneration(cfg).eval()
    hf.generation_config = GenerationConfig(bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2,
                                            forced_bos_token_id=0, forced_eos_token_id=2, max_length=9, min_length=4,
                                            num_beams=2, no_repeat_ngram_size=2)
    hf.save_pretrained(tmp_path)
    ours = from_hf(tmp_path)
    assert ours.config.generation == {"forced_bos_token_id": 0, "forced_eos_token_id": 2, "max_new_tokens": 8,
                                      "min_new_tokens": 3, "num_beams": 2, "no_repeat_ngram_size": 2}
    ids = torch.randint(3, 96, (2, 7), generator=torch.Generator().manual_seed(2))
    theirs, mine = hf.generate(ids), generate(ours, ids)
    assert torch.equal(theirs, mine), f"{theirs}\n{mine}"
    assert (mine[:, 1] == 0).all() and (mine[:, -1] == 2).all()  # forced first and last tokens

# --- item 11: training only some parameters works (AdamW got an empty group before)
from llmbook.blocks import preset
from llmbook.decoder import Decoder
from llmbook.finetune import add_lora
from llmbook.training import make_optimizer

@pytest.mark.parametrize("which", ["lora", "biases"])
def test_train_only_adapters_or_biases(which):
    torch.manual_seed(0)
    m = Decoder(preset("tiny-gpt2"))
    if which == "lora": add_lora(m)
    else:
        for n, p in m.named_parameters(): p.requires_grad_(n.endswith(".bias"))
    opt = make_optimizer(m)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    ids = torch.randint(0, 256, (2, 8))
    torch.nn.functional.cross_entropy(m(ids).flatten(0, 1), ids.flatten()).backward()
    opt.step()
    moved = {n for n, p in m.named_parameters() if not torch.equal(p, before[n])}
    assert moved and moved == {n for n, p in m.named_parameters() if p.requires_grad}

# --- item 4: every field the Decoder accepts changes what it computes
FIELDS = {"embed_scale": True, "embed_norm": True, "head_bias": True, "output_scale": 0.5, "pos_offset": 2,
          "type_vocab_size": 2}

@pytest.mark.parametrize("field", list(FIELDS))
def test_decoder_honours_field(field):
    ids = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(0))
    def logits(**kw):
        torch.manual_seed(0)
        m = Decoder(preset("tiny-gpt2", **kw)).eval()
        for n, p in m.named_parameters():  # nothing at its neutral initial value (biases 0, norm gains 1)
            if n.endswith("bias") or "norm" in n: torch.nn.init.normal_(p, 0.5, 0.1)
        extra = {"token_type_ids": torch.ones_like(ids)} if "type_vocab_size" in kw else {}
        with torch.no_grad(): return m(ids, **extra)
    assert not torch.allclose(logits(), logits(**{field: FIELDS[field]}))

def test_checkpoint_mixing_dtypes_loads_exactly(tmp_path):
    "Item 16: a checkpoint whose tensors mix bf16 and fp32 loads (as fp32, which holds both exactly)."
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from llmbook import hub
    torch.manual_seed(0)
    hub.save(Decoder(preset("tiny-gpt2")).to(torch.bfloat16), tmp_path)
    path = tmp_path / "model.safetensors"
    state = load_file(path)
    with safe_open(str(path), "pt") as f: metadata = f.metadata()
    state["pos.table.weight"] = state["pos.table.weight"].float()  # one fp32 tensor among bf16 ones
    save_file(state, path, metadata=metadata)
    m = hub.load(tmp_path)
    assert m.pos.table.weight.dtype == torch.float32 and torch.equal(m.pos.table.weight, state["pos.table.weight"])

# --- item 18: long repetitive chunks with the pure-Python BPE: the same ids as the fast path, without a heap per byte
def test_repetitive_text_python_bpe_equals_fast_path():
    import tracemalloc
    from llmbook.tokens import BPETokenizer, HFTokenizer
    from llmbook.data import load_corpus
    tok = BPETokenizer.train(load_corpus("pydocs")[:100_000] + "a" * 2000 + "ab" * 500, 400)
    for text in ["a" * 300_000, "ab" * 100_000, " " * 50_000 + "x", "é" * 40_000]:
        tracemalloc.start()
        ids = tok.encode(text)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert ids == HFTokenizer(tok).encode(text)
        assert peak < 200 * len(text), f"{peak / 2**20:.0f} MB for {len(text):,} characters"  # ~9 bytes/char measured
