"""Code-shape statistics of the package and its notebooks. Prints tables.

(a) the longest functions/methods in `llmbook/*.py` (by `ast`, from the `def` line to the last line, docstring
included; `_modidx.py` skipped), (b) the largest exported cells of `nbs/*.ipynb` (source starting with `#| export`,
`#| exporti` included), (c) a summary: median exported cell length, mean line length of the package's code,
share of lines over 100 columns, statements joined by `;` (counted on `tokenize` OP tokens, so none inside strings
or comments), and one-line compound statements (`if x: return y`, found with `ast`).

    python bench/code_stats.py [--root PATH] [--top 15]
"""
import argparse, ast, io, json, re, statistics, tokenize
from pathlib import Path

EXPORT = re.compile(r"^#\|\s*export")

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())

def package_files(root):
    return sorted(p for p in (root / "llmbook").glob("*.py") if p.name != "_modidx.py")

def functions(path):
    "(lines, qualified name, line number) of every function and method, nested ones included."
    tree, out = ast.parse(path.read_text()), []
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((child.end_lineno - child.lineno + 1, prefix + child.name, child.lineno))
                walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef): walk(child, prefix + child.name + ".")
            else: walk(child, prefix)
    walk(tree, "")
    return out

def exported_cells(root):
    "(lines, notebook, first line after the directives) of every exported code cell."
    out = []
    for nb in sorted((root / "nbs").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code": continue
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if not EXPORT.match(src.lstrip()): continue
            lines = src.rstrip("\n").split("\n")
            first = next((l for l in lines if l.strip() and not l.startswith("#|")), "")
            out.append((len(lines), nb.name, first.strip()))
    return out

def semicolons(src):
    "Statement separators `;` (OP tokens: never inside strings or comments)."
    return sum(t.type == tokenize.OP and t.string == ";" for t in tokenize.generate_tokens(io.StringIO(src).readline))

def one_line_compounds(src):
    "Clauses of compound statements (if/elif/else/for/while/with/try/except/def/class) whose body starts on the header's line."
    import bisect
    colons = [t.start for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type == tokenize.OP and t.string == ":"]
    n = 0
    for node in ast.walk(ast.parse(src)):
        bodies = [getattr(node, f, None) for f in ("body", "orelse", "finalbody")] if isinstance(node, ast.stmt) or isinstance(node, ast.excepthandler) else []
        for body in bodies:
            if not body or not isinstance(body, list): continue
            first = body[0]
            if isinstance(node, ast.If) and body is node.orelse and isinstance(first, ast.If) and first.col_offset == node.col_offset:
                continue  # an elif: counted as its own If
            i = bisect.bisect_left(colons, (first.lineno, first.col_offset)) - 1
            if i >= 0 and colons[i][0] == first.lineno: n += 1
    return n

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent), help="the repository (default: this one)")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    root = Path(args.root).resolve()
    print(f"root: {root}")

    files = package_files(root)
    funcs = [(n, f"{p.name}:{ln}", name) for p in files for n, name, ln in functions(p)]
    funcs.sort(key=lambda r: (-r[0], r[1]))
    table(f"(a) the {args.top} longest functions/methods in llmbook/*.py (lines, docstring included; of {len(funcs)})",
          ["lines", "where", "function"], [[n, w, name] for n, w, name in funcs[:args.top]])

    cells = exported_cells(root)
    cells_sorted = sorted(cells, key=lambda r: (-r[0], r[1]))
    table(f"(b) the {args.top} largest exported cells in nbs/*.ipynb (lines, directive included; of {len(cells)})",
          ["lines", "notebook", "first line"], [[n, nb, first[:90]] for n, nb, first in cells_sorted[:args.top]])

    code_lines, total_lines, semis, compounds = [], 0, 0, 0
    for p in files:
        src = p.read_text()
        lines = src.split("\n")
        if lines and lines[-1] == "": lines = lines[:-1]
        total_lines += len(lines)
        code_lines += [l for l in lines if l.strip() and not l.strip().startswith("#")]
        semis += semicolons(src)
        compounds += one_line_compounds(src)
    all_nonblank = [l for p in files for l in p.read_text().split("\n") if l.strip()]
    over = sum(len(l) > 100 for l in all_nonblank)
    flens = [n for n, _, _ in funcs]
    rows = [
        ["package files (llmbook/*.py, no _modidx)", len(files)],
        ["package lines (all)", total_lines],
        ["code lines (non-blank, not comment-only)", len(code_lines)],
        ["functions/methods", len(funcs)],
        ["median / mean function length (lines)", f"{statistics.median(flens):.1f} / {statistics.mean(flens):.1f}"],
        ["functions over 30 / 50 lines", f"{sum(n > 30 for n in flens)} / {sum(n > 50 for n in flens)}"],
        ["exported cells", len(cells)],
        ["median exported cell length (lines)", f"{statistics.median(n for n, _, _ in cells):.1f}"],
        ["mean exported cell length (lines)", f"{statistics.mean(n for n, _, _ in cells):.1f}"],
        ["mean line length of code (columns)", f"{statistics.mean(len(l) for l in code_lines):.1f}"],
        ["lines over 100 columns (of non-blank)", f"{over} ({100 * over / len(all_nonblank):.1f}%)"],
        ["max line length", max(len(l) for l in all_nonblank)],
        ["statements joined by ';' (tokenize)", semis],
        ["one-line compound statements (if x: y)", compounds],
    ]
    table("(c) summary", ["measure", "value"], rows)

if __name__ == "__main__":
    main()
