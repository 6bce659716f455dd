"""Speculative decoding and int8 weights on CPU (chapter 17, llmbook.perf): one table.

A GPT-2-shaped llmbook decoder, 256 wide, 4 layers, vocabulary 2048 (random weights, init_std 0.1 so that greedy
output varies), batch 1, an 8-token prompt, 128 new tokens, no EOS. Every row is timed in the same run as the plain
float greedy `generate` (the reference, ratio 1.00x): medians of several runs, the rows taken in turn within each
repeat, after one warm-up run each. Rows:
- speculative decoding (`speculative_generate`, greedy, `--k` proposals per round) with three drafts: the target's
  int8 copy, the target's own first layer (its embeddings and head: a draft that needs no training), and an
  unrelated random 1-layer 128-wide model (the worst case: nearly every proposal rejected). Their ids must equal
  the reference's; the acceptance rate and target forward passes are printed.
- int8 greedy `generate` (`quantize_int8`: scales applied after an integer-valued float matmul) and, for
  information, the same layers through `torch._weight_int8pack_mm` (PyTorch's CPU int8 weight kernel). Their ids
  may differ (int8 changes the logits): the max logit error vs float is printed, and where the ids first differ.

    python bench/bench_decode_extras.py [--repeats 5] [--threads 1] [--k 5] [--new 128]

CPU threads default to 1, as in bench_generation.py (batch-1 decoding of a small model is a chain of small
operations; on a busy shared machine threads that wait for each other spin). `--threads 0` keeps torch's default.
"""
import argparse, copy, statistics, time, warnings
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))

def first_layers(model, n):
    "A decoder made of `model`'s first n blocks, embeddings, final norm and head (weights copied)."
    from llmbook.decoder import Decoder
    import dataclasses
    draft = Decoder(dataclasses.replace(model.config, n_layers=n)).eval()
    missing, _ = draft.load_state_dict(model.state_dict(), strict=False)
    assert not missing, missing
    return draft

