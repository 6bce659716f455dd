"""torch.compile readiness of the model families. Prints a table, one row per (preset, mask); CPU only, ~1 min.

For tiny-gpt2, tiny-llama (Decoder), tiny-bert (Encoder, MLM head), tiny-t5, tiny-bart (Seq2Seq), on a batch of
2 x 16 tokens, without and with a padding attention_mask (second row padded by 4: on the left for decoders, on the
right for encoders and seq2seq sources), in training mode:
- `torch._dynamo.explain(model)(...)`: graphs and graph breaks of the forward (break reasons listed below the table);
- `torch.compile(model, fullgraph=True, backend="aot_eager")`: forward + cross-entropy on random labels + backward,
  ok or the first line of the error; whether the compiled loss equals the eager one (atol 1e-5) and the largest
  gradient difference.
Dynamo is reset between cases; an exception in one row is reported in that row.

    python bench/bench_compile.py [--presets tiny-gpt2,tiny-llama,...] [--seq 16]
"""
import argparse, logging, re, time, traceback, warnings
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")

PRESETS = ("tiny-gpt2", "tiny-llama", "tiny-bert", "tiny-t5", "tiny-bart")

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())

def first_line(e: BaseException, n=150):
    msg = str(e).strip().split("\n")[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:n]

def user_frame(e: BaseException):
    "file:line of the innermost user-code frame that dynamo names in its error, or ''."
    text = str(e)
    if "from user code:" in text: text = text.split("from user code:", 1)[1]
    frames = re.findall(r'File "([^"]+)", line (\d+)', text)
    return f"{frames[-1][0].rsplit('/', 1)[-1]}:{frames[-1][1]}" if frames else ""

def build(name, B, T):
    "The model (train mode) and a function `call(model) -> logits`, and the labels."
    from llmbook.decoder import preset, Decoder
    cfg = preset(name)
    torch.manual_seed(0)
    if name in ("tiny-gpt2", "tiny-llama"): family = "decoder"; model = Decoder(cfg)
    elif name == "tiny-bert":
        from llmbook.encoder import Encoder
        family = "encoder"; model = Encoder(cfg, head="mlm")
    else:
        from llmbook.seq2seq import Seq2Seq
        family = "seq2seq"; model = Seq2Seq(cfg)
    model.train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, cfg.vocab_size, (B, T), generator=g)
    dec = torch.randint(3, cfg.vocab_size, (B, T), generator=g)
    labels = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    return family, model, ids, dec, labels

def make_mask(family, B, T, pad=4):
    mask = torch.ones(B, T, dtype=torch.long)
    if family == "decoder": mask[1, :pad] = 0   # left padding
    else: mask[1, T - pad:] = 0                 # right padding
    return mask

def caller(family, ids, dec, mask):
    if family == "seq2seq": return (ids, dec), dict(attention_mask=mask)
    return (ids,), dict(attention_mask=mask)

def loss_of(logits, labels):
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())

def run_case(name, masked, B, T):
    import torch._dynamo as dynamo
    row = dict(preset=name, mask="no", graphs="-", breaks="-", compile="-", secs="-", loss_eq="-", grad_diff="-")
    reasons = []
    family, model, ids, dec, labels = build(name, B, T)
    mask = make_mask(family, B, T) if masked else None
    if masked: row["mask"] = "left" if family == "decoder" else "right"
    args, kwargs = caller(family, ids, dec, mask)

    # 1. explain: graphs and breaks of one training forward
    dynamo.reset()
    try:
        ex = dynamo.explain(model)(*args, **kwargs)
        row["graphs"], row["breaks"] = ex.graph_count, ex.graph_break_count
        for r in ex.break_reasons:
            where = ""
            if getattr(r, "user_stack", None):
                fs = r.user_stack[-1]
                where = f" @ {fs.filename.rsplit('/', 1)[-1]}:{fs.lineno}"
            reasons.append(f"{r.reason.strip().splitlines()[0][:140]}{where}")
    except Exception as e:
        row["graphs"] = "ERR"; reasons.append(f"explain failed: {first_line(e)}")

    # 2. eager reference: loss and grads
    try:
        model.zero_grad(set_to_none=True)
        loss_e = loss_of(model(*args, **kwargs), labels)
        loss_e.backward()
        grads_e = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
    except Exception as e:
        row["compile"] = f"eager fail: {first_line(e)}"; return row, reasons

    # 3. fullgraph compile, forward + loss + backward
    dynamo.reset()
    try:
        t = time.perf_counter()
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        loss_c = loss_of(compiled(*args, **kwargs), labels)
        loss_c.backward()
        row["secs"] = f"{time.perf_counter() - t:.1f}"
        row["compile"] = "ok"
        row["loss_eq"] = "yes" if torch.allclose(loss_c.detach(), loss_e.detach(), atol=1e-5, rtol=0) else \
            f"NO ({loss_c.item():.6f} vs {loss_e.item():.6f})"
        grads_c = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        if set(grads_c) != set(grads_e): row["grad_diff"] = "different params"
        else: row["grad_diff"] = f"{max((grads_c[n] - grads_e[n]).abs().max().item() for n in grads_e):.1e}"
    except Exception as e:
        where = user_frame(e)
        row["compile"] = f"FAIL @ {where}" if where else "FAIL"
        row["error"] = first_line(e)
    finally:
        model.zero_grad(set_to_none=True)
        dynamo.reset()
    return row, reasons

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    torch._logging.set_logs(dynamo=logging.ERROR)
    import llmbook
    print(f"llmbook: {llmbook.__file__}   torch {torch.__version__}")
    rows, all_reasons, t0 = [], [], time.perf_counter()
    for name in args.presets.split(","):
        for masked in (False, True):
            try:
                row, reasons = run_case(name, masked, 2, args.seq)
            except Exception as e:
                row = dict(preset=name, mask="yes" if masked else "no", graphs="ERR", breaks="-",
                           compile=f"row failed: {first_line(e)}", secs="-", loss_eq="-", grad_diff="-")
                reasons = [traceback.format_exc().strip().splitlines()[-1]]
            rows.append(row)
            all_reasons.append((f"{row['preset']} mask={row['mask']}", reasons))
    keys = ["preset", "mask", "graphs", "breaks", "compile", "secs", "loss_eq", "grad_diff"]
    table(f"torch.compile, training forward, batch 2x{args.seq} (explain: graphs/breaks; fullgraph=True aot_eager: "
          f"fwd+CE+bwd; loss vs eager atol 1e-5; max |grad diff|)",
          ["preset", "mask", "graphs", "breaks", "fullgraph compile", "s", "loss = eager", "max grad diff"],
          [[r[k] for k in keys] for r in rows])
    print("\nfullgraph compile errors (first line):")
    for r in rows:
        if "error" in r: print(f"  {r['preset']} mask={r['mask']}: {r['error']}")
    print("\nbreak reasons (explain):")
    for case, reasons in all_reasons:
        if not reasons: continue
        print(f"  {case}:")
        for r in dict.fromkeys(reasons): print(f"    - {r} (x{reasons.count(r)})" if reasons.count(r) > 1 else f"    - {r}")
    ok = sum(r["compile"] == "ok" for r in rows)
    print(f"\nsummary: {ok}/{len(rows)} rows compile with fullgraph=True; "
          f"{sum(isinstance(r['breaks'], int) and r['breaks'] == 0 for r in rows)}/{len(rows)} without graph breaks; "
          f"{time.perf_counter() - t0:.0f} s")

if __name__ == "__main__":
    main()
