"""`llmbook site`: the course rendered to HTML pages that work offline (nbs/90_cli.ipynb, `build_site`).

Rendering all 21 notebooks takes about a minute on 2 cores, so the site here is built from the front page and
three chapters (the ones defining `Decoder`, `Trainer` and `generate`); that every notebook is listed in the
front page's contents is checked on `contents` over all of them, which renders nothing."""
import json, re, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT
from nbdev.doclinks import _nbpath2html  # nbdev's own naming of pages, the one _modidx.py uses
from llmbook import cli
from llmbook.cli import build_site, contents

NBS = ROOT / "nbs"
SOME = ["index.ipynb", "06_decoder.ipynb", "10_training.ipynb", "12_decoding.ipynb"]
LLMBOOK = str(Path(sys.executable).parent / "llmbook")

def cells(name): return json.loads((NBS / name).read_text(encoding="utf-8"))["cells"]
def heading(name): return next(m.group(1) for c in cells(name) if c["cell_type"] == "markdown"
                               for m in [re.search(r"^# (.+)$", "".join(c["source"]), re.M)] if m)
def page(name): return _nbpath2html(Path(name)).name
def shown_code_cells(name):
    "Code cells a reader should see, counted from the notebook: not hidden, not only a directive."
    sources = ["".join(c["source"]) for c in cells(name) if c["cell_type"] == "code"]
    return [s for s in sources
            if not re.match(r"#\|\s*hide", s) and re.sub(r"^#\|.*$", "", s, flags=re.M).strip()]
SPACE = r'(<span class="w">\s*</span>|\s)'  # how pygments writes the space after a keyword
CLASS = 'class</span>' + SPACE + '<span class="nc">{}<'  # `class Name` in a page's highlighted code
DEF = 'def</span>' + SPACE + '<span class="nf">{}<'  # `def name`
def cell_at(html, anchor):
    "The HTML of the cell an anchor sits on (up to the next cell)."
    at = html.index(f'<a id="{anchor}"></a>')
    end = html.find('<div class="jp-Cell ', html.index('<div class="jp-Cell ', at) + 1)
    return html[at:end]
def bars(html): return re.findall(r'<nav class="site[^"]*">(.*?)</nav>', html, re.S)
def neighbours(bar): return re.findall(r'<span class="(prev|next)">[^<]*<a href="([^"]+)">', bar)

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "_site"
    built = build_site(out, NBS, only=SOME)
    return out, built

def test_pages_exist_in_order(site):
    out, built = site
    test_pages = [page(n) for n in SOME]
    assert built["pages"] == test_pages + ["api.html"]
    for p in built["pages"]: assert (out / p).is_file(), p
    for n in SOME: assert f"<title>{heading(n)}</title>" in (out / page(n)).read_text()
    front = (out / "index.html").read_text()
    listed = re.findall(r'<ol class="contents">(.*?)</ol>', front, re.S)[0]
    expected = [(page(n), heading(n)) for n in SOME[1:]]
    assert re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', listed) == expected

def test_every_notebook_is_listed_in_order():
    names = sorted(p.name for p in NBS.glob("*.ipynb") if p.name != "index.ipynb")
    assert len(names) >= 20
    listing = contents({NBS / n: cells(n) for n in ["index.ipynb", *names]})
    assert re.findall(r'<li><a href="([^"]+)">', listing) == [page(n) for n in names]
    assert "(under half a minute)" in listing  # chapter 04: "*Runs in under half a minute on a laptop CPU"

def test_previous_and_next(site):
    out, built = site
    order = built["pages"][:-1]
    for i, p in enumerate(order):
        top, bottom = bars((out / p).read_text())
        expected = [("prev", order[i - 1])] if i > 0 else []
        expected += [("next", order[i + 1])] if i + 1 < len(order) else []
        assert neighbours(top) == neighbours(bottom) == expected, p
        assert 'href="index.html">Contents</a>' in top and 'href="api.html">API reference</a>' in top

