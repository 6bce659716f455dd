"""Mixture-of-experts layer on the CPU: forward tokens/s of the layer written out expert by expert
(`experts_math`: every expert on every token, weighted by the routing, zero where not chosen) against the
batched layer (`MoE.forward`: tokens sorted by expert, each expert run once on its own tokens, `index_add`
back), and transformers' `MixtralSparseMoeBlock` with the same weights as a reference. Medians of several
runs, ratios measured in the same run. The written-out form does n_experts / k times the expert FLOPs.

    python bench/bench_moe.py [--repeats 7] [--threads N]
"""
import argparse, statistics, time
import torch
from llmbook.blocks import MoE, experts_math

def median_time(fn, repeats, warmup=2):
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))

def hf_block(moe: MoE, d_model: int, d_ff: int, n_experts: int, k: int):
    "transformers' Mixtral MoE block holding `moe`'s weights (None when transformers is missing)."
    try: from transformers import MixtralConfig
    except ImportError: return None
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock
    block = MixtralSparseMoeBlock(MixtralConfig(hidden_size=d_model, intermediate_size=d_ff, num_local_experts=n_experts,
                                                num_experts_per_tok=k)).eval()
    with torch.no_grad():
        block.gate.weight.copy_(moe.router.weight)
        for e, expert in enumerate(moe.experts):
            block.experts.gate_up_proj[e].copy_(torch.cat([expert.gate.weight, expert.up.weight]))
            block.experts.down_proj[e].copy_(expert.down.weight)
    return block

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    rows = []
    for d, f, E, k, B, T in ((256, 512, 8, 2, 4, 256), (512, 1024, 8, 2, 4, 256), (256, 256, 32, 4, 4, 256)):
        torch.manual_seed(0)
        moe = MoE(d, f, n_experts=E, k=k).eval()
        for p in moe.parameters(): torch.nn.init.normal_(p, std=0.05)
        x = torch.randn(B, T, d)
        hf = hf_block(moe, d, f, E, k)
        with torch.no_grad():
            torch.testing.assert_close(moe(x), experts_math(moe, x), atol=1e-5, rtol=0)
            if hf is not None: torch.testing.assert_close(hf(x), moe(x), atol=1e-5, rtol=0)
            t_math = median_time(lambda: experts_math(moe, x), args.repeats)
            t_batched = median_time(lambda: moe(x), args.repeats)
            t_hf = median_time(lambda: hf(x), args.repeats) if hf is not None else float("nan")
        n = B * T
        rows.append([f"d={d} ff={f} E={E} k={k}", n, f"{n / t_math:,.0f}", f"{n / t_batched:,.0f}",
                     f"{t_math / t_batched:.2f}x", f"{n / t_hf:,.0f}", f"{t_hf / t_batched:.2f}x"])
    table(f"MoE layer forward, CPU, {torch.get_num_threads()} threads, tokens/s (median of {args.repeats})",
          ["layer", "tokens", "written out", "batched", "batched/written", "transformers", "batched/transformers"], rows)

if __name__ == "__main__":
    main()
