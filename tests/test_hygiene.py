"""Notebook hygiene: the notebooks are clean, the library and README are in sync with them, and every
chapter has a title, a module and tests."""
import json, re, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT
import readme

NBS = sorted((ROOT / "nbs").glob("*.ipynb"))
CHAPTERS = [p for p in NBS if re.match(r"\d\d_", p.name)]
TEST_CALL = re.compile(r"\b(test_eq|test_ne|test_close|test_fail|test_is|assert)\b")

def _cells(path): return json.loads(path.read_text(encoding="utf-8"))["cells"]

def _names(src: str) -> str:
    "The cell's code names only, without strings and comments: 'assert' in a message or a comment is no test."
    import io, tokenize
    try: return " ".join(t.string for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type == tokenize.NAME)
    except (tokenize.TokenError, SyntaxError): return src  # e.g. a cell with IPython magics
def _src(cell): return "".join(cell["source"])

def test_chapters_exist():
    assert {"00_core.ipynb", "01_data.ipynb"} <= {p.name for p in CHAPTERS}

@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    "A copy of the project where nbdev_clean and nbdev_export have been run again."
    tmp = tmp_path_factory.mktemp("proj")
    for name in ("settings.ini", "setup.py", "README.md"): shutil.copy(ROOT / name, tmp / name)
    for d in ("nbs", "llmbook"): shutil.copytree(ROOT / d, tmp / d, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    bindir = Path(sys.executable).parent
    for cmd in ("nbdev_clean", "nbdev_export"):
        subprocess.run([str(bindir / cmd)], cwd=tmp, check=True, capture_output=True)
    return tmp

@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.name)
def test_notebook_clean(nb, regenerated):
    assert (regenerated / "nbs" / nb.name).read_text() == nb.read_text(), f"{nb.name} is not clean: run nbdev_clean"
    meta = json.loads(nb.read_text())["metadata"]
    assert "widgets" not in meta, f"{nb.name} has saved widget state: clear it (Widgets > Clear saved state)"

def test_library_in_sync(regenerated):
    new = {p.relative_to(regenerated / "llmbook") for p in (regenerated / "llmbook").rglob("*.py")}
    old = {p.relative_to(ROOT / "llmbook") for p in (ROOT / "llmbook").rglob("*.py")}
    assert new == old, f"modules differ: {sorted(map(str, new ^ old))}; run nbdev_export"
    for rel in new:
        assert (regenerated / "llmbook" / rel).read_text() == (ROOT / "llmbook" / rel).read_text(), \
            f"llmbook/{rel} is out of sync with its notebook: run nbdev_export"

def test_readme_in_sync():
    assert (ROOT / "README.md").read_text(encoding="utf-8") == readme.render(), \
        "README.md differs from nbs/index.ipynb: run `python .ci/readme.py`"

def test_readme_leaves_out_hidden_cells(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# T\n", "see [c](00_core.ipynb) ![w](images/w.png)"]},
                    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": ["#| hide\n", "secret = 1"]},
                    {"cell_type": "code", "metadata": {}, "execution_count": None, "source": ["print(2)"],
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": ["2\n"]}]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "index.ipynb").write_text(json.dumps(nb))
    out = readme.render(tmp_path / "index.ipynb")
    assert "secret" not in out and "```python\nprint(2)\n```\n\n```\n2\n```" in out
    assert "](nbs/00_core.ipynb)" in out and "![w](nbs/images/w.png)" in out

@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_title_module_and_tests(nb):
    cells = _cells(nb)
    md = [_src(c) for c in cells if c["cell_type"] == "markdown"]
    assert md and re.match(r"^# \S", md[0]), f"{nb.name}: the first markdown cell must be a '# Title'"
    code = [_src(c) for c in cells if c["cell_type"] == "code"]
    assert any(re.search(r"^#\|\s*default_exp\s+\w+", s, re.M) for s in code), f"{nb.name}: no default_exp"
    tests = [s for s in code if not re.search(r"^#\|\s*export", s, re.M) and TEST_CALL.search(_names(s))]
    assert tests, f"{nb.name}: no cell with a test"

def test_a_test_is_code_not_a_word():
    "The 'has tests' check counts test calls in code, not the word in a string or a comment."
    assert TEST_CALL.search(_names("x = 1\ntest_eq(x, 1)")) and TEST_CALL.search(_names("assert x, 'msg'"))
    assert not TEST_CALL.search(_names('print("assert that x")  # test_eq would go here'))

def test_every_chapter_in_readme_map():
    text = (ROOT / "README.md").read_text()
    for nb in CHAPTERS: assert f"(nbs/{nb.name})" in text, f"{nb.name} is missing from the chapter map"

def test_readme_images_exist():
    "Pictures in the README (from nbs/index.ipynb, e.g. written by .ci/readme_image.py) are committed files."
    for link in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (ROOT / "README.md").read_text()):
        if "://" not in link: assert (ROOT / link).is_file(), f"README.md shows {link}, which does not exist"

def _displays(src: str) -> bool:
    """Does Jupyter show a value for this cell? Its last statement is a bare expression, not a call
    (which may return None), and no `;` hides it."""
    import ast
    lines = [l for l in src.splitlines() if not l.lstrip().startswith(("#|", "%", "!"))]
    code = "\n".join(lines).rstrip()
    if not code or code.endswith(";"): return False
    try: body = ast.parse(code).body
    except SyntaxError: return False
    last = body[-1] if body else None
    silent = (ast.Call, ast.Await, ast.Constant)
    return isinstance(last, ast.Expr) and not isinstance(last.value, silent)

def _unshown(cells) -> list[str]:
    "Ids of visible code cells that display a value but were committed without an output."
    visible = [c for c in cells if c["cell_type"] == "code" and not _src(c).startswith("#| hide")]
    return [c.get("id", "?") for c in visible if _displays(_src(c)) and not c.get("outputs")]

@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.name)
def test_chapter_committed_executed(nb):
    "A committed notebook shows what a run shows: outputs, one for every cell ending in a value."
    cells = _cells(nb)
    assert any(c.get("outputs") for c in cells if c["cell_type"] == "code"), \
        f"{nb.name} has no outputs: run it top to bottom at default settings, commit it with them"
    missing = _unshown(cells)
    assert not missing, f"{nb.name}: cells {missing} end in a value but have no output: run it, commit it"

