"""Regenerate the README's picture, `nbs/images/tokenizer_explorer.png`: the tokens chapter's explorer widget as a
learner sees it in JupyterLab (Chromium via Playwright, the harness of tests/test_browser.py), after typing a
sentence and picking the BPE tokenizer. Run it when the tokens chapter or its widget changes:

    python .ci/readme_image.py

Not run by CI: a screenshot differs by a few pixels from machine to machine, and CI must leave the tree unchanged.
nbs/index.ipynb shows it with `![...](images/tokenizer_explorer.png)`; .ci/readme.py rewrites the link for README.md.
"""
import re, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import labdriver  # noqa: E402

OUT = ROOT / "nbs" / "images" / "tokenizer_explorer.png"
TEXT = "A language model never reads text: it reads token ids. Tokenizers aren't magic, just 12345 merges!"

def main():
    from playwright.sync_api import sync_playwright
    with labdriver.JupyterLab() as lab, sync_playwright() as pw:
        browser = labdriver.launch_browser(pw)
        page = labdriver.ChapterPage(browser, lab, "02_tokens", viewport=(1100, 900)).open()
        run = page.run_all(600)
        assert run.finished and not run.errors, f"02_tokens did not run cleanly: {run.errors or run.running}"
        cell = page.cell(page.find_cell("explorer = TokenizerExplorer("))
        widget = cell.locator(".jp-Cell-outputWrapper .jupyter-widgets").first
        widget.scroll_into_view_if_needed()
        select = widget.locator(".widget-dropdown select")
        bpe = [o for o in select.locator("option").all_inner_texts() if re.match(r"BPE\s\d+$", o.replace("\xa0", " "))]
        select.select_option(label=bpe[-1])  # the largest BPE vocabulary
        box = widget.locator("textarea")
        box.click(); page.page.keyboard.press("Control+a"); box.press_sequentially(TEXT, delay=5)
        page.wait(lambda s: s["kernel"] == "idle", 60, "the explorer to redraw")
        page.page.wait_for_function("t => [...document.querySelectorAll('.widget-html-content')].some(e => e.innerText.includes(t))",
                                    arg="characters", timeout=30_000)
        page.page.mouse.click(5, 5)  # move focus off the text box (no caret or focus ring in the picture)
        with tempfile.TemporaryDirectory() as tmp:
            shot = page.screenshot(Path(tmp) / "shot.png", widget)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_bytes(shot.read_bytes())
        page.close()
        browser.close()
    print(f"wrote {OUT.relative_to(ROOT)}")

if __name__ == "__main__":
    main()
