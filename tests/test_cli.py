"""The `llmbook` console script, end to end in a fresh process."""
import json, subprocess, sys
from pathlib import Path
import torch

LLMBOOK = str(Path(sys.executable).parent / "llmbook")

def run(*args): return subprocess.run([LLMBOOK, *args], capture_output=True, text=True, timeout=120)

def test_help():
    r = run("--help")
    assert r.returncode == 0 and "info" in r.stdout and "usage: llmbook" in r.stdout

def test_info_json():
    r = run("info", "--json")
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert facts["versions"]["torch"] == torch.__version__
    assert facts["device"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    from pydoc_data.topics import topics
    assert facts["corpora"]["pydocs"] == {"documents": len(topics), "characters": sum(map(len, topics.values()))}
    assert 0 < facts["corpora"]["pysource"]["characters"] <= 2_000_000

def test_info_text_and_device_override():
    r = subprocess.run([LLMBOOK, "info"], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "LLMBOOK_DEVICE": "cpu"})
    assert r.returncode == 0 and "pydocs" in r.stdout and "device          cpu" in r.stdout

def test_bad_device_is_a_clear_error():
    r = subprocess.run([LLMBOOK, "info"], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "LLMBOOK_DEVICE": "tpu"})
    assert r.returncode != 0 and "unknown device 'tpu'" in r.stderr

def test_unknown_command():
    r = run("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr
