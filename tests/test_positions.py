"""Every (family x position) pair: the model equals a written-out forward pass, and its positions matter.

The reference below is written from the formulas, with the model's parameters but none of its forward
code: norms, projections, rotary angles as 2x2 rotations, T5's buckets from `transformers`, masks and
softmax by hand.
"""
import math
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from llmbook.blocks import preset, RMSNorm, POSITIONS
from llmbook.decoder import Decoder
from llmbook.encoder import Encoder
from llmbook.seq2seq import Seq2Seq

FAMILIES = {"decoder": ("tiny-gpt2", Decoder), "encoder": ("tiny-bert", Encoder), "seq2seq": ("tiny-bart", Seq2Seq)}


def norm(m, x):
    if isinstance(m, nn.Identity): return x
    if isinstance(m, RMSNorm): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + m.eps) * m.weight
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + m.eps) * m.weight
    return y if m.bias is None else y + m.bias


def linear(m, x): return x @ m.weight.T + (0 if m.bias is None else m.bias)


def rotate(x, pos, theta):  # x (B, H, T, D): pair (j, j + D/2) rotated by pos * theta^(-2j/D)
    D = x.shape[-1]
    out = x.clone()
    for j in range(D // 2):
        a = pos[:, None, :].double() * theta ** (-2 * j / D)  # (B, 1, T)
        x1, x2 = x[..., j], x[..., j + D // 2]
        out[..., j] = (x1 * torch.cos(a) - x2 * torch.sin(a)).to(x.dtype)
        out[..., j + D // 2] = (x1 * torch.sin(a) + x2 * torch.cos(a)).to(x.dtype)
    return out


def t5_bias(table, T, S, bidirectional, max_distance):
    from transformers.models.t5.modeling_t5 import T5Attention
    rel = torch.arange(S)[None] - torch.arange(S - T, S)[:, None]
    buckets = T5Attention._relative_position_bucket(rel, bidirectional=bidirectional, num_buckets=table.shape[0],
                                                    max_distance=max_distance)
    return table[buckets].permute(2, 0, 1)[None]  # (1, H, T, S)


def attend(att, x, source, pos, c, causal, key_ok, bias):
    B, T, S, H, Hkv, D = x.shape[0], x.shape[1], source.shape[1], att.n_heads, att.n_kv_heads, att.head_dim
    q = linear(att.q_proj, x).view(B, T, H, D).transpose(1, 2)
    k = linear(att.k_proj, source).view(B, S, Hkv, D).transpose(1, 2).repeat_interleave(H // Hkv, 1)
    v = linear(att.v_proj, source).view(B, S, Hkv, D).transpose(1, 2).repeat_interleave(H // Hkv, 1)
    if pos is not None: q, k = rotate(q, pos, c.rope_theta), rotate(k, pos, c.rope_theta)
    scale = 1 / math.sqrt(D) if att.scale is None else att.scale
    scores = q @ k.transpose(-1, -2) * scale
    if bias is not None: scores = scores + bias
    ok = key_ok[:, None, None, :].expand(B, 1, T, S)
    if causal: ok = ok & torch.ones(T, S, dtype=torch.bool).tril()
    ok = ok | ~ok.any(-1, keepdim=True)  # a padding query that sees no key sees all (finite, and never read)
    scores = scores.masked_fill(~ok, float("-inf"))
    y = scores.softmax(-1) @ v
    return linear(att.o_proj, y.transpose(1, 2).reshape(B, T, H * D))


def mlp(m, x):
    act = {"gelu_tanh": lambda z: F.gelu(z, approximate="tanh"), "gelu": F.gelu, "silu": F.silu, "relu": F.relu}
    h = act[m.act_name](linear(m.gate, x)) * linear(m.up, x) if m.gate is not None else act[m.act_name](linear(m.up, x))
    return linear(m.down, h)


def stack_ref(stack, x, key_ok, causal, context=None, context_ok=None):
    c = stack.config
    B, T = x.shape[:2]
    pos = torch.arange(T)[None].expand(B, T)
    if causal and stack.positions_from_mask: pos = (key_ok.long().cumsum(-1) - 1).clamp(min=0)
    if c.position == "learned": x = x + stack.pos.table.weight[pos + c.pos_offset]
    if c.position == "sinusoidal":
        i = torch.arange(c.d_model // 2)
        angle = pos[..., None].double() / 10000.0 ** (2 * i / c.d_model)
        x = x + torch.stack((angle.sin(), angle.cos()), -1).flatten(-2).float()
    if stack.types is not None: x = x + stack.types.weight[0]
    x = norm(stack.embed_norm, x)
    bias = None
    if c.position == "relative": bias = t5_bias(stack.pos.rel.weight, T, T, not causal, c.rel_max_distance)
    rope_pos = pos if c.position == "rope" else None
    for blk in stack.blocks:
        subs = [(blk.norm1, lambda h: attend(blk.attn, h, h, rope_pos, c, causal, key_ok, bias))]
        if blk.cross_attn is not None:
            subs.append((blk.norm_cross, lambda h: attend(blk.cross_attn, h, context, None, c, False, context_ok, None)))
        subs.append((blk.norm2, lambda h: mlp(blk.mlp, h)))
        for n, f in subs: x = x + f(norm(n, x)) if c.pre_norm else norm(n, x + f(x))
    return norm(stack.norm, x)


def reference(model, ids, am, tgt=None):
    if model.family == "seq2seq":
        emb = model.tok_embed.weight
        enc = stack_ref(model.encoder, emb[ids], am.bool(), causal=False)
        dec = stack_ref(model.decoder, emb[tgt], torch.ones_like(tgt, dtype=torch.bool), True, enc, am.bool())
        return linear(model.head, dec * model.config.output_scale)[..., :model.config.vocab_size]
    h = stack_ref(model, model.tok_embed.weight[ids], am.bool(), causal=model.family == "decoder")
    if model.family == "decoder": return linear(model.head, h)[..., :model.config.vocab_size]
    return h


def build(family, position, seed=0):
    name, cls = FAMILIES[family]
    torch.manual_seed(seed)
    kw = {"head": None} if cls is Encoder else {}
    model = cls(preset(name, position=position, rel_buckets=8, rel_max_distance=16), **kw).eval()
    with torch.no_grad():
        for p in model.parameters(): p.add_(torch.randn_like(p) * 0.2)  # biases, norms, tables: all non-trivial
    return model


def run(model, ids, am, tgt):
    with torch.no_grad():
        if model.family == "seq2seq": return model(ids, tgt, attention_mask=am)
        return model(ids, attention_mask=am)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_position(family, position):
    model = build(family, position)
    torch.manual_seed(1)
    ids, tgt = torch.randint(3, 250, (2, 9)), torch.randint(3, 250, (2, 5))
    am = torch.ones(2, 9, dtype=torch.long)
    if family == "decoder": am[1, :3] = 0  # left padding
    else: am[1, -3:] = 0  # right padding
    out = run(model, ids, am, tgt)
    with torch.no_grad(): ref = reference(model, ids, am, tgt)
    real = am.bool() if family != "seq2seq" else torch.ones(2, 5, dtype=torch.bool)
    torch.testing.assert_close(out[real], ref[real], atol=1e-5, rtol=1e-5)  # the written-out definition
    if position == "none": return
    plain = build(family, "none")
    plain.load_state_dict(model.state_dict(), strict=False)  # same weights, minus the position parameters
    assert (run(plain, ids, am, tgt)[real] - out[real]).abs().max() > 1e-3, f"{family} with {position} ignores positions"
