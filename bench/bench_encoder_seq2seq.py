"""Encoder and encoder-decoder benchmarks: CPU forward+backward tokens/s of llmbook's BERT and T5
against Hugging Face's same-size models with the same weights (loaded with `from_hf`), measured in the
same run; median of several runs, the two models' steps interleaved (HF, llmbook, HF, llmbook, ...) so that a
change in the machine's load hits both alike. Goal: ratio (llmbook / HF) >= 1.0.

    python bench/bench_encoder_seq2seq.py [--repeats 7] [--threads N]
"""
import argparse, statistics, time
import torch
import torch.nn.functional as F

def median_times(fns, repeats, warmup=2):
    "Median seconds of each function, run in turns: a, b, a, b, ..."
    for _ in range(warmup):
        for fn in fns: fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))

def step(model, run):
    def f():
        model.zero_grad(set_to_none=True)
        run().backward()
    return f

def main(repeats):
    from transformers import BertConfig, BertForMaskedLM, T5Config, T5ForConditionalGeneration
    from llmbook.hub import from_hf
    rows = []
    V, B, T = 8192, 8, 128
    torch.manual_seed(0)
    ids = torch.randint(0, V, (B, T)); mask = torch.ones(B, T, dtype=torch.long); mask[:, -16:] = 0
    for d, L, H in ((256, 4, 4), (512, 6, 8)):
        hf = BertForMaskedLM(BertConfig(vocab_size=V, hidden_size=d, num_hidden_layers=L, num_attention_heads=H,
                                        intermediate_size=4 * d, max_position_embeddings=T, hidden_dropout_prob=0,
                                        attention_probs_dropout_prob=0)).train()
        ours = from_hf(hf).train()
        loss = lambda logits: F.cross_entropy(logits.flatten(0, 1), ids.flatten())
        t_hf, t_ours = median_times([step(hf, lambda: loss(hf(ids, attention_mask=mask).logits)),
                                     step(ours, lambda: loss(ours(ids, attention_mask=mask)))], repeats)
        rows.append([f"BERT d={d} L={L}", f"{B}x{T}", f"{B * T / t_hf:,.0f}", f"{B * T / t_ours:,.0f}", f"{t_hf / t_ours:.2f}"])
    dec = torch.randint(0, V, (B, T // 2))
    for d, L, H, proj in ((256, 3, 4, "relu"), (512, 4, 8, "gated-gelu")):
        hf = T5ForConditionalGeneration(T5Config(vocab_size=V, d_model=d, d_kv=d // H, d_ff=2 * d, num_layers=L, num_heads=H,
                                                 feed_forward_proj=proj, dropout_rate=0, decoder_start_token_id=0)).train()
        ours = from_hf(hf).train()
        loss = lambda logits: F.cross_entropy(logits.flatten(0, 1), dec.flatten())
        t_hf, t_ours = median_times([step(hf, lambda: loss(hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits)),
                                     step(ours, lambda: loss(ours(ids, dec, attention_mask=mask)))], repeats)
        tok = B * (T + T // 2)
        rows.append([f"T5 d={d} L={L} {proj}", f"{B}x({T}+{T // 2})", f"{tok / t_hf:,.0f}", f"{tok / t_ours:,.0f}", f"{t_hf / t_ours:.2f}"])
    table(f"CPU forward+backward, tokens/s (median of {repeats}, {torch.get_num_threads()} threads)",
          ["model", "batch", "HF", "llmbook", "ratio"], rows)

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    main(a.repeats)
