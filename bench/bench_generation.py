"""Generation benchmarks: llmbook `generate` vs transformers `generate` on the same weights. Prints tables.

CPU (always): tiny GPT-2 weights and the issue's 256-wide 4-layer GPT-2 (vocab 2048), batch 1, 128 new tokens,
greedy and beam-4, llmbook's default path and `static_cache=True, compile=True` (Inductor),
(no EOS, so both run all 128 steps). Both outputs are checked equal in the script; times are medians of several
runs, alternating the two libraries, and the ratio is measured in the same run. Goal: llmbook >= 1.5x faster.
Then the KV cache's memory, measured, against 2 * layers * batch * T * n_kv_heads * head_dim * bytes.
GPU (when CUDA is present): GPT-2 124M shapes (random weights), bf16, batch 1, 256 new tokens: tokens/s of
transformers, llmbook, and llmbook with the static cache and the compiled step; greedy and beam-4.

    python bench/bench_generation.py [--repeats 7] [--threads 1]

CPU threads default to 1: batch-1 decoding of a tiny model is a chain of small operations, where intra-op threads
only add synchronisation, and on a busy shared machine threads that wait for each other spin (both libraries then
fall to ~40 tokens/s and the ratio is noise). `--threads 0` keeps torch's default.
"""
import argparse, statistics, time, warnings
import torch

warnings.filterwarnings("ignore")

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))

def timed(fn, sync=lambda: None):
    sync(); t = time.perf_counter(); out = fn(); sync()
    return time.perf_counter() - t, out

def compare(hf, ours, ids, new, repeats, sync=lambda: None, **kw):
    "Median seconds of transformers and llmbook (alternating runs, after a warm-up of each), and both outputs."
    from llmbook.generation import generate
    run_hf = lambda: hf.generate(ids, max_new_tokens=new, do_sample=False, eos_token_id=[], pad_token_id=1, **kw)
    run_ours = lambda: generate(ours, ids, max_new_tokens=new, eos_token_id=[], pad_token_id=1, **kw)
    out_hf, out_ours = run_hf(), run_ours()  # warm-up (and the outputs to compare)
    t_hf, t_ours = [], []
    for _ in range(repeats):
        t_hf.append(timed(run_hf, sync)[0]); t_ours.append(timed(run_ours, sync)[0])
    return statistics.median(t_hf), statistics.median(t_ours), out_hf, out_ours

def gpt2_pair(vocab, d, layers, heads, ctx, device="cpu", dtype=torch.float32):
    from transformers import GPT2Config, GPT2LMHeadModel
    from llmbook.hub import from_hf
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=ctx, n_embd=d, n_layer=layers, n_head=heads,
                                    bos_token_id=0, eos_token_id=0, pad_token_id=1, initializer_range=0.1,
                                    attn_implementation="sdpa")).eval()
    hf = hf.to(device, dtype)
    return hf, from_hf(hf).to(device)

def cpu_bench(repeats):
    from llmbook.generation import generate
    rows, ok = [], True
    for name, (vocab, d, layers, heads) in {"tiny": (320, 64, 2, 4), "issue goal": (2048, 256, 4, 4)}.items():
        hf, ours = gpt2_pair(vocab, d, layers, heads, ctx=256)
        ids = torch.randint(1, vocab, (1, 8), generator=torch.Generator().manual_seed(0))
        for mode, kw in (("greedy", {}), ("beam-4", {"num_beams": 4})):
            t_hf, t_ours, a, b = compare(hf, ours, ids, 128, repeats, **kw)
            fast = lambda: generate(ours, ids, max_new_tokens=128, eos_token_id=[], pad_token_id=1, static_cache=True,
                                    compile=True, **kw)
            c = fast()  # compiles (Inductor)
            t_fast = statistics.median(timed(fast)[0] for _ in range(repeats))
            same = a.shape == b.shape == c.shape and bool((a == b).all()) and bool((a == c).all())
            ok &= same
            rows.append([name, f"{d}x{layers}", mode, f"{128 / t_hf:,.0f}", f"{128 / t_ours:,.0f}", f"{t_hf / t_ours:.2f}x",
                         f"{128 / t_fast:,.0f}", f"{t_hf / t_fast:.2f}x", "yes" if same else "NO"])
    table(f"CPU generation, batch 1, 8-token prompt, 128 new tokens: tokens/s (median of {repeats}, "
          f"{torch.get_num_threads()} threads); goal: llmbook >= 1.5x transformers",
          ["weights", "d x L", "decoding", "transformers", "llmbook", "speed-up", "static+compile", "speed-up",
           "same ids"], rows)
    if not ok: print("\nOUTPUTS DIFFER: the speed-up above is not a fair comparison")

