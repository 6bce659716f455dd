"""Generate README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which we do not have).

`python .ci/readme.py` writes README.md; `python .ci/readme.py --check` exits 1 when it is out of date.
Cells marked `#| hide` are left out, `#|` directive lines are dropped, text outputs are kept, and links
to chapters (`00_core.ipynb`) and images (`images/x.png`, e.g. written by `.ci/readme_image.py`) are made
relative to the repository root.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _directives(src: str) -> set:
    return {m.group(1) for m in re.finditer(r"^#\|\s*([\w-]+)", src, re.M)}

def render(nb_path=ROOT / "nbs" / "index.ipynb") -> str:
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if "hide" in _directives(src): continue
        if cell["cell_type"] == "markdown":
            parts.append(re.sub(r"\]\((\d\d_[\w-]+\.ipynb|images/[^)\s]+)\)", r"](nbs/\1)", src.strip()))
        elif cell["cell_type"] == "code":
            code = "\n".join(l for l in src.splitlines() if not l.startswith("#|")).strip()
            if code: parts.append(f"```python\n{code}\n```")
            for out in cell.get("outputs", []):
                text = out.get("text") or out.get("data", {}).get("text/plain")
                if text: parts.append("```\n" + "".join(text).rstrip() + "\n```")
    return "<!-- generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file -->\n\n" + \
           "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    readme = ROOT / "README.md"
    text = render()
    if "--check" in sys.argv:
        ok = readme.exists() and readme.read_text(encoding="utf-8") == text
        print("README.md is in sync with nbs/index.ipynb" if ok else
              "README.md differs from nbs/index.ipynb: run `python .ci/readme.py`")
        sys.exit(0 if ok else 1)
    readme.write_text(text, encoding="utf-8")
