"""Drive the course the way a learner meets it: JupyterLab in Chromium, through Playwright.

Used by `tests/test_browser.py` (the browser test), `bench/bench_chapters.py` (run-all timing table)
and `.ci/readme_image.py` (the README's picture). It starts JupyterLab on 127.0.0.1 with a random
token on a *copy* of the chapters (the committed notebooks never see the outputs), opens a chapter,
clicks Run > Run All Cells, waits, and reads what the learner would see.

Requirements: Debian's Chromium (`apt-get install -y chromium`) and `pip install playwright` (in the
`dev` extra); no `playwright install` download. Actions go through the UI (menus, keyboard, mouse);
the JupyterLab app is exposed in the page (`--expose-app-in-browser`) only to *read* the notebook's
state (execution counts, outputs, per-cell timing) reliably.
"""
from __future__ import annotations
import json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
INSTALL_HINT = "install it with `apt-get install -y chromium` and `pip install playwright` (or `pip install -e '.[dev]'`)"

class BrowserMissing(RuntimeError): "Chromium or Playwright is not installed."

def chromium_path() -> str:
    "Debian's Chromium (or `$CHROMIUM`), and check that Playwright imports; raises `BrowserMissing` saying what to install."
    try: import playwright.sync_api  # noqa: F401
    except ImportError as e: raise BrowserMissing(f"Playwright is not installed ({e}): {INSTALL_HINT}") from None
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path: raise BrowserMissing(f"no Chromium on PATH: {INSTALL_HINT}")
    return path

def chapters(nbs: Path = ROOT / "nbs") -> list[str]:
    "Chapter names (`02_tokens`) in reading order: every `nbs/NN_*.ipynb` that exists now."
    return [p.stem for p in sorted(nbs.glob("[0-9]*.ipynb"))]

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

# JupyterLab user settings for the run: every cell in the DOM (no virtual scrolling), per-cell timing
# recorded in the cell metadata, no news or update pop-ups over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "recordTiming": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

SKIPPED_FLAGS = {"notest", "slow", "cuda"}  # settings.ini's tst_flags: cells nbdev_test skips unless asked

def _drop_flagged_cells(nb: Path):
    "Remove the cells nbdev_test skips (`#| slow`, `#| cuda`, ...): a quick run mirrors nbdev_test's."
    data = json.loads(nb.read_text(encoding="utf-8"))
    def flagged(cell):
        lines = "".join(cell["source"]).splitlines()
        return cell["cell_type"] == "code" and any(l.startswith("#|") and SKIPPED_FLAGS & set(l[2:].split()) for l in lines)
    data["cells"] = [c for c in data["cells"] if not flagged(c)]
    nb.write_text(json.dumps(data), encoding="utf-8")

class JupyterLab:
    "JupyterLab on 127.0.0.1 with a token, serving a temporary copy of `nbs/`; stopped by its process id."
    def __init__(self, src: Path = ROOT / "nbs", workdir: Path | None = None, keep_log: Path | None = None,
                 quick: bool = False): # quick: kernels run with IN_TEST=1 (the chapters' tiny settings, as under nbdev_test)
        self.workdir, self.keep_log, self.quick = Path(workdir or tempfile.mkdtemp(prefix="llmbook-lab-")), keep_log, quick
        self.root = self.workdir / "nbs"
        self.src, self.token, self.port, self.proc = Path(src), secrets.token_hex(16), _free_port(), None
        self.log_path = self.workdir / "jupyterlab.log"

    @property
    def url(self) -> str: return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180):
        shutil.copytree(self.src, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "_proc"))
        if self.quick:
            for nb in self.root.glob("*.ipynb"): _drop_flagged_cells(nb)
        cfg = self.workdir / "lab-config"
        for name, values in LAB_SETTINGS.items():
            f = cfg / "settings" / f"{name}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(values))
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(cfg / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(cfg / "workspaces"),
               "JUPYTER_CONFIG_DIR": str(cfg / "jupyter"), "JUPYTER_RUNTIME_DIR": str(cfg / "runtime"),
               "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        for var in ("IN_TEST", "MPLBACKEND", "CI"):  # a learner's kernel: not under nbdev_test, plots inline
            env.pop(var, None)
        if self.quick: env["IN_TEST"] = "1"
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's python3 kernel
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}", "--ServerApp.port_retries=0",
             "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.expose_app_in_browser=True"],
            env=env, cwd=self.root, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                self.api("status"); return self
            except OSError: time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self):
        "Shut down every kernel (between chapters: each chapter starts with a fresh one, memory is freed)."
        for k in self.api("kernels"):
            try: self.api(f"kernels/{k['id']}", "DELETE")
            except OSError: pass

    def stop(self):
        "Stop the server by its process id (its kernels with it), then remove the temporary copy."
        if self.proc and self.proc.poll() is None:
            try: self.shutdown_kernels()
            except OSError: pass
            self.proc.send_signal(signal.SIGTERM)  # Jupyter's clean stop
            try: self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
            if self.keep_log:
                self.keep_log.parent.mkdir(parents=True, exist_ok=True); shutil.copy(self.log_path, self.keep_log)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()