def test_no_directive_and_no_hidden_cell(site):
    out, _ = site
    for n in SOME:
        html = (out / page(n)).read_text()
        assert "#| export" not in html and "#| hide" not in html and "default_exp" not in html, n
        assert '<span class="c1">#|' not in html, n  # a directive left in code is highlighted as a comment
        assert html.count('<div class="jp-Cell jp-CodeCell') == len(shown_code_cells(n)), n

def test_links_between_notebooks_become_pages(site):
    out, _ = site
    front = (out / "index.html").read_text()
    assert 'href="decoder.html"' in front and 'href="06_decoder.ipynb"' not in front  # the chapter map
    assert 'href="00_core.ipynb"' in front  # core.html is not in this small site: the link stays as it was

def test_pictures_are_embedded_and_nothing_comes_from_the_network(site):
    out, built = site
    images = 0
    for p in built["pages"]:
        html = (out / p).read_text()
        srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
        assert all(s.startswith("data:image/") for s in srcs), (p, [s[:60] for s in srcs])
        images += len(srcs)
        assert not re.search(r'<script[^>]*\ssrc="(https?:)?//', html), p
        assert not re.search(r'<link[^>]*\shref="(https?:)?//', html), p
        assert not re.search(r'@import\s+(url\()?["\']?(https?:)?//', html), p
    front = (out / "index.html").read_text()
    assert re.search(r'<img[^>]*src="data:image/png;base64,', front)  # the markdown picture from nbs/images
    assert images >= 4  # and the plots saved in the chapters' outputs

def test_api_reference(site):
    out, built = site
    api = (out / "api.html").read_text()
    for sym in ("llmbook.decoder.Decoder", "llmbook.training.Trainer", "llmbook.generation.generate"):
        assert f'id="{sym}"' in api, sym
    assert built["unplaced"] == []
    links = re.findall(r'Defined in <a href="([\w.]+)#([^"]+)">', api)
    assert len(links) == built["symbols"] == api.count('class="api-entry"') > 100
    pages = {p: (out / p).read_text() for p in built["pages"]}
    for p, anchor in links: assert f'<a id="{anchor}"></a>' in pages[p], (p, anchor)
    assert not re.search(r'id="llmbook\.\w+\.(_|\w+\._)', api)  # private names stay out
    # the anchor sits on the cell that defines the symbol
    for p, anchor, code in [("decoder.html", "llmbook.decoder.Decoder", CLASS.format("Decoder")),
                            ("decoding.html", "llmbook.generation.generate", DEF.format("generate"))]:
        assert re.search(code, cell_at(pages[p], anchor)), (p, anchor)
    decoder_forward = api[api.index('id="llmbook.decoder.Decoder.forward"'):][:3000]
    assert "<td><code>input_ids</code></td>" in decoder_forward  # a parameter row
    assert "(B, T) token ids" in decoder_forward  # with its docment

def test_one_style_sheet(site):
    "JupyterLab's CSS (about 260 KB) is written once, to style.css, instead of into the head of every page."
    out, built = site
    css = (out / "style.css").read_text()
    assert len(css) > 200_000 and ".jp-CodeCell" in css and "nav.site {" in css  # JupyterLab's and ours
    for p in built["pages"]:
        html = (out / p).read_text()
        head = html[:html.index("</head>")]
        assert len(head) < 2_000, (p, len(head))
        assert "<style" not in head, p
        assert re.findall(r"<link[^>]*>", head) == ['<link rel="stylesheet" href="style.css">'], p
    index = (out / "index.html").read_text()
    assert len(re.sub(r'src="data:[^"]*"', "", index)) < 60_000  # the front page without its picture

@pytest.fixture(scope="module")
def attention_site(tmp_path_factory):
    "The attention chapter, which defines a class `Attention` and a function `attention`, and has a formula."
    out = tmp_path_factory.mktemp("site") / "_site"
    return out, build_site(out, NBS, only=["04_attention.ipynb"])

