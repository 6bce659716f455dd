"""llmbook's BERT, T5 and BART against Hugging Face transformers: tiny random models built offline from
configs, loaded with `llmbook.hub.from_hf`, give the same logits (fp32, 1e-5), with padded batches,
across the config variations real checkpoints use; the cached decoder path equals the full forward.

T5 v1.1 (no output scaling) initialised with transformers' default `initializer_factor=1` gives logits up
to ~50, where fp32 rounding alone differs by 1e-5 between two correct summation orders; its test model
uses `initializer_factor=0.2` (logits of a few units, as trained checkpoints have), so the absolute 1e-5
bound stays meaningful."""
import json
import pytest
import torch
from transformers import (BertConfig, BertForMaskedLM, BertModel, BertForSequenceClassification, BertForTokenClassification,
                          T5Config, T5ForConditionalGeneration, BartConfig, BartForConditionalGeneration)
from llmbook.hub import from_hf, save, load, UnsupportedConfigError
from parity import randomize, trivial_parameters, mutated

ATOL = 1e-5

def bert(cls=BertForMaskedLM, **kw):
    cfg = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
               max_position_embeddings=64, type_vocab_size=2, pad_token_id=0, attn_implementation="eager")
    torch.manual_seed(0)
    return randomize(cls(BertConfig(**{**cfg, **kw})), bias_std=0.2).eval()

def t5(**kw):
    cfg = dict(vocab_size=120, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, decoder_start_token_id=0,
               pad_token_id=0, eos_token_id=1, attn_implementation="eager")
    torch.manual_seed(0)
    return randomize(T5ForConditionalGeneration(T5Config(**{**cfg, **kw}))).eval()

def bart(**kw):
    cfg = dict(vocab_size=120, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
               decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=64,
               bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2, attn_implementation="eager")
    torch.manual_seed(0)
    return randomize(BartForConditionalGeneration(BartConfig(**{**cfg, **kw})), bias_std=0.2).eval()

ENCODERS = {
    "bert-mlm": lambda: bert(),
    "bert-vocab-types": lambda: bert(vocab_size=77, type_vocab_size=3, hidden_act="gelu_new"),
    "bert-relu-eps": lambda: bert(hidden_act="relu", layer_norm_eps=1e-5),
}
SEQ2SEQ = {
    "t5-v1.0-relu": lambda: t5(),
    "t5-v1.1-gated-gelu": lambda: t5(feed_forward_proj="gated-gelu", tie_word_embeddings=False, initializer_factor=0.2),
    "t5-buckets": lambda: t5(relative_attention_num_buckets=8, relative_attention_max_distance=20),
    "t5-deeper-decoder": lambda: t5(num_decoder_layers=3, d_kv=8),
    "bart": lambda: bart(),
    "bart-scaled": lambda: bart(scale_embedding=True),
    "bart-relu-3-layers": lambda: bart(activation_function="relu", decoder_layers=3),
}

def right_padded(V, lo=3):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(lo, V, (3, 10), generator=g)
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[0, 6:] = 0; mask[2, 9:] = 0
    return ids.masked_fill(mask == 0, 0), mask

@pytest.fixture(scope="module", params=list(ENCODERS))
def enc_pair(request):
    hf = ENCODERS[request.param]()
    return hf, from_hf(hf)

@torch.no_grad()
def check_mlm_logits(hf, ours):
    ids, mask = right_padded(hf.config.vocab_size)
    types = torch.randint(0, hf.config.type_vocab_size, ids.shape, generator=torch.Generator().manual_seed(4))
    ref = hf(ids, attention_mask=mask, token_type_ids=types).logits
    out = ours(ids, attention_mask=mask, token_type_ids=types)
    assert out.shape == ref.shape
    torch.testing.assert_close(out[mask.bool()], ref[mask.bool()], atol=ATOL, rtol=0)

def test_bert_mlm_logits(enc_pair):
    check_mlm_logits(*enc_pair)

@torch.no_grad()
@pytest.mark.parametrize("cls,head", [(BertModel, None), (BertForSequenceClassification, "classify"),
                                      (BertForTokenClassification, "tokens")])
