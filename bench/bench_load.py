"""Peak memory of `hub.from_hf` loading a safetensors folder: eager (the whole file read, then converted)
vs lazy (`LazyTensors`: read, convert and keep one tensor at a time). Prints a table; medians of several runs.

Each load runs in a fresh subprocess, which loads a tiny folder first (so the modules `from_hf` imports on
first use are in place), reads its peak resident set size (`resource.getrusage(...).ru_maxrss`), loads the
folder and reads the peak again. The table shows both and
the growth between them: what loading costs. The "imports" row loads nothing: its growth is the noise floor.
The parent imports no torch and holds no model (a forked child's peak would start at its parent's size). The folder is a random
GPT-2-shaped model (GPT-2's vocabulary and context; 512 wide, 7 blocks: about 190 MB in float32), written by
`hub.to_hf` from an llmbook `Decoder`, so transformers is not needed.

After loading, every parameter is read once (as a forward pass would), so pages of the file that a
memory-mapped tensor has not touched yet are counted too.

Rows:
- eager: the loader before lazy loading (`safetensors.torch.load_file` of the whole file, then `convert_state_dict`);
- lazy: `LazyTensors`, as `from_hf` reads folders now (memory-mapped, one tensor at a time);
- lazy-pread: the same with safetensors' `backend="pread"` (>= 0.8), plain reads into new memory instead of a
  mapping: kept to show why `from_hf` maps (freed copies are not all returned to the system).

    python bench/bench_load.py [--repeats 3] [--layers 7] [--width 512]
"""
import argparse, json, statistics, subprocess, sys, tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from llmbook import hub
mode, folder = sys.argv[1], Path(sys.argv[2])
if mode == "eager":  # the loader as it was: every tensor in memory before the first is converted
    hub._read_folder = lambda f: (json.loads((f / "config.json").read_text()), load_file(f / "model.safetensors"))
elif mode == "lazy-pread":  # plain reads into new memory instead of a mapping (safetensors >= 0.8)
    hub._open_safetensors = lambda p: safe_open(p, framework="pt", backend="pread")
if mode == "make":  # write the folder: a random llmbook Decoder, exported
    from llmbook.blocks import TransformerConfig
    from llmbook.decoder import Decoder
    width, layers = int(sys.argv[3]), int(sys.argv[4])
    config = TransformerConfig(vocab_size=50257, max_seq_len=1024, d_model=width, n_layers=layers, n_heads=8)
    hub.to_hf(Decoder(config), folder)
    tiny = TransformerConfig(vocab_size=64, max_seq_len=16, d_model=16, n_layers=1, n_heads=2)
    hub.to_hf(Decoder(tiny), folder.parent / "tiny")
    print(json.dumps({"torch": torch.__version__})); sys.exit()
hub.from_hf(folder.parent / "tiny")  # warm-up: what from_hf imports on first use is not the load's cost
start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if mode != "imports":
    model = hub.from_hf(folder)
    with torch.no_grad():  # read every weight once, as a forward pass would: mapped pages count once touched
        total = sum(float(p.float().sum()) for p in model.parameters())
seconds = time.perf_counter() - t
print(json.dumps({"start_kb": start_kb, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": seconds}))
"""

def run(mode, folder, *extra):
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), *map(str, extra)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layers", type=int, default=7)
    ap.add_argument("--width", type=int, default=512)
    args = ap.parse_args()
    # this process imports no torch and holds no model: a child forked from a large parent would start its
    # peak RSS at the parent's size
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gpt2-random"
        torch_version = run("make", folder, args.width, args.layers)["torch"]
        size_mb = (folder / "model.safetensors").stat().st_size / 1e6
        rows = []
        for mode in ("imports", "eager", "lazy", "lazy-pread"):
            runs = [run(mode, folder) for _ in range(args.repeats)]
            start = statistics.median(r["start_kb"] for r in runs) / 1024
            peak = statistics.median(r["peak_kb"] for r in runs) / 1024
            grown = statistics.median((r["peak_kb"] - r["start_kb"]) for r in runs) / 1024
            secs = statistics.median(r["seconds"] for r in runs)
            rows.append([mode, f"{start:.0f}", f"{peak:.0f}", f"{grown:.0f}", f"{grown * 1.048576 / size_mb:.2f}",
                         f"{secs:.2f}" if mode != "imports" else "-"])
    print(f"random GPT-2-shaped folder: {args.layers} blocks, d_model {args.width}, vocab 50257, context 1024; "
          f"{size_mb:.0f} MB of float32 in model.safetensors; torch {torch_version}")
    table(f"peak RSS of one load in a fresh process (median of {args.repeats})",
          ["loader", "peak before load MiB", "peak after load MiB", "growth MiB", "growth / file size", "load s"], rows)

if __name__ == "__main__":
    main()