def test_attention_and_Attention_link_to_their_own_cells(attention_site):
    out, built = attention_site
    api, page = (out / "api.html").read_text(), (out / "attention.html").read_text()
    assert built["unplaced"] == []
    found = {}
    for name in ("Attention", "attention"):
        entry = api[api.index(f'<div class="api-entry" id="llmbook.attention.{name}">'):]
        found[name] = re.search(r'Defined in <a href="([^"#]+)#([^"]+)">', entry).groups()
    assert found == {"Attention": ("attention.html", "llmbook.attention.Attention"),
                     "attention": ("attention.html", "llmbook.attention.attention")}
    assert re.search(CLASS.format("Attention"), cell_at(page, "llmbook.attention.Attention"))
    assert re.search(DEF.format("attention"), cell_at(page, "llmbook.attention.attention"))
    assert not re.search(CLASS.format("Attention"), cell_at(page, "llmbook.attention.attention"))

def test_formulas_are_mathml(attention_site):
    out, _ = attention_site
    page = (out / "attention.html").read_text()
    # the chapter's formula, $$\text{Attention}(Q, K, V) = \text{softmax}(...) V$$, drawn in MathML
    assert page.count("<math") == 1
    formula = page[page.index("<math"):page.index("</math>")]
    assert 'display="block"' in formula.split(">")[0]  # a formula on its own line
    assert "<mtext>softmax</mtext>" in formula and "<msqrt>" in formula and "<mfrac>" in formula
    assert "$$" not in page and r"\text{Attention}" not in page

def markdown_page(text):
    cell = {"cell_type": "markdown", "metadata": {}, "source": text, "id": "m"}
    return cli.render(cli.exporter(), [cell], "Math", NBS, cli.nav(None, None))

def test_dollars_in_code_stay_code():
    page = markdown_page("Squares: $x^2$. In a shell, `echo $HOME $x$`:\n\n```sh\necho $$ $HOME $y$\n```")
    assert page.count("<math") == 1 and "<msup><mi>x</mi><mn>2</mn></msup>" in page
    assert "<code>echo $HOME $x$</code>" in page  # a code span
    assert re.search(r'\$\$.*\$HOME.*\$y</span>\$', page)  # a code block, highlighted by pygments

def test_latex_environments_are_mathml():
    page = markdown_page("A matrix:\n\n\\begin{matrix} a & b \\\\ c & d \\end{matrix}\n\nand no more.")
    formula = page[page.index("<math"):page.index("</math>")]
    assert page.count("<math") == 1 and "begin{matrix}" not in page
    assert formula.count("<mtr>") == 2 and formula.count("<mtd>") == 4  # two rows of two

def test_without_latex2mathml_formulas_stay_as_source(monkeypatch):
    monkeypatch.setitem(sys.modules, "latex2mathml", None)  # `import latex2mathml...` now raises ImportError
    monkeypatch.setitem(sys.modules, "latex2mathml.converter", None)
    with pytest.warns(UserWarning, match=r"formulas stay as their \$\.\.\.\$ source: pip install latex2mathml"):
        page = markdown_page("Squares: $x^2$.")
    assert "<math" not in page and "Squares: $x^2$." in page

def test_the_checks_notice_a_hidden_cell_shown(tmp_path, monkeypatch):
    "Mutation: if hidden cells were kept, the count of code cells above would differ."
    monkeypatch.setattr(cli, "directives", lambda src: {})
    build_site(tmp_path, NBS, only=["06_decoder.ipynb"])
    html = (tmp_path / "decoder.html").read_text()
    assert html.count('<div class="jp-Cell jp-CodeCell') > len(shown_code_cells("06_decoder.ipynb"))

def test_command(tmp_path):
    r = subprocess.run([LLMBOOK, "site", "--only", "index.ipynb", "--out", str(tmp_path / "s")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote 2 pages")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["api.html", "index.html", "style.css"]
    r = subprocess.run([LLMBOOK, "site", "--nbs", str(tmp_path), "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and f"no notebooks in {tmp_path}" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([LLMBOOK, "site", "--only", "99_x.ipynb"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "['99_x.ipynb'] are not notebooks" in r.stderr
