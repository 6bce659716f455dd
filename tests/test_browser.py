"""The course as a learner meets it: every chapter in JupyterLab, in a real browser (Chromium, via Playwright).

For each chapter (`nbs/NN_*.ipynb`, whatever exists now) on a temporary copy of `nbs/`: open it, click
Run > Run All Cells, wait (at most `LLMBOOK_CHAPTER_LIMIT` seconds, default 300), and check that no cell
shows an error and every widget rendered.

By default the kernels run with `IN_TEST=1`, the chapters' tiny settings (as under `nbdev_test`, whose
skipped cells, `#| slow` and `#| cuda`, are left out of the copy too), so the
whole course takes a few minutes and the test suite stays quick; everything else (JupyterLab, the
browser, the widgets, the clicks) is what a learner gets. `LLMBOOK_BROWSER_FULL=1` runs the chapters
with a learner's default settings instead, and then the limit checks the course's promise of under 5
minutes per chapter on a 2-core CPU (`bench/bench_chapters.py` measures the same without a browser); `.ci/run`
runs this mode, so every chapter's `if not QUICK:` claims are checked in CI. Then play with each widget as a learner would (the `WIDGETS` table below) and check that what
it shows changed. Screenshots go to `test-reports/screenshots/`, the run-all time of each chapter to
`test-reports/chapter-times.md` (also printed at the end of the pytest run), JupyterLab's log to
`test-reports/jupyterlab.log`.

    pytest tests/test_browser.py                                  # every chapter, tiny settings
    LLMBOOK_BROWSER_FULL=1 pytest tests/test_browser.py           # every chapter as a learner runs it
    LLMBOOK_CHAPTERS="02_tokens 03_embeddings" pytest tests/test_browser.py   # a few
    pytest tests -m "not browser"                                 # everything else

Needs Debian's Chromium and Playwright (`.ci/run` installs both). Without them the test is skipped on a
laptop and fails in CI (`CI` set), saying what to install.

A chapter that shows a widget must have an entry in `WIDGETS`, or the test fails and says so (progress
bars excepted). A search box, say, would be
    "13_finetuning": {"search = SearchBox(": [Act("type", "query", "open a file", "text", r"open")]},
"""
from __future__ import annotations
import hashlib, os, re, time
from dataclasses import dataclass
from pathlib import Path
import pytest
from conftest import ROOT
import labdriver

pytestmark = pytest.mark.browser

REPORTS = ROOT / "test-reports"
SHOTS = REPORTS / "screenshots"
LIMIT = float(os.environ.get("LLMBOOK_CHAPTER_LIMIT", 300))
FULL = os.environ.get("LLMBOOK_BROWSER_FULL", "") not in ("", "0")  # a learner's settings, not IN_TEST
CHAPTERS = [c for c in labdriver.chapters() if not os.environ.get("LLMBOOK_CHAPTERS") or c in os.environ["LLMBOOK_CHAPTERS"].split()]

@dataclass
class Act:
    "One thing a learner does to a widget, and what must change on screen because of it."
    do: str                  # "type" into a text box, "choose" in a dropdown, "slide" a slider, "click" a button or a label
    control: str | re.Pattern  # the control's label as the learner reads it ("text", "layer"); for "click", the button's text
    value: object = None     # the text to type, the option to choose, where to drop the slider (0..1 of its track)
    changes: str = "image"   # what must differ afterwards: "image" (a plot) or "text" (rendered HTML or printed text)
    shows: str | None = None # a pattern the widget's rendered text must match afterwards

