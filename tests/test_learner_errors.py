"""Errors a learner meets say what to do: a chapter opened without the package installed, a cell run
before the cells it needs. Every chapter after 00_core starts (first code cell after `#| default_exp`)
with the same hidden setup cell: it turns `No module named 'llmbook'` into the pip command for the
kernel's own Python, and calls `llmbook.core.chapter_setup()`, which appends a hint to NameErrors and
to llmbook ImportErrors. (The browser test checks the same in JupyterLab.)"""
import json, re, subprocess, sys
import pytest
from conftest import ROOT

CHAPTERS = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb") if p.stem != "00_core")

def code_cells(nb): return ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]

def setup_cell(nb) -> str:
    cells = code_cells(nb)
    assert re.search(r"^#\|\s*default_exp", cells[0], re.M), f"{nb.name}: the first code cell is not `#| default_exp`"
    return cells[1]

@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_starts_with_the_setup_cell(nb):
    cell = setup_cell(nb)
    assert "chapter_setup()" in cell and "pip install -e ." in cell and re.match(r"#\|\s*hide", cell), (
        f"{nb.name}: the first code cell after `#| default_exp` must be the hidden setup cell (copy it from "
        f"nbs/01_data.ipynb), so that a learner without the package is told how to install it")

def test_setup_cell_without_the_package_says_how_to_install(tmp_path):
    "Run the setup cell in a Python that cannot import llmbook (no site-packages): the error names the pip command."
    cells = {setup_cell(nb) for nb in CHAPTERS if "chapter_setup()" in setup_cell(nb)}
    assert cells, "no chapter has the setup cell"
    for cell in cells:
        r = subprocess.run([sys.executable, "-S", "-c", cell], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert f"{sys.executable} -m pip install -e ." in r.stderr and "No module named 'llmbook'" in r.stderr, r.stderr

def test_hints_in_ipython(capsys):
    "In IPython (what a Jupyter kernel runs), after `chapter_setup()` a cell run out of order gets a hint."
    from IPython.core.interactiveshell import InteractiveShell
    from llmbook.core import chapter_setup
    shell = InteractiveShell.instance()
    try:
        chapter_setup()
        shell.run_cell("tok.encode('hello')")
        out = capsys.readouterr().out
        assert "NameError" in out and "`tok` is not defined" in out and "Run > Run All Above Selected Cell" in out, out
        shell.run_cell("from llmbook.core import a_newer_function")
        out = capsys.readouterr().out
        assert "ImportError" in out and "-m pip install -e ." in out, out
        shell.run_cell("1 / 0")  # other errors: the usual traceback, no hint
        out = capsys.readouterr().out
        assert "ZeroDivisionError" in out and "Hint" not in out, out
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()
