"""Decoder benchmarks. Prints tables; medians of several runs, ratios measured in the same run.

CPU (always): forward+backward tokens/s of an llmbook GPT vs a Hugging Face GPT-2 of the same size
(same weights, loaded with `from_hf`). Goal: ratio >= 1.0.
GPU (when CUDA is present): attention fwd+bwd TFLOP/s, `math` vs `sdpa`, T = 1k..8k; and GPT-2 124M
training throughput (B=16, T=1024, bf16 autocast, torch.compile, fused AdamW) as MFU by nanoGPT's
formula (6N + 12*L*H*Q*T FLOPs per token, peak 989 TFLOP/s for H100/H200 bf16 dense).

    python bench/bench_decoder.py [--repeats 7] [--threads N]
"""
import argparse, statistics, time
import torch

def median_time(fn, repeats, warmup=2, sync=lambda: None):
    for _ in range(warmup): fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t)
    return statistics.median(times)

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))

def cpu_bench(repeats):
    from transformers import GPT2Config, GPT2LMHeadModel
    from llmbook.hub import from_hf
    rows = []
    for d, L, H, T, B in ((256, 4, 4, 256, 8), (512, 6, 8, 256, 4)):
        torch.manual_seed(0)
        hf = GPT2LMHeadModel(GPT2Config(vocab_size=8192, n_positions=T, n_embd=d, n_layer=L, n_head=H,
                                        resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, bos_token_id=0, eos_token_id=0))
        ours = from_hf(hf).train(); hf.train()
        ids = torch.randint(0, 8192, (B, T))
        def step(model, get):
            def run():
                model.zero_grad(set_to_none=True)
                logits = get(model(ids))
                torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids.flatten()).backward()
            return run
        t_hf = median_time(step(hf, lambda o: o.logits), repeats)
        t_ours = median_time(step(ours, lambda o: o), repeats)
        tok = B * T
        rows.append([f"d={d} L={L} H={H}", f"{B}x{T}", f"{tok / t_hf:,.0f}", f"{tok / t_ours:,.0f}", f"{t_hf / t_ours:.2f}"])
    table(f"CPU forward+backward, tokens/s (median of {repeats}, {torch.get_num_threads()} threads)",
          ["model", "batch", "HF GPT-2", "llmbook", "ratio"], rows)

def gpu_attention(repeats):
    from llmbook.attention import attention
    rows, B, H, D = [], 4, 16, 64
    sync = torch.cuda.synchronize
    for T in (1024, 2048, 4096, 8192):
        q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        flops = 4 * B * T * T * H * D / 2 * 3.5  # causal halves it; backward is 2.5x forward
        row = [T]
        for backend in ("math", "sdpa"):
            def run():
                out = attention(q, k, v, is_causal=True, backend=backend)
                out.sum().backward()
            try: row.append(f"{flops / median_time(run, repeats, sync=sync) / 1e12:.1f}")
            except torch.OutOfMemoryError: row.append("OOM"); torch.cuda.empty_cache()
        rows.append(row)
    table("GPU causal attention fwd+bwd TFLOP/s (bf16, B=4, H=16, D=64)", ["T", "math", "sdpa"], rows)

def gpu_training(repeats):
    from llmbook.decoder import Decoder, preset
    cfg = preset("gpt2", pad_vocab_multiple=64)
    model = Decoder(cfg).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, fused=True)
    step_fn = torch.compile(model)
    B, T = 16, 1024
    ids = torch.randint(0, cfg.vocab_size, (B, T + 1), device="cuda")
    def run():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = step_fn(ids[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    t = median_time(run, repeats, warmup=3, sync=torch.cuda.synchronize)
    N = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * N + 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * T
    mfu = flops_per_token * B * T / t / 989e12
    table("GPU GPT-2 124M training (B=16, T=1024, bf16, compile, fused AdamW)", ["tokens/s", "MFU"],
          [[f"{B * T / t:,.0f}", f"{100 * mfu:.1f}%"]])

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    cpu_bench(a.repeats)
    if torch.cuda.is_available():
        gpu_attention(a.repeats); gpu_training(a.repeats)
    else:
        print("\nGPU benchmarks skipped: no CUDA device on this machine.")
