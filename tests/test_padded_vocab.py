"""A padded vocabulary (`pad_vocab_multiple`, on by default for the GPT-2 presets and for GPT-2 checkpoints read by
`from_hf`) is invisible at every API boundary: the presets hold 50,304 rows but count the parameters transformers
counts; a tiny GPT-2 with an odd vocabulary (250 tokens, 256 rows) gives transformers' logits and generated ids
through every decoding path even when its padding rows are set to win everywhere; `to_hf` writes 250 rows; and
the training losses (the plain one over sliced logits and the fused `linear_cross_entropy` over the padded head)
give the same loss and gradients as an unpadded model with the same real weights, the padding rows getting none."""
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from llmbook.blocks import preset
from llmbook.core import count_params, vocab_padding
from llmbook.decoder import Decoder, model_size
from llmbook.generation import generate
from llmbook.hub import from_hf, state_dict_to_hf
from llmbook.perf_train import NextTokenLoss
from llmbook.training import token_loss
from parity import randomize

GPT2_SIZES = {"gpt2": (768, 12, 12), "gpt2-medium": (1024, 24, 16), "gpt2-large": (1280, 36, 20), "gpt2-xl": (1600, 48, 25)}


@pytest.mark.parametrize("name", list(GPT2_SIZES))
def test_gpt2_presets_are_padded_and_count_what_transformers_counts(name):
    d, L, H = GPT2_SIZES[name]
    with torch.device("meta"):
        ours = Decoder(preset(name))
        theirs = GPT2LMHeadModel(GPT2Config(n_embd=d, n_layer=L, n_head=H))
    assert ours.tok_embed.weight.shape == (50_304, d) and ours.head.weight is ours.tok_embed.weight
    assert count_params(ours) == model_size(name) == theirs.num_parameters()  # the 47 padding rows left out
    assert count_params(ours, padding=True) - count_params(ours) == vocab_padding(ours) == 47 * d
    assert preset(name, pad_vocab_multiple=None).padded_vocab == 50_257
    assert preset(name, pad_vocab_multiple=1).padded_vocab == 50_257


def test_tiny_presets_stay_unpadded():
    "The CPU-sized presets keep `pad_vocab_multiple=None`: a course vocabulary of 300 keeps 300 rows."
    assert preset("tiny-gpt2").pad_vocab_multiple is None
    assert preset("tiny-gpt2", vocab_size=300).padded_vocab == 300


def test_untied_head_padding_is_counted_once_per_tensor():
    c = preset("tiny-gpt2", vocab_size=250, pad_vocab_multiple=64, tie_embeddings=False)
    m = Decoder(c)
    assert m.head.weight.shape == (256, 64)
    assert vocab_padding(m) == 2 * 6 * 64  # the token table and the head, 6 padding rows each
    m.head.weight.requires_grad_(False)
    assert vocab_padding(m, trainable=True) == 6 * 64
    assert count_params(m, trainable=True) == count_params(m) - 250 * 64


V, PAD, BOS, EOS = 250, 3, 1, 2  # 250 real tokens, 256 rows


def hf_gpt2(seed=0, **kw):
    cfg = dict(vocab_size=V, n_positions=128, n_embd=64, n_layer=2, n_head=4, bos_token_id=BOS, eos_token_id=EOS,
               pad_token_id=PAD, attn_implementation="eager", initializer_range=0.1)
    torch.manual_seed(seed)
    return randomize(GPT2LMHeadModel(GPT2Config(**{**cfg, **kw})), seed=seed, bias_std=0.02).eval()


@torch.no_grad()
def rig(weight):
    "Padding rows that would win every position if they were let out: +-1000 along three axes, a score of 1000 |h_i|."
    axes = torch.eye(weight.shape[1])[:3] * 1000
    weight[V:] = torch.cat([axes, -axes])  # 6 padding rows (256 - 250)


def rigged(model):
    rig(model.tok_embed.weight)  # tied: the head's padding rows too
    return model


@pytest.fixture(scope="module")
def pair():
    hf = hf_gpt2()
    ours = from_hf(hf)
    assert ours.config.pad_vocab_multiple == 64 and ours.tok_embed.weight.shape == (256, 64)
    assert ours.tok_embed.weight[V:].abs().max() == 0  # loading appends zero rows
    rigged(ours)
    with torch.no_grad():  # the rigged rows really would win: before the slice, they are every position's top score
        h = ours.run(ours.tok_embed(torch.tensor([[5, 6, 7]])), None)
        assert (ours.head(h).argmax(-1) >= V).all()
    return hf, ours