def launch_browser(playwright):
    "Headless Debian Chromium, with the flags that keep it off the (closed) network."
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)

# JavaScript that reads the open notebook's state from the exposed app (read-only)
_STATE_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.content.model || !w.sessionContext) return null;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = [];
  const m = w.content.model.cells;
  for (let i = 0; i < m.length; i++) {
    const c = m.get(i);
    if (c.type !== 'code') { cells.push({type: c.type}); continue; }
    const outs = c.outputs.toJSON();
    cells.push({type: 'code', source: c.sharedModel.getSource(), count: c.executionCount,
                execution: c.getMetadata('execution') || null,
                errors: outs.filter(o => o.output_type === 'error').map(o => ({ename: o.ename, evalue: o.evalue,
                          traceback: (o.traceback || []).join('\\n').replace(/\\x1b\\[[0-9;]*m/g, '')})),
                widgets: outs.filter(o => o.data && o.data['application/vnd.jupyter.widget-view+json']).length});
  }
  const prompts = [...w.content.node.querySelectorAll('.jp-Cell.jp-CodeCell')].map(n => {
    const p = n.querySelector('.jp-InputPrompt'); return p ? p.textContent.trim() : ''; });
  return {kernel: kernel ? kernel.status : 'none', dirty: w.context.model.dirty, cells, prompts};
}"""

# the same, cheaply (no outputs): polled while a chapter runs, so the page does little work beside the kernel
_PROGRESS_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.content.model || !w.sessionContext) return null;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  const m = w.content.model.cells, counts = [];
  for (let i = 0; i < m.length; i++) if (m.get(i).type === 'code') counts.push(m.get(i).executionCount);
  const prompts = [...w.content.node.querySelectorAll('.jp-Cell.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  return {kernel: kernel ? kernel.status : 'none', counts, prompts};
}"""

@dataclass
class CellTime:
    index: int
    seconds: float
    first_line: str

@dataclass
class ChapterRun:
    name: str
    seconds: float = 0.0            # Run All clicked -> last cell done, as the learner waits
    finished: bool = False
    errors: list = field(default_factory=list)    # (cell index, ename, evalue, traceback)
    cells: list = field(default_factory=list)     # CellTime per executed code cell
    running: str = ""               # the cell still running when the time limit hit
    widget_cells: list = field(default_factory=list)  # indices of code cells that display a widget

    def slowest(self, n: int = 3) -> list[CellTime]: return sorted(self.cells, key=lambda c: -c.seconds)[:n]

def _first_line(src: str) -> str:
    lines = [l for l in src.splitlines() if l.strip() and not l.startswith("#|")]
    return (lines[0] if lines else src.splitlines()[0] if src else "")[:80]

def _seconds(execution: dict | None) -> float | None:
    from datetime import datetime
    if not execution: return None
    a, b = execution.get("iopub.execute_input"), execution.get("shell.execute_reply")
    if not (a and b): return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(b) - parse(a)).total_seconds()