def cache_bytes(cache) -> int:
    return sum(t.numel() * t.element_size() for store in (cache.k, cache.v) for t in store if t is not None)

def kv_memory():
    "Measured KV-cache size after a generation vs the formula (llama-style GQA included)."
    from llmbook.decoder import Decoder, preset
    from llmbook.generation import DecoderSession, generation_config, token_steps
    rows = []
    for name, cfg, B, static in (("tiny-gpt2", preset("tiny-gpt2"), 1, False), ("tiny-gpt2", preset("tiny-gpt2"), 4, True),
                                 ("tiny-llama (GQA)", preset("tiny-llama"), 2, False)):
        model = Decoder(cfg).eval()
        ids = torch.randint(0, cfg.vocab_size, (B, 8))
        session = DecoderSession(model, ids, max_len=8 + 64 if static else None)
        for _ in token_steps(session, generation_config(model, max_new_tokens=64, eos_token_id=[]), 64): pass
        T = session.cache.max_len if static else session.cache.length
        formula = 2 * cfg.n_layers * B * T * cfg.n_kv_heads * cfg.head_dim * 4
        rows.append([name, "static" if static else "dynamic", B, T, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim,
                     f"{cache_bytes(session.cache):,}", f"{formula:,}"])
    table("KV cache (fp32) after 8 prompt + 64 new tokens: measured bytes vs 2*layers*batch*T*n_kv_heads*head_dim*bytes "
          "(the last token is never fed back, so a dynamic cache holds T = 71; a static one is preallocated to 72)",
          ["model", "cache", "batch", "T", "layers", "kv heads", "head dim", "measured", "formula"], rows)
    cfg = preset("gpt2")
    gib = lambda T: 2 * cfg.n_layers * 1 * T * cfg.n_kv_heads * cfg.head_dim * 2 / 2**20
    print(f"GPT-2 124M, bf16, batch 1: {gib(1024):.0f} MiB at 1,024 tokens; "
          f"Llama 3 8B (8 kv heads): {2 * 32 * 8192 * 8 * 128 * 2 / 2**30:.1f} GiB at 8,192 tokens")

def gpu_bench(repeats):
    from llmbook.generation import generate
    hf, ours = gpt2_pair(50257, 768, 12, 12, 1024, device="cuda", dtype=torch.bfloat16)
    ids = torch.randint(0, 50257, (1, 16), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    sync, new, rows = torch.cuda.synchronize, 256, []
    for mode, kw in (("greedy", {}), ("beam-4", {"num_beams": 4})):
        t_hf, t_ours, a, b = compare(hf, ours, ids, new, repeats, sync, **kw)
        row = [mode, f"{new / t_hf:,.0f}", f"{new / t_ours:,.0f}"]
        fast = lambda: generate(ours, ids, max_new_tokens=new, eos_token_id=[], pad_token_id=1, static_cache=True,
                                compile=True, **kw)
        fast(); fast()  # compile
        t_fast = statistics.median(timed(fast, sync)[0] for _ in range(repeats))
        row += [f"{new / t_fast:,.0f}", f"{t_hf / t_fast:.1f}x", "yes" if torch.equal(a, b) else "no (bf16)"]
        rows.append(row)
    table(f"GPU ({torch.cuda.get_device_name()}) GPT-2 124M shapes, bf16, batch 1, 256 new tokens: tokens/s "
          f"(median of {repeats}); goals: greedy >= 1000 with static cache + compile, beam-4 >= 3x transformers",
          ["decoding", "transformers", "llmbook", "llmbook static+compile", "speed-up", "same ids"], rows)

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    cpu_bench(a.repeats)
    kv_memory()
    if torch.cuda.is_available(): gpu_bench(a.repeats)
    else: print("\nGPU benchmark skipped: no CUDA device on this machine (the GPU goals are not measured here).")