# chapter -> {a line of the cell that displays the widget: what the learner does to it}. Chapters that
# do not exist yet are simply not run. The cells after each widget set some values in code (the
# chapters test their widgets without a browser), so these start from where those cells left them.
WIDGETS: dict[str, dict[str, list[Act]]] = {
    "02_tokens": {"explorer = TokenizerExplorer(": [
        Act("choose", "tokenizer", "characters", "text", r"\b19 tokens\b"),          # "The quick brown fox": one token a character
        Act("type", "text", "Hello, learner! 12345", "text", r"\b21 tokens, 21 characters\b"),
        Act("choose", "tokenizer", "BPE 300", "text", r"\b(1\d|\d) tokens, 21 characters\b"),   # merges: fewer tokens
        Act("choose", "tokenizer", re.compile(r"^HF fast path"), "text", r"\b(1\d|\d) tokens, 21 characters\b"),
    ]},
    "03_embeddings": {"w = rope_explorer()": [
        Act("slide", "position", 0.75, "image"),
        Act("slide", "theta", 0.2, "image"),
    ]},
    "04_attention": {"viewer = attention_viewer(maps, [": [
        Act("choose", "layer", "0", "image"),
        Act("choose", "head", "1", "image"),
    ]},
    "06_decoder": {"viewer = attention_viewer(maps, list(text))": [
        Act("choose", "layer", "1", "image"),
        Act("choose", "head", "2", "image"),
    ]},
    "08_seq2seq": {"viewer = attention_viewer(maps, list(t_text)": [
        Act("choose", "kind", "cross", "image"),
        Act("choose", "layer", "0", "image"),
        Act("choose", "head", "1", "image"),
    ]},
    "12_decoding": {
        "explorer = BeamTreeExplorer(": [
            Act("slide", "num_beams", 0.0, "image", r"hypotheses, best first"),   # 5 beams -> 2: a smaller tree
            Act("slide", "new tokens", 0.6, "text", r"hypotheses, best first"),   # longer hypotheses
        ],
        "ex = NextTokenExplorer(": [
            Act("click", re.compile(r"\d+%$"), None, "text"),   # click the most likely next token: it joins the text
            Act("slide", "top_p", 0.3, "image"),                  # the nucleus shrinks: bars drop to zero
            Act("click", "sample one", None, "text"),
            Act("click", "undo", None, "text"),
        ],
    },
    "14_encoder_tasks": {"search = SearchBox(search_index,": [
        Act("type", "query", "A for loop iterates over the items of a sequence", "text", r"score -?\d\.\d{3}"),
    ]},
    "15_chat": {"chat = ChatWidget(model, chat_tok)": [
        Act("type", "message", "max: 3 8 1 2", "text", r"<\|user\|>max: 3 8 1 2<\|end\|><\|assistant\|>"),  # what the model will read
        Act("click", "send", None, "text", r"assistant: 8(\s|$)" if FULL else r"assistant: "),  # the reply joins the conversation
                                                  # (right only with the learner's settings: IN_TEST trains for seconds)
    ]},
    "16_translation": {"box = TryIt(fine_tuned, tok)": [
        Act("choose", "task", "translate", "text", r"greedy"),
        Act("type", "text", "May 5, 1990", "text", r"1990" if FULL else r"greedy"),  # a one-line box: decodes on Enter
    ]},
}

_RUNS: dict[str, labdriver.ChapterRun] = {}

@pytest.fixture(scope="module")
def lab_browser(pytestconfig):
    try: labdriver.chromium_path()
    except labdriver.BrowserMissing as e:
        if os.environ.get("CI"): pytest.fail(f"the browser test cannot run in CI: {e}", pytrace=False)
        pytest.skip(str(e))
    from playwright.sync_api import sync_playwright
    with labdriver.JupyterLab(keep_log=REPORTS / "jupyterlab.log", quick=not FULL) as lab, sync_playwright() as pw:
        browser = labdriver.launch_browser(pw)
        try: yield lab, browser
        finally: browser.close()
    if _RUNS:
        table = timing_table(_RUNS)
        REPORTS.mkdir(exist_ok=True)
        (REPORTS / "chapter-times.md").write_text(table)
        pytestconfig._llmbook_reports = getattr(pytestconfig, "_llmbook_reports", []) + \
            [f"chapter run-all times in JupyterLab ({'default' if FULL else 'IN_TEST'} settings, limit {LIMIT:.0f} s), also in test-reports/chapter-times.md; "
             f"screenshots in {SHOTS.relative_to(ROOT)}/\n{table}"]

def timing_table(runs: dict) -> str:
    rows = ["| chapter | run all (s) | result | slowest cells (s) |", "|---|---:|---|---|"]
    for name, r in runs.items():
        result = "errors" if r.errors else "ok" if r.finished else f"over {LIMIT:.0f} s, stopped in {r.running}"
        slow = "; ".join(f"cell {c.index} `{c.first_line[:40]}` {c.seconds:.1f}" for c in r.slowest(2) if c.seconds >= 1)
        rows.append(f"| {name} | {r.seconds:.1f} | {result} | {slow} |")
    return "\n".join(rows) + "\n"

