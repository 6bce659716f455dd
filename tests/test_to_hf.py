"""`hub.to_hf`: an llmbook model written as a transformers folder loads in `transformers` with the same logits;
`from_hf` reads folders lazily; a loaded GPT-2 and `transformers` give the same loss on a built-in corpus.

Every family `from_hf` reads is exported back: from_hf(HF model) -> to_hf -> transformers `from_pretrained`,
with every parameter random (`parity.randomize`: biases and norms away from their init), so a weight written
under the wrong name or in the wrong layout changes the logits."""
import dataclasses, json, os
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
import transformers as tf
from parity import randomize, trivial_parameters
from llmbook import hub
from llmbook.hub import from_hf, to_hf, config_to_hf, state_dict_to_hf, LazyTensors, UnsupportedConfigError
from llmbook.decoder import Decoder
from llmbook.blocks import TransformerConfig

V = 300

def gpt2(**kw):
    return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=V, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                            bos_token_id=0, eos_token_id=1, **kw))

def llama(**kw):
    return tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                              rope_theta=5000.0, bos_token_id=0, eos_token_id=1, pad_token_id=2, **kw))

def bert_config(**kw):
    return tf.BertConfig(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
                         max_position_embeddings=64, pad_token_id=0, **kw)

def t5(**kw):
    return tf.T5ForConditionalGeneration(tf.T5Config(vocab_size=V, d_model=64, d_kv=16, d_ff=96, num_layers=2,
                                                     num_decoder_layers=3, num_heads=4, pad_token_id=0, eos_token_id=1,
                                                     decoder_start_token_id=0, **kw))

def bart(**kw):
    return tf.BartForConditionalGeneration(tf.BartConfig(
        vocab_size=V, d_model=64, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=2,
        encoder_ffn_dim=96, decoder_ffn_dim=80, max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, **kw))

CASES = {  # name -> (builder of a random transformers model, transformers Auto class that loads the export)
    "gpt2": (gpt2, tf.AutoModelForCausalLM),
    "gpt2-untied-relu": (lambda: gpt2(tie_word_embeddings=False, activation_function="relu", n_inner=80),
                         tf.AutoModelForCausalLM),
    "llama": (llama, tf.AutoModelForCausalLM),
    "llama-tied-bias": (lambda: llama(tie_word_embeddings=True, attention_bias=True, mlp_bias=True),
                        tf.AutoModelForCausalLM),
    "bert-mlm": (lambda: tf.BertForMaskedLM(bert_config()), tf.AutoModelForMaskedLM),
    "bert-base": (lambda: tf.BertModel(bert_config()), tf.AutoModel),
    "bert-classify": (lambda: tf.BertForSequenceClassification(bert_config(num_labels=3)),
                      tf.AutoModelForSequenceClassification),
    "bert-tokens": (lambda: tf.BertForTokenClassification(bert_config(num_labels=5)), tf.AutoModelForTokenClassification),
    "t5": (t5, tf.AutoModelForSeq2SeqLM),
    "t5-v1.1": (lambda: t5(feed_forward_proj="gated-gelu", tie_word_embeddings=False, initializer_factor=0.2),
                tf.AutoModelForSeq2SeqLM),  # smaller weights: v1.1's unscaled logits stay within fp32's 1e-5
    "bart": (bart, tf.AutoModelForSeq2SeqLM),
    "bart-scaled-untied": (lambda: bart(scale_embedding=True, tie_word_embeddings=False, activation_function="gelu_new"),
                           tf.AutoModelForSeq2SeqLM),
}

def make(name, seed=0):
    torch.manual_seed(seed)
    hf = randomize(CASES[name][0]().eval(), seed=seed)
    if name.startswith("bart") and not hf.config.tie_word_embeddings:
        with torch.no_grad():  # untied, transformers 5 gives BART three embedding matrices; llmbook keeps one
            for side in (hf.model.encoder, hf.model.decoder): side.embed_tokens.weight.copy_(hf.model.shared.weight)
    return hf