def test_bert_other_heads(cls, head, tmp_path):
    hf = bert(cls, num_labels=3)
    ids, mask = right_padded(120)
    for ours in (from_hf(hf), from_hf((hf.save_pretrained(tmp_path), tmp_path)[1])):
        assert ours.head_type == head
        if cls is BertModel:
            r = hf(ids, attention_mask=mask)
            torch.testing.assert_close(ours.hidden(ids, mask)[mask.bool()], r.last_hidden_state[mask.bool()], atol=ATOL, rtol=0)
            torch.testing.assert_close(ours.embed(ids, mask, pooling="pooler"), r.pooler_output, atol=ATOL, rtol=0)
            torch.testing.assert_close(ours.embed(ids, mask, pooling="cls"), r.last_hidden_state[:, 0], atol=ATOL, rtol=0)
            m = mask[..., None].float()
            torch.testing.assert_close(ours.embed(ids, mask), (r.last_hidden_state * m).sum(1) / m.sum(1), atol=ATOL, rtol=0)
        elif head == "classify":
            torch.testing.assert_close(ours(ids, mask), hf(ids, attention_mask=mask).logits, atol=ATOL, rtol=0)
        else:
            torch.testing.assert_close(ours(ids, mask)[mask.bool()], hf(ids, attention_mask=mask).logits[mask.bool()], atol=ATOL, rtol=0)

@pytest.fixture(scope="module", params=list(SEQ2SEQ))
def s2s_pair(request):
    hf = SEQ2SEQ[request.param]()
    return hf, from_hf(hf)

def decoder_batch(V, lo=3):
    g = torch.Generator().manual_seed(2)
    dec = torch.randint(lo, V, (3, 7), generator=g)
    dmask = torch.ones(3, 7, dtype=torch.long); dmask[1, 5:] = 0
    return dec, dmask

@torch.no_grad()
def check_seq2seq_logits(hf, ours):
    V = hf.config.vocab_size
    ids, mask = right_padded(V)
    dec, dmask = decoder_batch(V)
    ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, decoder_attention_mask=dmask).logits
    out = ours(ids, dec, attention_mask=mask, decoder_attention_mask=dmask)
    assert out.shape == ref.shape
    torch.testing.assert_close(out[dmask.bool()], ref[dmask.bool()], atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.encode(ids, mask)[mask.bool()],
                               hf.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()], atol=ATOL, rtol=0)

def test_seq2seq_logits_padded(s2s_pair):
    check_seq2seq_logits(*s2s_pair)

@pytest.mark.parametrize("make", [lambda: bert(), lambda: t5(), lambda: bart()], ids=["bert", "t5", "bart"])
def test_every_parameter_is_random(make):
    "No all-0 or all-1 tensor on either side (BART's embeddings keep their all-zero padding row, which is one row)."
    hf = make()
    assert trivial_parameters(hf) == [] and trivial_parameters(from_hf(hf)) == []

@pytest.mark.parametrize("variant,mutation", [("bert-mlm", "zero_biases"), ("bert-mlm", "swap_norms"), ("bert-mlm", "reset_norms"),
                                              ("t5-v1.1-gated-gelu", "swap_norms"), ("t5-v1.1-gated-gelu", "reset_norms"),
                                              ("bart", "zero_biases"), ("bart", "swap_norms"), ("bart", "reset_norms")])
def test_parity_notices_a_broken_model(variant, mutation):
    "Zeroed biases, swapped norm1/norm2 and reset norms in llmbook's model fail the logits check."
    make, check = (ENCODERS[variant], check_mlm_logits) if variant in ENCODERS else (SEQ2SEQ[variant], check_seq2seq_logits)
    hf = make()
    ours = from_hf(hf)
    check(hf, ours)
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        check(hf, mutated(ours, mutation))

@torch.no_grad()
@pytest.mark.parametrize("static", [False, True])
def test_seq2seq_cached_equals_full(s2s_pair, static):
    hf, ours = s2s_pair
    V = hf.config.vocab_size
    ids, mask = right_padded(V)
    dec, _ = decoder_batch(V)
    full = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    enc = ours.encode(ids, mask)
    cache = ours.new_cache(max_len=8 if static else None)
    steps = [ours(decoder_input_ids=dec[:, :3], encoder_out=enc, attention_mask=mask, cache=cache)]
    steps += [ours(decoder_input_ids=dec[:, t:t + 1], encoder_out=enc, attention_mask=mask, cache=cache) for t in range(3, 7)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=ATOL, rtol=0)