def prompts():
    ids = torch.randint(4, V, (3, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    mask[1, :1] = 0
    ids[mask == 0] = PAD
    return ids, mask


@torch.no_grad()
def test_logits_have_the_real_vocabulary(pair):
    hf, ours = pair
    ids = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(2))
    ref = hf(ids).logits
    full = ours(ids)
    assert full.shape == (2, 9, V)
    torch.testing.assert_close(full, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours(ids, last_only=True), ref[:, -1:], atol=1e-5, rtol=0)
    cache = ours.new_cache()
    first = ours(ids[:, :5], cache=cache)
    rest = ours(ids[:, 5:], cache=cache)
    torch.testing.assert_close(torch.cat([first, rest], 1), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw", [dict(), dict(static_cache=True), dict(num_beams=3), dict(num_beams=3, length_penalty=0.5)],
                         ids=["greedy", "greedy-graph", "beam", "beam-lp"])
def test_generation_equals_transformers_with_rigged_padding(pair, kw):
    hf, ours = pair
    ids, mask = prompts()
    settings = dict(max_new_tokens=20, pad_token_id=PAD, eos_token_id=EOS)
    want = hf.generate(ids, attention_mask=mask, do_sample=False, **{k: v for k, v in kw.items() if k != "static_cache"},
                       **settings)
    got = generate(ours, ids, attention_mask=mask, **kw, **settings)
    assert torch.equal(got, want)


def test_sampling_and_speculative_never_emit_a_padding_id(pair):
    hf, ours = pair
    ids, mask = prompts()
    for seed in range(3):  # flat sampling: every real token has a chance, the rigged rows would have all of it
        out = generate(ours, ids, attention_mask=mask, do_sample=True, temperature=5.0, seed=seed, max_new_tokens=30,
                       eos_token_id=[])
        assert out.max() < V and len(set(out[:, 7:].flatten().tolist())) > 20
    draft = rigged(from_hf(hf_gpt2(1, n_layer=1)))
    one = ids[2:]
    plain = generate(ours, one, max_new_tokens=20, eos_token_id=[])
    assert torch.equal(generate(ours, one, max_new_tokens=20, eos_token_id=[], assistant_model=draft), plain)
    assert plain.max() < V


def test_to_hf_writes_the_real_rows(pair):
    hf, ours = pair
    theirs = state_dict_to_hf(ours)
    assert theirs["transformer.wte.weight"].shape == (V, 64)
    torch.testing.assert_close(theirs["transformer.wte.weight"], hf.transformer.wte.weight)
    exact = from_hf(hf, pad_vocab_multiple=None)
    assert exact.tok_embed.weight.shape == (V, 64) and count_params(exact) == count_params(ours) == hf.num_parameters()


def twins():
    "A padded tiny GPT-2 (untied, so the head has padding rows of its own) and an unpadded one with its real rows."
    torch.manual_seed(0)
    padded = Decoder(preset("tiny-gpt2", vocab_size=V, pad_vocab_multiple=64, tie_embeddings=False))
    plain = Decoder(preset("tiny-gpt2", vocab_size=V, tie_embeddings=False))
    vocab_rows = ("tok_embed.weight", "head.weight")
    plain.load_state_dict({k: v[:V] if k in vocab_rows else v for k, v in padded.state_dict().items()})
    rig(padded.head.weight)  # would win everywhere if a loss let them in
    return padded, plain


@pytest.mark.parametrize("fused", [False, True], ids=["token_loss", "linear_cross_entropy"])
def test_training_loss_and_gradients_equal_the_unpadded_model(fused):
    padded, plain = twins()
    ids = torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(3))
    labels = torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(4))
    labels[0, :4] = -100  # ignored positions
    def loss_of(model):
        if fused: return NextTokenLoss(model, chunk_rows=7)(ids, labels)
        return token_loss(model(ids), labels, "sum")
    a, b = loss_of(padded), loss_of(plain)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-6)
    grads = dict(plain.named_parameters())
    for name, p in padded.named_parameters():
        want = grads[name].grad
        got = p.grad[:V] if name in ("tok_embed.weight", "head.weight") else p.grad
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5, msg=name)
    assert padded.head.weight.grad[V:].abs().max() == 0 and padded.tok_embed.weight.grad[V:].abs().max() == 0
