"""The newer decoder presets (Llama 3.2 1B, Qwen3 0.6B, Mistral 7B, Gemma 3 1B) are what their published config.json
files describe: the same parameter count as transformers' models built from those configs on the meta device, and the
same llmbook config `from_hf`'s reader makes of them. Nothing is allocated."""
import pytest, torch
from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig, MistralConfig, Qwen3Config, Qwen3MoeConfig
from llmbook.blocks import preset
from llmbook.core import count_params
from llmbook.decoder import Decoder, model_size, kv_cache_bytes
from llmbook.hub import config_from_hf, _comparable

PUBLISHED = {  # preset: (the checkpoint's config, as published on the Hub)
    "llama-3.2-1b": LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                                num_key_value_heads=8, head_dim=64, max_position_embeddings=131072, tie_word_embeddings=True, rms_norm_eps=1e-5,
                                rope_parameters={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                 "original_max_position_embeddings": 8192, "rope_theta": 500000.0},
                                bos_token_id=None, eos_token_id=None),
    "qwen3-0.6b": Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                              num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, tie_word_embeddings=True,
                              rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
    "mistral-7b": MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                                num_key_value_heads=8, sliding_window=4096, max_position_embeddings=32768, rms_norm_eps=1e-5,
                                bos_token_id=None, eos_token_id=None),
    "gemma-3-1b": Gemma3TextConfig(vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4,
                                   num_key_value_heads=1, head_dim=256, sliding_window=512, max_position_embeddings=32768,
                                   query_pre_attn_scalar=256, pad_token_id=None, bos_token_id=None, eos_token_id=None),
    "qwen3-30b-a3b": Qwen3MoeConfig(vocab_size=151936, hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_hidden_layers=48,
                                    num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128, num_experts_per_tok=8,
                                    norm_topk_prob=True, max_position_embeddings=40960, rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
}

@pytest.mark.parametrize("name", list(PUBLISHED))
def test_same_count_as_transformers(name):
    with torch.device("meta"): theirs = AutoModelForCausalLM.from_config(PUBLISHED[name])
    assert model_size(name) == sum(p.numel() for p in theirs.parameters())

@pytest.mark.parametrize("name", list(PUBLISHED))
def test_preset_is_what_from_hf_reads(name):
    read = config_from_hf(PUBLISHED[name].to_dict())
    assert _comparable(read) == _comparable(preset(name))

def test_kv_cache_by_hand():
    g = preset("gemma-3-1b")
    local, full = g.layer_types.count("sliding_attention"), g.layer_types.count("full_attention")
    assert (local, full) == (22, 4)
    per_token = 2 * 1 * 256 * 2  # K and V, one key/value head of 256, bf16
    assert kv_cache_bytes(g, 32_768) == per_token * (22 * 512 + 4 * 32_768)


def test_active_parameters_of_qwen3_moe():
    "Active per token: everything but the experts, plus 8 of 128 experts per layer (transformers has no count: by hand)."
    from llmbook.blocks import active_params
    c = preset("qwen3-30b-a3b")
    with torch.device("meta"): model = Decoder(c)
    expert = 3 * c.d_model * c.d_expert_ff
    total = count_params(model)  # what model_size("qwen3-30b-a3b") counts, without building the 30B model twice
    assert active_params(model) == total - c.n_layers * (c.n_experts - c.n_experts_per_token) * expert