@torch.no_grad()
def test_seq2seq_folder_and_roundtrip(s2s_pair, tmp_path):
    hf, ours = s2s_pair
    hf.save_pretrained(tmp_path / "hf")
    ids, mask = right_padded(hf.config.vocab_size)
    dec, _ = decoder_batch(hf.config.vocab_size)
    ref = ours(ids, dec, attention_mask=mask)
    torch.testing.assert_close(from_hf(tmp_path / "hf")(ids, dec, attention_mask=mask), ref, atol=0, rtol=0)
    save(ours, tmp_path / "ours")
    back = load(tmp_path / "ours")
    torch.testing.assert_close(back(ids, dec, attention_mask=mask), ref, atol=0, rtol=0)
    assert back.config == ours.config

@torch.no_grad()
def test_encoder_roundtrip(enc_pair, tmp_path):
    _, ours = enc_pair
    save(ours, tmp_path)
    back = load(tmp_path)
    ids, mask = right_padded(ours.config.vocab_size)
    torch.testing.assert_close(back(ids, mask), ours(ids, mask), atol=0, rtol=0)
    assert back.mlm._embed[0] is back.tok_embed  # the head is still tied to the loaded embedding

@torch.no_grad()
def test_untied_t5_head_from_folder(tmp_path):
    "Older T5 v1.1 folders store a separate lm_head and say tie_word_embeddings=false: the head must come from the file."
    from safetensors.torch import load_file, save_file
    hf = t5(feed_forward_proj="gated-gelu", tie_word_embeddings=False, initializer_factor=0.2)
    hf.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    head = torch.randn(120, 64) * 0.2
    save_file({**state, "lm_head.weight": head}, tmp_path / "model.safetensors")
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.pop("scale_decoder_outputs", None)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "tie_word_embeddings": False}))
    ours = from_hf(tmp_path)
    assert not ours.config.tie_embeddings and ours.config.output_scale == 1.0
    torch.testing.assert_close(ours.head.weight, head)
    ids, mask = right_padded(120); dec, _ = decoder_batch(120)
    hidden = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, output_hidden_states=True).decoder_hidden_states[-1]
    torch.testing.assert_close(ours(ids, dec, attention_mask=mask), hidden @ head.T, atol=ATOL, rtol=0)

@torch.no_grad()
def test_bart_with_a_different_decoder(tmp_path):
    "BART-style configs may give the decoder its own depth, heads and MLP width: loaded and equal to transformers."
    hf = bart(decoder_layers=3, decoder_attention_heads=2, decoder_ffn_dim=96)
    hf.save_pretrained(tmp_path)
    ours = from_hf(tmp_path)
    dec_cfg = ours.config.decoder_side()
    assert (len(ours.decoder.blocks), dec_cfg.n_heads, dec_cfg.d_ff) == (3, 2, 96)
    assert ours.decoder.blocks[0].attn.n_heads == 2 and ours.encoder.blocks[0].attn.n_heads == 4
    ids, mask = right_padded(120)
    dec, dmask = decoder_batch(120)
    ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, decoder_attention_mask=dmask).logits
    out = ours(ids, dec, attention_mask=mask, decoder_attention_mask=dmask)
    torch.testing.assert_close(out[dmask.bool()], ref[dmask.bool()], atol=ATOL, rtol=0)

@pytest.mark.parametrize("make,change,field", [
    (bert, {"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key'"),
    (bert, {"is_decoder": True}, "is_decoder=True"),
    (t5, {"feed_forward_proj": "gated-swish2"}, "feed_forward_proj='gated-swish2'"),
    (bart, {"normalize_before": True}, "normalize_before=True"),
    (bart, {"add_final_layer_norm": True}, "add_final_layer_norm=True"),
    (bart, {"some_new_feature": 1}, "some_new_feature"),
])
def test_unsupported_config_is_refused(tmp_path, make, change, field):
    make().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(UnsupportedConfigError, match=field.replace("[", r"\[").replace("(", r"\(")):
        from_hf(tmp_path)

def test_unsupported_architecture(tmp_path):
    bert().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "architectures": ["BertForQuestionAnswering"]}))
    with pytest.raises(UnsupportedConfigError, match="BertForQuestionAnswering"):
        from_hf(tmp_path)