@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_in_jupyterlab(chapter, lab_browser):
    lab, browser = lab_browser
    page = labdriver.ChapterPage(browser, lab, chapter).open()
    try:
        run = page.run_all(LIMIT)
        _RUNS[chapter] = run
        page.screenshot(SHOTS / f"{chapter}.png")
        slowest = ", ".join(f"cell {c.index} `{c.first_line}` {c.seconds:.0f} s" for c in run.slowest(3))
        assert run.finished, (f"{chapter} did not finish Run All Cells within {LIMIT:.0f} s on this machine (the course "
                              f"promises under 5 minutes on a 2-core CPU); still running: {run.running or '?'}; slowest "
                              f"cells so far: {slowest}")
        assert not run.errors, "\n\n".join(f"{chapter}: cell {i} raised {ename}: {evalue}\n{tb[-2000:]}"
                                           for i, ename, evalue, tb in run.errors)
        widgets = WIDGETS.get(chapter, {})
        state = page.state()
        for i in run.widget_cells:
            src = state["cells"][i]["source"]
            if not check_rendered(page, chapter, i): continue  # the code closed it (e.g. a finished progress bar)
            if is_progress_bar(page, i): continue   # tqdm's bars (training loops, transformers' save/load): nothing to play with
            assert any(marker in src for marker in widgets), (
                f"{chapter}: cell {i} (`{labdriver._first_line(src)}`) shows a widget that the browser test does not "
                f"exercise: add an entry to WIDGETS in tests/test_browser.py (how a learner uses it, what must change)")
        for marker, acts in widgets.items():
            exercise(page, chapter, marker, acts)
    finally:
        page.close()
        lab.shutdown_kernels()

def check_rendered(page, chapter: str, index: int) -> bool:
    "The widget in cell `index` is on screen with content (not 'Loading widget...', not an error); False if it was closed."
    out = page.cell(index).locator(".jp-Cell-outputWrapper")
    out.scroll_into_view_if_needed()
    text = out.inner_text()
    for bad in ("Loading widget", "Error displaying widget", "Error rendering", "Failed to load", "model not found"):
        assert bad not in text, f"{chapter}: the widget in cell {index} shows {bad!r}: {text[:300]!r}"
    if out.locator(".jupyter-widgets").count() == 0: return False
    widget = out.locator(".jupyter-widgets").first
    widget.wait_for(state="visible", timeout=30_000)
    box = widget.bounding_box()
    assert box and box["height"] > 20 and box["width"] > 100, f"{chapter}: the widget in cell {index} is empty ({box})"
    return True

def is_progress_bar(page, index: int) -> bool:
    "The widgets in cell `index` are only progress bars (no menu, box, slider or button)."
    return page.cell(index).locator(".jp-Cell-outputWrapper").evaluate("""el =>
        el.querySelectorAll('.widget-hprogress, .widget-vprogress').length > 0 &&
        el.querySelectorAll('select, input, textarea, button, .widget-slider').length === 0""")

_SNAPSHOT_JS = """el => ({
  text: [...el.querySelectorAll('.widget-html-content, .widget-output, .widget-htmlmath-content')].map(e => e.innerText).join('\\n'),
  images: [...el.querySelectorAll('img')].map(i => i.src),
})"""

def snapshot(out) -> dict:
    s = out.evaluate(_SNAPSHOT_JS)
    return {"text": s["text"], "image": [hashlib.sha1(src.encode()).hexdigest() for src in s["images"]]}

def _slug(text: str) -> str: return re.sub(r"\W+", "-", text).strip("-")[:40]

def control(out, act: Act):
    "The control a learner would look for: the widget control whose label reads `act.control`."
    kind = {"type": ".widget-textarea, .widget-text", "choose": ".widget-dropdown", "slide": ".widget-slider"}[act.do]
    label = out.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(act.control)}$"))
    found = out.locator(kind).filter(has=label)
    assert found.count() == 1, f"expected one {act.do} control labelled {act.control!r}, found {found.count()}"
    return found

def shown_value(out, act: Act):
    "What the control shows: the text in the box, the chosen option, the slider's readout."
    if act.do == "type": return control(out, act).locator("textarea, input").first.input_value()
    if act.do == "choose":
        return control(out, act).locator("select").evaluate("s => s.options[s.selectedIndex] && s.options[s.selectedIndex].text")
    if act.do == "slide": return control(out, act).locator(".widget-readout").first.inner_text()
    return None