def outputs(model, ids, dec, hf_output=True):
    "The logits (or BERT base's last hidden states) of a transformers model or an llmbook model."
    with torch.no_grad():
        if not hf_output:
            if getattr(model, "family", None) == "seq2seq": return model(ids, dec)
            if getattr(model, "head_type", "x") is None: return model.hidden(ids)
            return model(ids)
        out = model(input_ids=ids, decoder_input_ids=dec) if model.config.is_encoder_decoder else model(input_ids=ids)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state

@pytest.mark.parametrize("name", list(CASES))
def test_round_trip(name, tmp_path):
    hf = make(name)
    assert not trivial_parameters(hf), trivial_parameters(hf)
    ours = from_hf(hf)
    folder = to_hf(ours, tmp_path / name)
    back, info = CASES[name][1].from_pretrained(folder, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    back.eval()
    assert type(back) is type(hf)
    ids, dec = torch.randint(3, V, (2, 10)), torch.randint(3, V, (2, 7))
    ref = outputs(hf, ids, dec)
    torch.testing.assert_close(outputs(back, ids, dec), ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(outputs(ours, ids, dec, hf_output=False), ref, atol=1e-5, rtol=0)
    again = from_hf(folder)  # and back into llmbook from the exported folder
    torch.testing.assert_close(outputs(again, ids, dec, hf_output=False), ref, atol=1e-5, rtol=0)

@pytest.mark.parametrize("name", ["gpt2", "llama", "bert-mlm", "t5", "bart"])
def test_same_tensors_as_transformers(name):
    "Every exported tensor equals the one transformers holds under that name (tied copies are not written)."
    hf = make(name)
    theirs = state_dict_to_hf(from_hf(hf))
    ref = hf.state_dict()
    for k, w in theirs.items(): torch.testing.assert_close(w, ref[k], atol=0, rtol=0, msg=k)
    assert "lm_head.weight" not in theirs or not hf.config.tie_word_embeddings

def test_sharded_folder_loads_in_transformers(tmp_path):
    hf = make("llama")
    ours = from_hf(hf)
    folder = to_hf(ours, tmp_path / "sharded", max_shard_size="60KB")
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert len(shards) > 2 and not (folder / "model.safetensors").exists()
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == shards
    assert index["metadata"]["total_size"] == sum(w.numel() * w.element_size() for w in state_dict_to_hf(ours).values())
    for shard in shards:  # each shard within the limit, unless it holds one tensor larger than it
        tensors = LazyTensors.from_files([folder / shard])
        assert len(tensors) == 1 or sum(w.numel() * w.element_size() for w in tensors.values()) <= 60_000
    back = tf.AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.randint(3, V, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, hf(ids).logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(from_hf(folder)(ids), hf(ids).logits, atol=1e-5, rtol=0)

def test_shard_size_in_bytes(tmp_path):
    ours = from_hf(make("gpt2"))
    folder = to_hf(ours, tmp_path / "bytes", max_shard_size=50_000)
    assert len(list(folder.glob("model-*.safetensors"))) > 1
    with pytest.raises(ValueError, match="max_shard_size='lots'"): to_hf(ours, tmp_path / "x", max_shard_size="lots")
    with pytest.raises(ValueError, match="at least 1 byte"): to_hf(ours, tmp_path / "x", max_shard_size=0)

def test_padding_rows_dropped(tmp_path):
    hf = make("gpt2")
    padded = from_hf(hf, pad_vocab_multiple=64)
    assert padded.tok_embed.weight.shape[0] == 320
    folder = to_hf(padded, tmp_path / "padded")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["vocab_size"] == V and "pad_vocab_multiple" not in cfg
    back = tf.AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.randint(3, V, (2, 10))
    with torch.no_grad(): torch.testing.assert_close(back(ids).logits, hf(ids).logits, atol=1e-5, rtol=0)

def test_bf16_model_written_in_bf16(tmp_path):
    ours = from_hf(make("llama"), dtype=torch.bfloat16)
    folder = to_hf(ours, tmp_path / "bf16")
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
    assert {w.dtype for w in LazyTensors.from_files([folder / "model.safetensors"]).values()} == {torch.bfloat16}

REFUSALS = {  # config change -> text the refusal must contain
    "sinusoidal": (dict(position="sinusoidal"), "position='sinusoidal'"),
    "no positions": (dict(position="none"), "position='none'"),
    "grouped-query GPT-2": (dict(n_kv_heads=2), "n_kv_heads=2"),
    "rmsnorm GPT-2": (dict(norm="rmsnorm", norm_bias=False), "norm='rmsnorm'"),
    "attn_scale": (dict(attn_scale=0.5), "attn_scale=0.5"),
    "output_scale": (dict(output_scale=0.5), "output_scale=0.5"),
}

@pytest.mark.parametrize("name", list(REFUSALS))
def test_refuses_what_the_family_cannot_express(name, tmp_path):
    change, message = REFUSALS[name]
    model = Decoder(dataclasses.replace(from_hf(make("gpt2")).config, **change))
    with pytest.raises(UnsupportedConfigError, match="gpt2 config cannot express") as e: to_hf(model, tmp_path / "out")
    assert message in str(e.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())  # nothing written, no temporary folder

def test_refuses_other_families_fields():
    llama_model = from_hf(make("llama"))
    model = Decoder(dataclasses.replace(llama_model.config, gated_mlp=False))
    with pytest.raises(UnsupportedConfigError, match="gated_mlp=False"): config_to_hf(model)
    t5_model = from_hf(make("t5"))
    exact_gated = type(t5_model)(dataclasses.replace(t5_model.config, mlp_act="gelu", gated_mlp=True))
    with pytest.raises(UnsupportedConfigError, match="mlp_act='gelu'"): config_to_hf(exact_gated)
    with pytest.raises(ValueError, match="cannot export a Linear"): to_hf(torch.nn.Linear(2, 2), "unused")

def test_different_copies_of_a_shared_tensor_refused():
    "from_hf refuses an untied BART whose encoder and decoder embeddings differ: llmbook would keep only one."
    torch.manual_seed(0)
    hf = bart(tie_word_embeddings=False).eval()
    with pytest.raises(ValueError, match="embed_tokens.weight differs from another tensor that llmbook keeps as one"):
        from_hf(hf)

def test_orphan_tensors_refused():
    model = from_hf(make("gpt2"))
    model.register_parameter("adapter", torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(ValueError, match=r"no name for 1 tensor\(s\) of this model: \['adapter'\]"): state_dict_to_hf(model)

def test_folder_is_never_half_written(tmp_path, monkeypatch):
    model = from_hf(make("gpt2"))
    calls = []
    def failing_save(state, path, metadata=None):
        calls.append(path)
        if len(calls) == 2: raise OSError("disk full")
        return save_file(state, path, metadata=metadata)
    from safetensors.torch import save_file
    monkeypatch.setattr(hub, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"): to_hf(model, tmp_path / "out", max_shard_size="50KB")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor the temporary one
    monkeypatch.undo()
    first = to_hf(model, tmp_path / "out")
    with pytest.raises(FileExistsError, match="overwrite=True"): to_hf(model, first)
    (first / "tokenizer.json").write_text("{}")
    to_hf(model, first, max_shard_size="50KB", overwrite=True)  # replaced whole
    assert not (first / "model.safetensors").exists() and not (first / "tokenizer.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    empty = tmp_path / "empty"
    empty.mkdir()
    to_hf(model, empty)  # an empty folder is fine without overwrite
    assert (empty / "model.safetensors").is_file()

# ---------------------------------------------------------------- lazy loading

def test_from_hf_reads_tensors_one_at_a_time(tmp_path, monkeypatch):
    hf = make("gpt2")
    hf.save_pretrained(tmp_path / "ckpt")
    reads = []
    original = LazyTensors.__getitem__
    def tracked(self, name):
        reads.append(name)
        return original(self, name)
    monkeypatch.setattr(LazyTensors, "__getitem__", tracked)
    model = from_hf(tmp_path / "ckpt")
    assert len(reads) == len(set(reads)) > 0  # each tensor read once, on demand
    ids = torch.randint(3, V, (2, 10))
    with torch.no_grad(): torch.testing.assert_close(model(ids), hf(ids).logits, atol=1e-5, rtol=0)

def test_lazy_tensors(tmp_path):
    from safetensors.torch import save_file
    save_file({"a": torch.arange(4.0), "b": torch.ones(2, 2)}, tmp_path / "one.safetensors")
    lazy = LazyTensors.from_files([tmp_path / "one.safetensors"])
    assert sorted(lazy) == ["a", "b"] and len(lazy) == 2 and "a" in lazy
    torch.testing.assert_close(lazy["a"], torch.arange(4.0))
    with pytest.raises(KeyError, match="'c'"): lazy["c"]
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "one.safetensors", "z": "gone.safetensors"}}))
    with pytest.raises(FileNotFoundError, match="gone.safetensors"): LazyTensors.from_index(index)

def test_bin_only_folder_still_refused(tmp_path):
    hf = make("gpt2")
    hf.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").rename(tmp_path / "ckpt" / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="safetensors"): from_hf(tmp_path / "ckpt")

# ---------------------------------------------------------------- perplexity on a built-in corpus

def test_same_loss_on_builtin_corpus(tmp_path):
    """A GPT-2-shaped random model loaded with `from_hf` and with transformers: the same mean loss on text of
    the "pydocs" corpus. No GPT-2 tokenizer is available offline, so the ids come from llmbook's own byte-level
    BPE (GPT-2's split pattern) trained on that text with a 512-token vocabulary, the model's vocab_size:
    deterministic ids that look like real text's (frequent tokens repeat), not uniform noise."""
    from llmbook.data import load_corpus
    from llmbook.tokens import BPETokenizer
    from llmbook.training import token_loss
    text = load_corpus("pydocs", split="valid")[:20_000]
    tok = BPETokenizer.train(text, vocab_size=512, pattern="gpt2")
    ids = torch.tensor(tok.encode(text)[: 4 * 128]).reshape(4, 128)
    torch.manual_seed(0)
    hf = randomize(tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=tok.vocab_size, n_positions=128, n_embd=64, n_layer=2,
                                                    n_head=4, bos_token_id=0, eos_token_id=1)).eval())
    hf.save_pretrained(tmp_path / "ckpt")
    ours = from_hf(tmp_path / "ckpt")
    with torch.no_grad():
        theirs = hf(ids, labels=ids).loss  # transformers shifts the labels itself
        mine = token_loss(ours(ids)[:, :-1], ids[:, 1:])
        direct = F.cross_entropy(ours(ids)[:, :-1].reshape(-1, tok.vocab_size), ids[:, 1:].reshape(-1))
    assert abs(mine.item() - theirs.item()) < 1e-5, (mine.item(), theirs.item())
    assert abs(direct.item() - theirs.item()) < 1e-5
    assert 5.0 < theirs.item() < 8.0  # a random model: about ln(512) = 6.24, not a degenerate 0 or inf

def test_generation_settings_written_back(tmp_path):
    "A checkpoint's decoding defaults (`config.generation`) go back into generation_config.json, as transformers reads it."
    hf = make("llama")
    hf.generation_config.update(do_sample=True, temperature=0.7, top_p=0.9, eos_token_id=[1, 2])
    ours = from_hf(hf)
    assert ours.config.generation  # carried by from_hf
    folder = to_hf(ours, tmp_path / "gen")
    theirs = tf.GenerationConfig.from_pretrained(folder)
    assert (theirs.do_sample, theirs.temperature, theirs.top_p, theirs.eos_token_id) == (True, 0.7, 0.9, [1, 2])
    assert from_hf(folder).config.generation == ours.config.generation
    plain = to_hf(from_hf(make("gpt2")), tmp_path / "plain")  # no decoding defaults: no generation_config.json
    assert not (plain / "generation_config.json").exists()