def with_int8pack(model_int8):
    "The same int8 model, its Int8Linear layers computing with torch._weight_int8pack_mm (float32 CPU kernel)."
    from llmbook.perf import Int8Linear
    out = copy.deepcopy(model_int8)
    def forward(self, x):
        y = torch._weight_int8pack_mm(x.reshape(-1, x.shape[-1]), self.weight_int8, self.scale)  # (N, out)
        y = y.reshape(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias
    for m in out.modules():
        if isinstance(m, Int8Linear): m.forward = forward.__get__(m)
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--k", type=int, default=5, help="num_assistant_tokens: proposals per round")
    p.add_argument("--new", type=int, default=128, help="new tokens")
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    from llmbook.blocks import preset
    from llmbook.core import param_bytes, format_size
    from llmbook.decoder import Decoder
    from llmbook.generation import generate, generation_config
    from llmbook.perf import speculative_generate, quantize_int8, logit_error

    shape = dict(vocab_size=2048, d_model=256, n_layers=4, n_heads=4, head_dim=64, d_ff=1024, max_seq_len=256,
                 init_std=0.1)
    torch.manual_seed(0)
    target = Decoder(preset("tiny-gpt2", **shape)).eval()
    torch.manual_seed(1)
    unrelated = Decoder(preset("tiny-gpt2", **{**shape, "d_model": 128, "head_dim": 32, "d_ff": 512,
                                              "n_layers": 1})).eval()
    target_int8 = quantize_int8(target)
    int8pack = with_int8pack(target_int8)
    drafts = {"int8 copy of the target": target_int8, "target's first layer": first_layers(target, 1),
              "unrelated 1 layer, 128 wide": unrelated}
    ids = torch.randint(0, 2048, (1, 8), generator=torch.Generator().manual_seed(0))
    new, cfg = args.new, generation_config(target, eos_token_id=[])
    greedy = lambda model: (lambda: (generate(model, ids, max_new_tokens=new, eos_token_id=[]), None))
    speculative = lambda draft: (lambda: speculative_generate(target, draft, ids, cfg, new, args.k))
    runs = {"float greedy (reference)": greedy(target),
            **{f"speculative, draft: {name}": speculative(d) for name, d in drafts.items()},
            "int8 greedy": greedy(target_int8), "int8 greedy, _weight_int8pack_mm": greedy(int8pack)}

    outputs = {name: fn() for name, fn in runs.items()}  # warm-up, and the outputs to compare
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    reference = outputs["float greedy (reference)"][0]
    ref_time = statistics.median(times["float greedy (reference)"])
    with torch.no_grad():
        int8_match = {name: logit_error(target, model, reference) for name, model in
                      (("int8 greedy", target_int8), ("int8 greedy, _weight_int8pack_mm", int8pack))}
    rows, ok = [], True
    for name, (out, stats) in outputs.items():
        t = statistics.median(times[name])
        same = out.shape == reference.shape and bool((out == reference).all())
        if name.startswith("speculative"): ok &= same
        if same: ids_note = "same"
        else:
            n = min(out.shape[1], reference.shape[1])
            first = int((out[0, :n] != reference[0, :n]).int().argmax()) - ids.shape[1] + 1
            ids_note = f"differ from token {first}"
        acceptance = f"{stats.acceptance_rate:.0%}" if stats else ""
        forwards = str(stats.target_forwards) if stats else str(new)  # greedy: the prompt, then one per token
        error = ""
        if name in int8_match: error = f"{int8_match[name]['max_abs']:.4f} ({int8_match[name]['max_rel']:.2%})"
        rows.append([name, f"{new / t:,.0f}", f"{ref_time / t:.2f}x", ids_note, acceptance, forwards, error])
    distinct = len(set(reference[0, ids.shape[1]:].tolist()))
    table(f"CPU decoding, 256 wide x 4 layers, vocab 2048, batch 1, 8-token prompt, {new} new tokens: tokens/s "
          f"(median of {args.repeats}, {torch.get_num_threads()} threads), {args.k} proposals per round; "
          f"the reference writes {distinct} distinct tokens",
          ["decoding", "tokens/s", "vs float greedy", "ids vs float greedy", "acceptance", "target forwards",
           "max logit error (rel.)"], rows)
    sizes = [format_size(param_bytes(m), "B") for m in (target, target_int8)]
    print(f"\nweights: float32 {sizes[0]}, int8 {sizes[1]} "
          f"(tied token table kept in float32 for the lookup; the head gets its own int8 copy)")
    forward_costs(target, drafts, args.k, args.repeats)
    if not ok: print("\nSPECULATIVE OUTPUT DIFFERS FROM GREEDY: a bug")

@torch.no_grad()
def forward_costs(target, drafts, k, repeats, past=72):
    "Milliseconds of one cached forward pass over 1 token and over k + 1 tokens (what a speculative round runs)."
    rows = []
    for name, model in {"target (float32)": target, **drafts}.items():
        ms = []
        for T in (1, k + 1):
            cache = model.new_cache()
            model(torch.randint(0, 2048, (1, past)), cache=cache)
            tokens = torch.randint(0, 2048, (1, T))
            model(tokens, cache=cache)  # warm-up
            cache.crop(past)
            times = []
            for _ in range(5 * repeats):
                start = time.perf_counter()
                model(tokens, cache=cache)
                times.append(time.perf_counter() - start)
                cache.crop(past)
            ms.append(statistics.median(times) * 1e3)
        rows.append([name, f"{ms[0]:.2f}", f"{ms[1]:.2f}", f"{ms[1] / ms[0]:.2f}x"])
    table(f"One forward pass with {past} positions cached: milliseconds (median of {5 * repeats}); a speculative "
          f"round costs k = {k} draft passes of 1 token and one target pass of {k + 1} tokens",
          ["model", "1 token", f"{k + 1} tokens", "ratio"], rows)

if __name__ == "__main__":
    main()
