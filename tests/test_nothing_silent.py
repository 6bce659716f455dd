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