class ChapterPage:
    "One chapter open in its own JupyterLab workspace and browser page."
    def __init__(self, browser, lab: JupyterLab, name: str, viewport=(1280, 900)):
        self.lab, self.name = lab, name
        self.page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.page.set_default_timeout(60_000)

    def open(self):
        "Open the chapter (a fresh workspace named after it), wait for its kernel, hide the file browser."
        ws = re.sub(r"\W", "-", self.name)
        self.page.goto(f"{self.lab.url}/lab/workspaces/{ws}/tree/{self.name}.ipynb?reset&token={self.lab.token}")
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=180_000)
        self.wait(lambda s: s and s["kernel"] == "idle", 180, "the kernel to start")
        if self.page.locator("#jp-left-stack:visible").count():
            self.page.keyboard.press("Control+b")  # a learner closes the file browser to read
        return self

    def state(self) -> dict | None: return self.page.evaluate(_STATE_JS)

    def wait(self, cond, timeout: float, what: str, poll: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            s = self.state()
            if cond(s): return s
            if time.monotonic() > deadline: raise TimeoutError(f"{self.name}: timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(poll)

    def menu(self, menu: str, item: str):
        "Click a menu of the menu bar, then its item labelled `item` (as a learner clicks Run > Run All Cells)."
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{menu}$")).click()
        self.page.locator(".lm-Menu-item:visible", has=self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$"))).first.click()

    def run_all(self, limit: float) -> ChapterRun:
        "Run > Run All Cells, wait until every cell ran (or one failed, or `limit` seconds passed)."
        run = ChapterRun(self.name)
        t0 = time.monotonic()
        progress = lambda: self.page.evaluate(_PROGRESS_JS)
        def started(p):
            return p is not None and ("[*]:" in p["prompts"] or p["kernel"] == "busy" or all(p["counts"]))
        for _ in range(3):  # a click a loaded browser missed queues no cell: clicking again is safe
            self.menu("Run", "Run All Cells")
            deadline = time.monotonic() + 40
            while not started(p := progress()) and time.monotonic() < deadline: time.sleep(0.2)
            if started(p): break
        else:
            raise TimeoutError(f"{self.name}: Run All Cells did not start after 3 clicks (40 s each)")
        done = False
        while time.monotonic() - t0 < limit:
            p = progress()
            if p["kernel"] in ("dead", "autorestarting", "restarting"):
                run.running = f"none: the kernel died ({p['kernel']}; out of memory?)"; break
            # Run All ends when every cell ran, or at the first error (the queued cells go back to `[ ]:`)
            if p["kernel"] == "idle" and "[*]:" not in p["prompts"]:
                t_end = time.monotonic(); time.sleep(1)
                p = progress()
                if p["kernel"] == "idle" and "[*]:" not in p["prompts"]: done = True; break
            time.sleep(1)
        run.seconds, run.finished = (t_end if done else time.monotonic()) - t0, done
        state = self.state()
        for i, c in enumerate(state["cells"]):
            if c["type"] != "code": continue
            for e in c["errors"]: run.errors.append((i, e["ename"], e["evalue"], e["traceback"]))
            t = _seconds(c["execution"])
            if t is not None and c["count"]: run.cells.append(CellTime(i, t, _first_line(c["source"])))
            if c["widgets"]: run.widget_cells.append(i)
        if not done and not run.running:
            code_idx = [i for i, c in enumerate(state["cells"]) if c["type"] == "code"]
            busy = [i for i, p in zip(code_idx, state["prompts"]) if p == "[*]:"]
            if busy:
                i = busy[0]
                started = (state["cells"][i]["execution"] or {}).get("iopub.execute_input")
                run.running = f"cell {i} `{_first_line(state['cells'][i]['source'])}`" + (" (started, still running)" if started else "")
            self.menu("Kernel", "Interrupt Kernel")
        return run

    def cell(self, index: int):
        "The DOM cell at notebook index `index` (markdown cells count)."
        return self.page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)

    def find_cell(self, marker: str) -> int:
        "Index of the first code cell whose source contains `marker`; -1 if none."
        for i, c in enumerate(self.state()["cells"]):
            if c["type"] == "code" and marker in c["source"]: return i
        return -1

    def wait_idle(self, timeout: float = 120):
        time.sleep(0.3)
        return self.wait(lambda s: s["kernel"] == "idle", timeout, "the kernel to finish")

    def screenshot(self, path: Path, locator=None):
        path.parent.mkdir(parents=True, exist_ok=True)
        (locator or self.page).screenshot(path=str(path))
        return path

    def close(self):
        self.page.close()
