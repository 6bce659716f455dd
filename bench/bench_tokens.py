"""Tokenizer benchmark: the fast BPE trainer against the naive one and HF's, and encode throughput of
the pure-Python encoder against the HF fast path, on one thread. Prints a markdown table.

    python bench/bench_tokens.py            # about 4 minutes on a laptop CPU (the naive trainer dominates)
    python bench/bench_tokens.py --repeat 1 # quicker, noisier
"""
import os
os.environ["RAYON_NUM_THREADS"] = "1"          # HF tokenizers: one thread, set before it is imported
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import argparse, platform, statistics, sys, time
from llmbook.data import load_corpus
from llmbook.tokens import BPETokenizer, HFTokenizer, train_bpe_naive, train_bpe_fast, train_bpe_hf

def timed(fn, repeat):
    "Median seconds of `repeat` runs of `fn`, and its last result."
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t0)
    return statistics.median(times), out

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (the median is reported)")
    args = ap.parse_args()
    r = args.repeat
    docs = load_corpus("pydocs")
    rows = []

    # 1. fast vs naive trainer, 200 KB slice, vocab 1024
    part = docs[:200_000]
    t_naive, naive = timed(lambda: train_bpe_naive(part, 1024 - 256), r)
    t_fast, fast = timed(lambda: train_bpe_fast(part, 1024 - 256), max(r, 5))
    same = list(naive.items()) == list(fast.items())
    rows.append(("train, 200 KB pydocs, vocab 1024", "naive trainer", f"{t_naive:.2f} s", ""))
    rows.append(("", "fast trainer", f"{t_fast:.3f} s", f"**{t_naive / t_fast:.0f}x** faster than naive; identical merges: {same}"))

    # 2. full pydocs, vocab 4096: fast vs HF
    t_fast4k, _ = timed(lambda: train_bpe_fast(docs, 4096 - 256), max(r, 5))
    t_hf4k, _ = timed(lambda: train_bpe_hf(docs, 4096 - 256), max(r, 5))
    rows.append((f"train, full pydocs ({len(docs.encode()) / 1e3:.0f} KB), vocab 4096", "fast trainer", f"{t_fast4k:.3f} s", ""))
    rows.append(("", "HF BpeTrainer (1 thread)", f"{t_hf4k:.3f} s", f"fast/HF = {t_fast4k / t_hf4k:.1f}x"))

    # 3. encode throughput on full pydocs, vocab 4096, one thread
    tok = BPETokenizer.train(docs, 4096)
    fast_path = HFTokenizer(tok)
    mb = len(docs.encode()) / 1e6
    def cold(): tok._cache.clear(); return tok.encode(docs)
    t_cold, ids = timed(cold, max(r, 5))
    t_warm, ids2 = timed(lambda: tok.encode(docs), max(r, 5))
    t_hf, hf_ids = timed(lambda: fast_path.encode(docs), max(r, 5))
    assert ids == ids2 == hf_ids, "the HF fast path must give the same ids"
    paragraphs = docs.split("\n\n")
    t_batch, batch = timed(lambda: fast_path.encode_batch(paragraphs), max(r, 5))
    assert batch == [tok.encode(p) for p in paragraphs]
    vs = lambda t: f"HF time / ours = {t_hf / t:.2f}" + (" (ours is faster)" if t < t_hf else "")
    rows.append((f"encode full pydocs, vocab 4096 ({len(ids):,} tokens)", "BPETokenizer, empty cache", f"{mb / t_cold:.1f} MB/s", vs(t_cold)))
    rows.append(("", "BPETokenizer, warm cache", f"{mb / t_warm:.1f} MB/s", vs(t_warm)))
    rows.append(("", "HF fast path, one string (1 thread)", f"{mb / t_hf:.1f} MB/s", "same ids: True"))
    rows.append(("", "HF fast path, encode_batch of paragraphs (1 thread)", f"{mb / t_batch:.1f} MB/s", "same ids as BPETokenizer per paragraph: True"))

    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; median of {r}+ runs\n")
    print("| measurement | implementation | time / throughput | comparison |")
    print("|---|---|---|---|")
    for row in rows: print("| " + " | ".join(row) + " |")
    goals = [("fast trainer >= 20x naive with identical merges", same and t_naive / t_fast >= 20),
             ("pure-Python encoder within 3x of HF (empty cache)", t_cold / t_hf <= 3)]
    print()
    for goal, ok in goals: print(f"- {goal}: {'met' if ok else 'NOT met'}")
    return 0 if all(ok for _, ok in goals) else 1

if __name__ == "__main__":
    sys.exit(main())