def test_committed_executed_notices_a_missing_output():
    "The check fails on a chapter whose outputs were cleared, and knows which cells show something."
    cells = _cells(ROOT / "nbs/06_decoder.ipynb")
    assert not _unshown(cells)
    cleared = [{**c, "outputs": []} if c["cell_type"] == "code" else c for c in cells]
    assert _unshown(cleared)
    assert _displays("x = 1\nx") and _displays("sizes[0]") and _displays("#| export\nmodel")
    assert not _displays("print(1)") and not _displays("plot(x);") and not _displays("x = 1")

# --- "Under the hood" parts: plumbing a learner may open, folded away from the main line ---------

HOOD = re.compile(r"#{2,6}\s+Under the hood\b")
FOLDED = "jp-MarkdownHeadingCollapsed"  # JupyterLab 4 hides the cells under a heading cell with this set

def _hoods(cells) -> list:
    "The markdown cells that open an 'Under the hood' part (the heading is the cell's first line)."
    return [c for c in cells if c["cell_type"] == "markdown" and HOOD.match(_src(c))]

@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_under_the_hood_parts_are_folded(nb):
    "Every 'Under the hood' heading opens folded and says, in its own cell (seen while folded), what it holds."
    for c in _hoods(_cells(nb)):
        assert c["metadata"].get(FOLDED) is True, f"{nb.name}: cell {c['id']} opens an 'Under the hood' part " \
            f"but is not folded: set its metadata {FOLDED!r} to true"
        assert len(_src(c).strip().splitlines()) > 1, f"{nb.name}: cell {c['id']} has a heading only: add " \
            "a sentence saying what the part holds and that the main line does not need it"

def test_tokens_chapter_folds_its_plumbing():
    "Chapter 02 folds away the fast trainer, the long-chunk encoders and the pattern rewriting for Oniguruma."
    titles = [_src(c).splitlines()[0] for c in _hoods(_cells(ROOT / "nbs/02_tokens.ipynb"))]
    assert len(titles) >= 3, titles
    for word in ("fast trainer", "long chunks", "Oniguruma"): assert any(word in t for t in titles), (word, titles)

def test_nbdev_clean_keeps_folded_headings(tmp_path):
    "nbdev_clean drops cell metadata that settings.ini does not allow: the folding key must be allowed."
    shutil.copy(ROOT / "settings.ini", tmp_path / "settings.ini")
    (tmp_path / "nbs").mkdir()
    cell = {"cell_type": "markdown", "id": "a1b2c3d4", "metadata": {FOLDED: True, "tags": ["stray"]},
            "source": ["### Under the hood: x\n", "\n", "*What it holds.*"]}
    path = tmp_path / "nbs" / "x.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    clean = Path(sys.executable).parent / "nbdev_clean"
    subprocess.run([str(clean), "--fname", str(path)], cwd=tmp_path, check=True, capture_output=True)
    assert json.loads(path.read_text())["cells"][0]["metadata"] == {FOLDED: True}  # kept; the stray tag is gone
