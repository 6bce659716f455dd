"""What a padded vocabulary costs the training loss, on the CPU: one step's output layer + loss, forward and
backward, for a GPT-2-shaped head (vocab 50,257, padded to 50,304 with `pad_vocab_multiple=64`), d_model 128,
B*T = 2,048 positions, float32. Bytes written are counted by `llmbook.perf_train.BytesWritten` (every tensor an
operation writes; views are free) and divided by the real logits (B*T x 50,257); times are the median of several
runs taken in turns. Every row's loss and gradients are checked equal to the first row's (the reference).

Rows:
- `unpadded, logits + token_loss`: the reference, no padding at all;
- `padded, sliced logits + token_loss`: what `Decoder.forward` + `Trainer(fused_loss=False)` do: the head
  multiplies all 50,304 rows, `[..., :vocab_size]` cuts the logits (a view), and autograd's backward of that slice
  writes a zero-filled (B*T, 50,304) gradient and copies the real columns into it;
- `padded, linear_cross_entropy`: `Trainer(fused_loss=True)` (chapter 18): the loss takes the padded head
  directly, padded columns set to -inf inside each chunk, no sliced copy and no (B*T, V) gradient table;
- `unpadded, linear_cross_entropy`: the same without padding, for comparison.

    python bench/bench_padded_loss.py [--repeats 7] [--threads 1] [--d 128] [--n 2048] [--smoke]
"""
import argparse, statistics, time
import torch
import torch.nn.functional as F


def rows(V, Vp, chunk_rows):
    from llmbook.training import token_loss
    from llmbook.perf_train import linear_cross_entropy
    def sliced(h, w, y): return token_loss((h @ w.T)[..., :V], y, "sum")  # Decoder.forward, then token_loss
    def fused(h, w, y): return linear_cross_entropy(h, w, y, V, chunk_rows)
    return [("unpadded, logits + token_loss", V, sliced), ("padded, sliced logits + token_loss", Vp, sliced),
            ("padded, linear_cross_entropy", Vp, fused), ("unpadded, linear_cross_entropy", V, fused)]


def step(fn, h0, w0, y, rows_):
    "Forward and backward of one row; returns the loss, dL/dh, dL/dW's real rows and dL/dW's padded rows."
    h = h0.clone().requires_grad_()
    w = torch.cat([w0, w0.new_zeros(rows_ - w0.shape[0], w0.shape[1])]).requires_grad_()  # padding rows are zero
    loss = fn(h, w, y)
    loss.backward()
    V = w0.shape[0]
    return loss.detach(), h.grad, w.grad[:V], w.grad[V:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--n", type=int, default=2048, help="positions per step (B*T)")
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--chunk", type=int, default=512, help="chunk_rows of linear_cross_entropy")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: prove the code paths")
    a = ap.parse_args()
    if a.smoke: a.d, a.n, a.vocab, a.repeats, a.chunk = 16, 64, 1000, 2, 16
    torch.set_num_threads(a.threads)
    from llmbook.perf_train import BytesWritten
    V = a.vocab
    Vp = -(-V // 64) * 64
    g = torch.Generator().manual_seed(0)
    h0 = torch.randn(a.n, a.d, generator=g)
    w0 = torch.randn(V, a.d, generator=g) * 0.02
    y = torch.randint(0, V, (a.n,), generator=g)
    table = rows(V, Vp, a.chunk)
    ref = step(table[0][2], h0, w0, y, table[0][1])
    written = {}
    for name, n_rows, fn in table:
        with BytesWritten() as counter: got = step(fn, h0, w0, y, n_rows)
        written[name] = (counter.total, counter.largest)
        for what, x, r in zip(("loss", "dL/dh", "dL/dW"), got[:3], ref[:3]):
            torch.testing.assert_close(x, r, rtol=1e-4, atol=1e-4, msg=f"{name}: {what} differs from the reference")
        assert got[3].abs().max().item() == 0 if got[3].numel() else True, f"{name}: padded rows got a gradient"
    times = {name: [] for name, _, _ in table}
    for _ in range(a.repeats):  # in turns: a slow moment of the shared machine hits every row alike
        for name, n_rows, fn in table:
            t0 = time.perf_counter()
            step(fn, h0, w0, y, n_rows)
            times[name].append(time.perf_counter() - t0)
    logits = a.n * V
    print(f"torch {torch.__version__}, {a.threads} thread(s); d_model {a.d}, B*T {a.n}, vocab {V} (padded {Vp}), "
          f"float32, chunk_rows {a.chunk}; median of {a.repeats} runs")
    print(f"{'row':<38}{'bytes/logit':>12}{'largest/logits':>16}{'ms/step':>10}{'vs ref':>8}")
    base = statistics.median(times[table[0][0]])
    for name, _, _ in table:
        total, largest = written[name]
        t = statistics.median(times[name])
        print(f"{name:<38}{total / logits:>12.1f}{largest / (4 * logits):>16.3f}{1000 * t:>10.1f}{t / base:>8.2f}")


if __name__ == "__main__":
    main()
