import os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the hub
sys.path.insert(0, str(ROOT / ".ci"))

def pytest_configure(config):
    config.addinivalue_line("markers", "browser: the course in JupyterLab and Chromium (tests/test_browser.py); deselect with -m 'not browser'")

def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for text in getattr(config, "_llmbook_reports", []):  # e.g. the browser test's chapter timing table
        terminalreporter.write_sep("-", "llmbook report")
        terminalreporter.write_line(text)
