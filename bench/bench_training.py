"""Training-loop benchmark. Prints tables; medians of several runs, ratios measured in the same run.

CPU (always): tokens/s of llmbook's `Trainer` against a bare hand-written loop on the same model and
batch shape: same AdamW (same weight-decay groups), same clipping, batches drawn from the same
dataset. The trainer is timed as users run it (with its progress bar, written to /dev/null here) and
without the bar. Runs alternate (bare, trainer, trainer without bar, bare, ...) so a slow moment of
the machine hits all of them alike. Goal: the trainer within 5% of the bare loop.

GPU (when CUDA is present): GPT-2 124M, B=16, T=1024, bf16 autocast, fused AdamW, through the trainer,
with and without torch.compile: tokens/s and MFU by nanoGPT's formula (6N + 12*L*H*Q*T FLOPs per
token, N without the position embedding; peak 989 TFLOP/s, H100/H200 bf16 dense).

    python bench/bench_training.py [--repeats 7] [--steps 8] [--threads N]
"""
import argparse, contextlib, io, os, statistics, sys, time
import torch
import torch.nn.functional as F

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))

def make(d, L, H, T, V, device="cpu"):
    from llmbook.core import seed_everything
    from llmbook.decoder import Decoder, preset
    from llmbook.data import NextTokenDataset
    seed_everything(0)
    model = Decoder(preset("gpt2", d_model=d, n_layers=L, n_heads=H, max_seq_len=T, vocab_size=V)).to(device)
    data = NextTokenDataset(torch.randint(0, V, (T * 2000 + 1,)), T)
    return model, data

def bare_loop(model, data, batch_size, lr=3e-4, max_grad_norm=1.0):
    "The hand-written loop: random windows, forward, loss, backward, clip, AdamW. Returns `run(steps)`."
    from llmbook.training import make_optimizer
    optimizer = make_optimizer(model, lr)  # the same AdamW and weight-decay groups as the trainer
    g = torch.Generator().manual_seed(0)
    def run(steps):
        for _ in range(steps):
            idx = torch.randint(len(data), (batch_size,), generator=g).tolist()
            x, y = (torch.stack(t) for t in zip(*(data[i] for i in idx)))
            logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()  # a real loop looks at its loss
    return run

def trainer_loop(model, data, batch_size, progress, lr=3e-4):
    from llmbook.training import Trainer
    trainer = Trainer(model, data, max_steps=10**6, batch_size=batch_size, lr=lr, warmup_steps=0, progress=progress, plot=False)
    def run(steps):
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null): trainer.fit(steps)
    return run

def cpu_bench(repeats, steps):
    rows = []
    for d, L, H, T, B, V in ((128, 4, 4, 128, 16, 1024), (256, 4, 4, 256, 8, 8192)):
        runs = {}
        for name, build in (("bare loop", lambda m, ds: bare_loop(m, ds, B)),
                            ("trainer", lambda m, ds: trainer_loop(m, ds, B, progress=True)),
                            ("trainer, no bar", lambda m, ds: trainer_loop(m, ds, B, progress=False))):
            model, data = make(d, L, H, T, V)
            runs[name] = build(model, data)
            runs[name](2)  # warm-up
        times = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in runs.items():
                t = time.perf_counter(); run(steps); times[name].append(time.perf_counter() - t)
        tok = {name: steps * B * T / statistics.median(ts) for name, ts in times.items()}
        base = tok["bare loop"]
        rows.append([f"d={d} L={L} V={V}", f"{B}x{T}", f"{base:,.0f}", f"{tok['trainer']:,.0f}", f"{tok['trainer'] / base:.3f}",
                     f"{tok['trainer, no bar']:,.0f}", f"{tok['trainer, no bar'] / base:.3f}"])
    table(f"CPU training tokens/s, median of {repeats} runs of {steps} steps ({torch.get_num_threads()} threads); goal: ratio >= 0.95",
          ["model", "batch", "bare loop", "trainer", "ratio", "trainer, no bar", "ratio"], rows)

def gpu_bench(repeats, steps):
    from llmbook.training import Trainer
    B, T, V = 16, 1024, 50304  # GPT-2's vocabulary padded to a multiple of 64, as nanoGPT does
    rows = []
    for compile in (False, True):
        model, data = make(768, 12, 12, T, V, device="cuda")
        trainer = Trainer(model, data, max_steps=10**6, batch_size=B, lr=6e-4, warmup_steps=0, compile=compile,
                          precision="bf16", progress=False, plot=False)
        assert trainer.optimizer.param_groups[0]["fused"], "AdamW should be fused on a GPU"
        trainer.fit(5 if compile else 2)  # compilation happens here
        times = []
        for _ in range(repeats):
            torch.cuda.synchronize(); t = time.perf_counter()
            trainer.fit(steps); torch.cuda.synchronize(); times.append(time.perf_counter() - t)
        dt = statistics.median(times) / steps
        n = sum(p.numel() for p in model.parameters()) - model.pos.weight.numel()
        c = model.config
        flops = (6 * n + 12 * c.n_layers * c.n_heads * c.head_dim * T) * T * B
        rows.append([f"compile={compile}", f"{B * T / dt:,.0f}", f"{dt * 1000:.1f}", f"{flops / dt / 989e12:.1%}"])
        del trainer, model; torch.cuda.empty_cache()
    table(f"GPU: GPT-2 124M through the trainer, B={B}, T={T}, bf16, fused AdamW ({torch.cuda.get_device_name()}); goal MFU >= 45%",
          ["setting", "tokens/s", "ms/step", "MFU"], rows)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-cpu", action="store_true")
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores")
    if not args.skip_cpu: cpu_bench(args.repeats, args.steps)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        gpu_bench(args.repeats, args.steps)
    else:
        print("\nGPU: no CUDA device on this machine, the GPU section (GPT-2 124M, bf16, compile, fused AdamW, MFU) was skipped.")
