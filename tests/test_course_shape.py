"""What every chapter promises a learner, checked on the notebooks' text (fast, no kernel):
- at its top, an italic line saying roughly how long it runs on a laptop CPU and whether anything wants a GPU;
- at its end, an `## Exercises` section with 2 to 4 numbered exercises, followed by hidden (`#| hide`)
  cells that check the solutions, so they run under nbdev_test and never rot.
How long chapters really take in JupyterLab is measured by tests/test_browser.py and bench/bench_chapters.py."""
import json, re
import pytest
from conftest import ROOT

CHAPTERS = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
TEST_CALL = re.compile(r"\b(test_eq|test_ne|test_close|test_fail|test_is|assert)\b")

def cells(nb): return [(c["cell_type"], "".join(c["source"])) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]]

@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_says_how_long_and_whether_it_wants_a_gpu(nb):
    top = [src for kind, src in cells(nb) if kind == "markdown"][:3]
    lines = [p.strip() for src in top for p in src.split("\n\n") if re.fullmatch(r"\*[^*].*[^*]\*", p.strip(), re.S)]
    assert any(re.search(r"second|minute|hour", l) and "GPU" in l for l in lines), (
        f"{nb.name}: near the top, an italic line must say how long the chapter takes on a laptop CPU and whether "
        f"anything in it wants a GPU, e.g. *Runs in about a minute on a laptop CPU; no GPU needed.* Found: {lines}")

@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_ends_with_exercises_and_checked_solutions(nb):
    cs = cells(nb)
    heads = [i for i, (kind, src) in enumerate(cs) if kind == "markdown" and re.search(r"^#+\s+Exercises", src, re.M)]
    assert heads, f"{nb.name}: no `## Exercises` section"
    i = heads[-1]
    n = len(re.findall(r"^\d+\.\s", cs[i][1], re.M))
    assert 2 <= n <= 4, f"{nb.name}: the Exercises section has {n} numbered exercises; the course gives 2 to 4"
    checks = [src for kind, src in cs[i + 1:] if kind == "code" and re.match(r"#\|\s*hide", src) and TEST_CALL.search(src)]
    assert checks, f"{nb.name}: after the exercises, no hidden (`#| hide`) cell checks a solution (test_eq/assert)"
