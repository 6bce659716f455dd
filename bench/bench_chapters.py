"""How long each chapter takes a learner: every chapter run top to bottom in a fresh Jupyter kernel, on the CPU,
with default settings (not under `nbdev_test`: `slow` cells run too, as they do in JupyterLab's Run All).

    python bench/bench_chapters.py                    # every nbs/NN_*.ipynb
    python bench/bench_chapters.py 07_encoder 08_seq2seq --limit 600
    python bench/bench_chapters.py --threads 1        # OMP/MKL threads of the kernel (default: PyTorch's choice)
    python bench/bench_chapters.py 11_pretraining 12_decoding --cold-warm   # with and without the course models cached

Prints a table: wall time, the kernel's CPU time (its own and its children's; on a busy machine wall
time inflates, CPU time much less), the slowest cells, and whether the chapter keeps the course's promise
of under 5 minutes on a 2-core laptop CPU (`--limit`, seconds). The kernel runs on a temporary copy of
`nbs/`, so nothing in the repository changes.

Chapters after the pretraining chapter load its course models (`llmbook.pretraining.course_model`) from the llmbook
cache, and train them first when they are missing. `--cold-warm` runs every chapter twice, each time with a
temporary `LLMBOOK_CACHE`: **cold** (empty: the chapter must train the course models it uses) and **warm** (every
course model trained once beforehand, and copied in), and reports both times; the promise is under 5 minutes
warm and under 5 minutes more cold. Without it, chapters use your own cache, whatever it holds. The browser test (tests/test_browser.py) measures the same
through JupyterLab and writes test-reports/chapter-times.md.
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, tempfile, time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _seconds(meta) -> float | None:
    t = (meta or {}).get("execution", {})
    a, b = t.get("iopub.execute_input"), t.get("shell.execute_reply")
    if not (a and b): return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(b) - parse(a)).total_seconds()

_CPU = "import resource as _r\n_s, _c = _r.getrusage(_r.RUSAGE_SELF), _r.getrusage(_r.RUSAGE_CHILDREN)\n" \
       "print(_s.ru_utime + _s.ru_stime + _c.ru_utime + _c.ru_stime)"

def run_chapter(path: Path, workdir: Path, limit: float) -> dict:
    "Run one chapter in a fresh kernel; stop at the first error or after `limit` seconds."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    nb = nbformat.read(workdir / path.name, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}, record_timing=True)
    res = {"name": path.stem, "wall": 0.0, "cpu": None, "status": "ok", "cells": []}
    with client.setup_kernel():
        t0 = time.monotonic()
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code": continue
            left = limit - (time.monotonic() - t0)
            client.timeout = max(1, int(left))
            try: client.execute_cell(cell, i)
            except CellTimeoutError:
                res["status"] = f"over {limit:.0f} s in cell {i}"; break
            except CellExecutionError as e:
                res["status"] = f"error in cell {i}: {str(e).strip().splitlines()[-1][:100]}"; break
            finally:
                s = _seconds(cell.metadata)
                if s is not None:
                    first = next((l for l in cell.source.splitlines() if l.strip() and not l.startswith("#|")), "")
                    res["cells"].append((s, i, first[:50]))
        res["wall"] = time.monotonic() - t0
        if res["status"] == "ok" and res["wall"] >= limit: res["status"] = f"over {limit:.0f} s"
        if res["status"] == "ok" or res["status"].startswith("error"):
            probe = nbformat.v4.new_code_cell(_CPU); nb.cells.append(probe)
            client.timeout = 60
            client.execute_cell(probe, len(nb.cells) - 1)
            res["cpu"] = float(probe.outputs[0]["text"])
    return res

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("chapters", nargs="*", help="chapter names (default: every nbs/NN_*.ipynb)")
    p.add_argument("--limit", type=float, default=300, help="seconds a chapter may take (default 300: the course's promise)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS / MKL_NUM_THREADS for the kernel")
    p.add_argument("--cold-warm", action="store_true", help="run each chapter with an empty and with a filled course-model cache")
    args = p.parse_args(argv)
    for var in ("IN_TEST", "MPLBACKEND"): os.environ.pop(var, None)   # a learner's kernel: full runs, inline plots
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads: os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    paths = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
    if args.chapters: paths = [q for q in paths if q.stem in args.chapters]
    work = Path(tempfile.mkdtemp(prefix="llmbook-bench-"))
    try:
        shutil.copytree(ROOT / "nbs", work / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_proc"))
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; kernel threads: "
              f"{args.threads or 'default'}; limit {args.limit:.0f} s per chapter", flush=True)
        if args.cold_warm:
            warm = work / "warm-cache"
            t = time.monotonic()
            fill = "from llmbook.pretraining import COURSE_RECIPES, course_model\nfor n in COURSE_RECIPES: course_model(n, progress=False)"
            subprocess.run([sys.executable, "-c", fill], env={**os.environ, "LLMBOOK_CACHE": str(warm)}, check=True)
            print(f"the course models, trained once for the warm runs: {time.monotonic() - t:.0f} s", flush=True)
        rows = []
        for path in paths:
            r = {}
            for kind in ("cold", "warm") if args.cold_warm else ("yours",):
                if kind != "yours":  # a cache of its own for every run
                    cache = work / f"cache-{path.stem}-{kind}"
                    if kind == "warm": shutil.copytree(warm, cache)
                    os.environ["LLMBOOK_CACHE"] = str(cache)
                r[kind] = run_chapter(path, work / "nbs", args.limit * (2 if kind == "cold" else 1))  # cold: 5 min more
                print(f"  {path.stem} ({kind} cache): {r[kind]['wall']:.1f} s ({r[kind]['status']})", file=sys.stderr, flush=True)
            rows.append(r)
        print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
        kinds = list(rows[0]) if rows else []
        print("| chapter | " + " | ".join(f"run all, {k} cache (s)" for k in kinds) + " | kernel CPU (s) | under limit | slowest cells (s) |")
        print("|---|" + "---:|" * len(kinds) + "---:|---|---|")
        for r in rows:
            last = r[kinds[-1]]
            slow = "; ".join(f"{i} `{src}` {s:.1f}" for s, i, src in sorted(last["cells"], reverse=True)[:2] if s >= 1)
            cpu = f"{last['cpu']:.0f}" if last["cpu"] is not None else "-"
            ok = " / ".join("yes" if r[k]["status"] == "ok" else f"{k}: {r[k]['status']}" for k in kinds)
            print(f"| {last['name']} | " + " | ".join(f"{r[k]['wall']:.1f}" for k in kinds) + f" | {cpu} | {ok} | {slow} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
