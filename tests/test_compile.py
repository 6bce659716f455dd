"""Every family compiles whole: `torch.compile(fullgraph=True)` on a training forward + backward, with and without
padding, with zero graph breaks, giving the eager loss and gradients. (`aot_eager` keeps it quick on CPU.)"""
import pytest
import torch
import torch.nn.functional as F
from llmbook.blocks import preset
from llmbook.decoder import Decoder
from llmbook.encoder import Encoder
from llmbook.seq2seq import Seq2Seq

CASES = {"tiny-gpt2": Decoder, "tiny-llama": Decoder, "tiny-bert": Encoder, "tiny-t5": Seq2Seq, "tiny-bart": Seq2Seq}


def batch(model, padded):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 250, (2, 16), generator=g)
    am = torch.ones(2, 16, dtype=torch.long)
    if padded and model.family == "decoder": am[1, :4] = 0  # decoders are left-padded
    elif padded: am[1, -4:] = 0
    kw = {"attention_mask": am} if padded else {}
    if model.family == "seq2seq": kw["decoder_input_ids"] = torch.randint(3, 250, (2, 8), generator=g)
    return ids, kw


def loss_and_grads(fn, model, ids, kw):
    model.zero_grad()
    logits = fn(ids, **kw)
    labels = torch.randint(0, logits.shape[-1], logits.shape[:-1], generator=torch.Generator().manual_seed(1))
    loss = F.cross_entropy(logits.flatten(0, -2), labels.flatten())
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("padded", [False, True], ids=["no-mask", "padded"])
@pytest.mark.parametrize("name", list(CASES))
def test_fullgraph_no_breaks(name, padded):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = CASES[name](preset(name))
    model.train()  # a training forward (dropout is 0 in the presets, so eager and compiled agree exactly)
    ids, kw = batch(model, padded)
    explained = torch._dynamo.explain(model)(ids, **kw)
    assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]
    assert explained.graph_count == 1
    torch._dynamo.reset()
    eager_loss, eager_grads = loss_and_grads(model, model, ids, kw)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    loss, grads = loss_and_grads(compiled, model, ids, kw)
    torch.testing.assert_close(loss, eager_loss, atol=1e-5, rtol=1e-5)
    assert grads.keys() == eager_grads.keys()
    for n in grads: torch.testing.assert_close(grads[n], eager_grads[n], atol=1e-5, rtol=1e-4, msg=n)


def test_eager_checks_still_speak():
    model = Decoder(preset("tiny-gpt2"))
    with pytest.raises(ValueError, match="token id 300 is outside the vocabulary"):
        model(torch.tensor([[1, 300]]))
    with pytest.raises(ValueError, match="attention_mask holds 2"):
        model(torch.tensor([[1, 2]]), attention_mask=torch.tensor([[1, 2]]))
