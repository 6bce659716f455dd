"""The optimisation ladder of issue 20, the rungs a CPU can run: tokens/s of llmbook's Trainer, one setting
added at a time, median of several runs taken in turns (so a slow moment of a shared machine hits every
rung alike), each rung's ratio to the first measured in the same run.

Rungs: fp32 eager -> padded vocabulary (a multiple of 64) -> fused loss (`fused_loss=True`, chapter 18) ->
compile (`compile=True`, Inductor on the CPU) -> activation checkpointing (memory for compute: slower by
design). tf32, bf16 autocast, the flash attention kernel and the fused AdamW are GPU rungs: they are measured
by `bench/bench_gpu.py` on a GPU, not here.

    python bench/bench_train_ladder.py [--repeats 5] [--steps 4] [--threads 1] [--smoke]
"""
import argparse, logging, os, statistics, time
import torch

def trainer(vocab_multiple, d, L, T, B, V, **settings):
    from llmbook.core import seed_everything
    from llmbook.blocks import preset
    from llmbook.decoder import Decoder
    from llmbook.data import NextTokenDataset
    from llmbook.training import Trainer
    seed_everything(0)
    config = preset("gpt2", d_model=d, n_layers=L, n_heads=max(1, d // 64), max_seq_len=T, vocab_size=V,
                    pad_vocab_multiple=vocab_multiple, dropout=0.0)
    data = NextTokenDataset(torch.randint(0, V, (T * 400 + 1,), generator=torch.Generator().manual_seed(0)), T)
    return Trainer(Decoder(config), data, max_steps=10**6, batch_size=B, warmup_steps=0, device="cpu",
                   precision="fp32", progress=False, plot=False, **settings)

RUNGS = [("fp32 eager", None, {}),
         ("+ padded vocabulary (x64)", 64, {}),
         ("+ fused loss", 64, {"fused_loss": True}),
         ("+ compile", 64, {"fused_loss": True, "compile": True}),
         ("+ activation checkpointing", 64, {"fused_loss": True, "compile": True, "activation_checkpointing": True})]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: prove the code paths")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch._logging.set_logs(dynamo=logging.ERROR)
    d, L, T, B, V = (64, 2, 32, 4, 1000) if a.smoke else (256, 4, 256, 8, 8000)
    runs = {}
    for name, multiple, settings in RUNGS:
        t = trainer(multiple, d, L, T, B, V, **settings)
        t.fit(2)  # warm-up (and compilation)
        runs[name] = t
    times = {name: [] for name in runs}
    for _ in range(a.repeats):
        for name, t in runs.items():
            start = time.perf_counter()
            t.fit(a.steps)
            times[name].append(time.perf_counter() - start)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, {a.threads} thread(s); GPT-2 d={d} L={L} V={V}, "
          f"B={B} T={T}; median of {a.repeats} runs of {a.steps} steps, taken in turns")
    print(f"| rung | tokens/s | ms/step | vs fp32 eager |\n|---|---|---|---|")
    base = None
    for name, ts in times.items():
        dt = statistics.median(ts) / a.steps
        base = base or dt
        print(f"| {name} | {B * T / dt:,.0f} | {1000 * dt:.1f} | {base / dt:.2f}x |")

if __name__ == "__main__":
    main()