def perform(page, out, act: Act):
    if act.do == "type":
        box = control(out, act).locator("textarea, input").first
        box.click(); page.page.keyboard.press("Control+a")
        box.press_sequentially(str(act.value), delay=15)
        if box.evaluate("e => e.tagName") == "INPUT": box.press("Enter")  # a one-line box (a search) submits on Enter
    elif act.do == "choose":
        select = control(out, act).locator("select")
        options = select.locator("option").all_inner_texts()
        plain = lambda o: o.replace("\xa0", " ")  # ipywidgets shows spaces in options as non-breaking spaces
        want = next((o for o in options if (act.value.search(plain(o)) if isinstance(act.value, re.Pattern) else plain(o) == act.value)), None)
        assert want is not None, f"no option {act.value!r} in the {act.control!r} menu: {options}"
        select.select_option(label=want)
    elif act.do == "slide":
        ctrl = control(out, act)
        handle, track = ctrl.locator(".noUi-handle").first, ctrl.locator(".noUi-target, .slider").first
        h, t = handle.bounding_box(), track.bounding_box()
        page.page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
        page.page.mouse.down()
        page.page.mouse.move(t["x"] + float(act.value) * t["width"], h["y"] + h["height"] / 2, steps=8)
        page.page.mouse.up()
    elif act.do == "click":  # a button, by its text (a pattern: the first enabled button whose text matches)
        pattern = act.control if isinstance(act.control, re.Pattern) else re.compile(f"^{re.escape(act.control)}$")
        buttons = out.locator("button:enabled").filter(has_text=pattern)
        assert buttons.count(), f"no enabled button matching {pattern.pattern!r}: {out.locator('button').all_inner_texts()}"
        buttons.first.click()
    else: raise ValueError(f"unknown action {act.do!r}")

def exercise(page, chapter: str, marker: str, acts: list[Act]):
    "Do each act to the widget displayed by the cell containing `marker`; after each, what it shows must change."
    index = page.find_cell(marker)
    assert index >= 0, f"WIDGETS['{chapter}'] names a cell containing {marker!r}, but {chapter} has none: update the table"
    out = page.cell(index).locator(".jp-Cell-outputWrapper")
    out.scroll_into_view_if_needed()
    out.locator(".jupyter-widgets").first.wait_for(state="visible", timeout=30_000)
    name = f"{chapter}--{_slug(marker)}"
    page.screenshot(SHOTS / f"{name}-0-before.png", out)
    for n, act in enumerate(acts, 1):
        before, shown_before = snapshot(out), shown_value(out, act)
        perform(page, out, act)
        shown = shown_value(out, act)
        assert shown != shown_before or act.do == "click", \
            f"{chapter}: {act.do} {act.control!r} -> {act.value!r}: the control still shows {shown_before!r}"
        deadline, after = time.monotonic() + 60, before
        while time.monotonic() < deadline:
            time.sleep(0.5)
            after = snapshot(out)
            if after[act.changes] != before[act.changes] and after[act.changes] and page.state()["kernel"] == "idle":
                time.sleep(0.5); after = snapshot(out)  # let the redraw settle
                break
        assert after[act.changes] != before[act.changes], \
            f"{chapter}: {act.do} {act.control!r} -> {act.value!r} did not change the widget's {act.changes} within 60 s"
        assert after[act.changes], f"{chapter}: after {act.do} {act.control!r} the widget shows no {act.changes}"
        if act.shows:
            assert re.search(act.shows, after["text"]), \
                f"{chapter}: after {act.do} {act.control!r} -> {act.value!r} the widget shows {after['text'][:300]!r}, expected /{act.shows}/"
        page.screenshot(SHOTS / f"{name}-{n}-{act.do}-{_slug(act.control if isinstance(act.control, str) else 'button')}.png", out)

OUT_OF_ORDER = ("03_embeddings", "w = rope_explorer()")  # a quick chapter, and a cell that needs the cells above it

def test_cell_run_out_of_order_says_what_to_do(lab_browser):
    "A learner runs the chapter's first cells, then jumps to a later one: the error ends with what to do."
    chapter, marker = OUT_OF_ORDER
    if chapter not in CHAPTERS: pytest.skip(f"{chapter} is not among the chapters run")
    lab, browser = lab_browser
    page = labdriver.ChapterPage(browser, lab, chapter).open()
    try:
        first, later = page.find_cell("chapter_setup()"), page.find_cell(marker)
        assert 0 <= first < later, f"{chapter} has no setup cell (chapter_setup()) before `{marker}`"
        for i in (first, later):
            page.cell(i).locator(".jp-InputPrompt").click()   # select the cell, as a learner clicks beside it
            page.page.keyboard.press("Shift+Enter")
            page.wait_idle()
        errors = page.state()["cells"][later]["errors"]
        assert errors and errors[0]["ename"] == "NameError", f"expected a NameError in `{marker}`, got {errors}"
        shown = page.cell(later).locator(".jp-OutputArea").inner_text()
        assert "Hint:" in shown and "Run All Above Selected Cell" in shown, f"no hint after the NameError: {shown[-600:]!r}"
        page.screenshot(SHOTS / f"{chapter}--out-of-order-hint.png", page.cell(later))
    finally:
        page.close()
        lab.shutdown_kernels()
