#!/usr/bin/env bash
# The one script to run on a lent GPU machine (see ../shared/gpu/README.md: no network there, nbdev and its
# pure-Python friends travel as wheels). About 10 minutes in all, inside the device tool's 600 s per command:
#   1. install the carried wheels (.whl/setup.sh)                                       ~15 s
#   2. the GPU-only cells: nbdev_test --flags cuda on nbs/17_performance.ipynb (when it has
#      `#| cuda` cells) and every other notebook that has them, at most CELLS_S seconds  150 s
#   3. python bench/bench_gpu.py --budget BUDGET_S (llmbook vs transformers, + nanoGPT),
#      killed after BENCH_S seconds (its rows are logged as they are measured)         300 s + ~60 s
# Logs go to $OUT (the device tool brings them back; ./gpu_check_out when $OUT is unset):
#   setup.log, cuda_cells.log, bench_gpu.log (the table), bench_gpu.err (warm-ups, compile logs), summary.txt
#
# Before the device call, here in the project root:
#   bash ../shared/gpu/fetch-wheels.sh                   # wheels into .whl/ (git-ignored; emptied first)
#   cp /path/to/nanoGPT/model.py .whl/nanogpt_model.py   # optional, after fetching: adds the nanoGPT rows
# Then: run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=600), and give_back when done.
# On a machine without a GPU: bash bench/gpu_check.sh --smoke (the bench in --smoke mode, no cuda cells)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # import llmbook from this checkout (nothing installed there)
CELLS_S=${CELLS_S:-150}
BUDGET_S=${BUDGET_S:-300}
BENCH_S=${BENCH_S:-390}
NANOGPT=${NANOGPT:-.whl/nanogpt_model.py}
SMOKE=${1:-}
start=$SECONDS
say() { echo "[$((SECONDS - start)) s] $*" | tee -a "$OUT/summary.txt"; }

# 1. wheels
if [ -f .whl/setup.sh ]; then
  . .whl/setup.sh > "$OUT/setup.log" 2>&1 && say "wheels installed" || say "WHEELS FAILED: see setup.log"
else
  say "no .whl/setup.sh: this Python's packages are used (on a GPU machine: run fetch-wheels.sh first)"
fi
python - >> "$OUT/summary.txt" 2>&1 <<'PY'
import torch, transformers
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, {gpu}")
PY
tail -n 1 "$OUT/summary.txt"

# 2. the `#| cuda` cells, nbs/17 first, within CELLS_S seconds together
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  notebooks=$( (ls nbs/17_performance.ipynb; grep -l "#| cuda" nbs/*.ipynb) | awk '!seen[$0]++')
  : > "$OUT/cuda_cells.log"
  for nb in $notebooks; do
    grep -q "#| cuda" "$nb" || { say "$nb: no #| cuda cell"; continue; }
    left=$((CELLS_S - (SECONDS - start)))
    if [ "$left" -lt 20 ]; then say "$nb: SKIPPED (the cells' $CELLS_S s are spent)"; continue; fi
    echo "== $nb" >> "$OUT/cuda_cells.log"
    if timeout "$left" nbdev_test --flags cuda --n_workers 0 --path "$nb" >> "$OUT/cuda_cells.log" 2>&1; then
      say "$nb: cuda cells passed"
    else
      say "$nb: FAILED or timed out (exit $?): see cuda_cells.log"
    fi
  done
else
  say "no CUDA device: the #| cuda cells were not run"
fi

# 3. the side-by-side table
args=(--budget "$BUDGET_S")
[ "$SMOKE" = "--smoke" ] && args=(--smoke)
if [ -f "$NANOGPT" ]; then args+=(--nanogpt "$NANOGPT")
else say "no $NANOGPT: the nanoGPT rows are left out"; fi
say "python bench/bench_gpu.py ${args[*]}"
timeout "$BENCH_S" python bench/bench_gpu.py "${args[@]}" > "$OUT/bench_gpu.log" 2> "$OUT/bench_gpu.err"
code=$?
if [ $code -eq 0 ]; then say "bench_gpu.py done"
else say "bench_gpu.py FAILED or timed out (exit $code): the rows measured so far are in bench_gpu.err"; fi
cat "$OUT/bench_gpu.log"
say "gpu_check done"
