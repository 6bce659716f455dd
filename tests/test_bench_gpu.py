"""bench/bench_gpu.py --smoke: the GPU benchmark's code paths, on the CPU with tiny sizes (about a minute).

The table must hold every row, each measured (finite, positive tokens/s and ms/step, a ratio to transformers),
every compiled implementation must really have compiled (dynamo graphs >= 1; the beam rows of transformers
excepted, since its beam search never compiles), and every output must equal transformers' (ids for decoding,
the first step's loss for training). LLMBOOK_NANOGPT=/path/to/nanoGPT/model.py adds the nanoGPT rows.
"""
import math, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NANOGPT = os.environ.get("LLMBOOK_NANOGPT")
DECODE = ["transformers generate", "transformers static cache + compile", "llmbook generate",
          "llmbook static_cache + compile"]
TRAIN = ["transformers loop, eager", "llmbook Trainer", "transformers loop, compiled",
         "llmbook Trainer, compile=True", "llmbook Trainer, compile=True, fused_loss=True"]

def smoke(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bench/bench_gpu.py", "--smoke", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)

def table(out: str) -> list[dict]:
    "The Markdown table's rows as dicts keyed by its header."
    lines = [l for l in out.splitlines() if l.startswith("|")]
    cells = lambda l: [c.strip() for c in l.strip("|").split("|")]
    header = cells(lines[0])
    return [dict(zip(header, cells(l))) for l in lines[2:]]

def expected_rows() -> list[tuple[str, str]]:
    nano = ["nanoGPT generate (no KV cache)"] if NANOGPT else []
    rows = [("greedy, batch 1", n) for n in DECODE + nano] + [("beam-4, batch 1", n) for n in DECODE]
    rows += [("greedy, batch 4", n) for n in DECODE + nano]
    eager, compiled, ladder = TRAIN[:2], TRAIN[2:4], TRAIN[4:]
    if NANOGPT: eager, compiled = eager + ["nanoGPT loop, eager"], compiled + ["nanoGPT loop, compiled"]
    return rows + [("train B=4 T=32", n) for n in eager + compiled + ladder]

@pytest.fixture(scope="module")
def run():
    r = smoke(*(["--nanogpt", NANOGPT] if NANOGPT else []))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r.stdout

def test_every_row_measured(run):
    rows = table(run)
    assert [(r["row"], r["implementation"]) for r in rows] == expected_rows()
    for r in rows:
        what = f"{r['row']}: {r['implementation']}"
        assert r["tokens/s"] != "failed", f"{what} failed: {r['same as transformers']}"
        tokens, ms = float(r["tokens/s"].replace(",", "")), float(r["ms/step"])
        ratio = float(r["x transformers"].rstrip("x"))
        assert all(math.isfinite(v) and v > 0 for v in (tokens, ms, ratio)), what
        if r["same as transformers"] == "reference": assert ratio == 1.0, what
    assert "skipped: none" in run and "elapsed: " in run

def test_compiled_rows_compiled(run):
    for r in table(run):
        compiled = "compile" in r["implementation"]
        hf_beams = r["row"].startswith("beam") and r["implementation"].startswith("transformers")
        graphs = int(r["graphs"])
        what = f"{r['row']}: {r['implementation']}: {graphs} graphs"
        assert graphs >= 1 if compiled and not hf_beams else graphs == 0, what

def test_same_outputs_as_transformers(run):
    for r in table(run):
        same = r["same as transformers"]
        what = f"{r['row']}: {r['implementation']}: {same}"
        if r["implementation"] in ("transformers generate", "transformers loop, eager"): assert same == "reference", what
        else: assert same.startswith("yes"), what

def test_budget_skips_and_says_so():
    r = smoke("--budget", "0", "--skip-training", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert table(r.stdout) == []
    skipped = r.stdout.split("skipped: ")[1]
    assert "greedy, batch 1: transformers generate" in skipped
    assert "greedy, batch 4: llmbook generate" in skipped

@pytest.fixture
def bench_gpu():
    "The script as a module (bench/ is not a package)."
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_gpu
        yield bench_gpu
    finally: sys.path.remove(str(ROOT / "bench"))

@pytest.mark.parametrize("args, message", [
    (["--smoke", "--new-tokens", "0"], "--new-tokens must be at least 1, got 0"),
    (["--smoke", "--new-tokens", "60"], "--new-tokens 60 + a 8-token prompt exceed the context of 64 tokens"),
    (["--smoke", "--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--smoke", "--budget", "-1"], "--budget must be >= 0 seconds, got -1.0"),
    (["--smoke", "--threads", "0"], "--threads 0: only with --smoke, and at least 1"),
    (["--threads", "2"], "--threads 2: only with --smoke")])
def test_bad_arguments_refused(bench_gpu, capsys, args, message):
    with pytest.raises(SystemExit) as e: bench_gpu.main(args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err

def test_nanogpt_path_checked(bench_gpu, tmp_path):
    path = tmp_path / "model.py"
    with pytest.raises(FileNotFoundError, match="no such file"): bench_gpu.load_nanogpt(str(path))
    path.write_text("class GPT: pass\n")
    with pytest.raises(ImportError, match="has no GPTConfig"): bench_gpu.load_nanogpt(str(path))
