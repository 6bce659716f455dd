"""`load_text` against a real HTTP server (python -m http.server) on 127.0.0.1, started and stopped by PID."""
import hashlib, os, signal, socket, subprocess, sys, time, urllib.request
import pytest
from llmbook.data import load_text, cached_path, DownloadError

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "good.txt").write_text("Now is better than never.\n", encoding="utf-8")
    (site / "latin1.txt").write_bytes("na\xefve\n".encode("latin-1"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try: urllib.request.urlopen(base + "/", timeout=1); break
        except OSError: time.sleep(0.1)
    else: raise RuntimeError("http.server did not start")
    yield base, site
    os.kill(proc.pid, signal.SIGTERM); proc.wait(timeout=10)

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"

def leftovers(cache): return sorted(p.name for p in cache.iterdir()) if cache.exists() else []

def test_download_once_then_cached(server, cache):
    base, site = server
    sha = hashlib.sha256((site / "good.txt").read_bytes()).hexdigest()
    assert load_text(f"{base}/good.txt", sha256=sha) == "Now is better than never.\n"
    assert leftovers(cache) == [cached_path(f"{base}/good.txt").name]
    (site / "good.txt").rename(site / "moved.txt")  # a second call must not need the server
    try: assert load_text(f"{base}/good.txt", sha256=sha.upper()) == "Now is better than never.\n"
    finally: (site / "moved.txt").rename(site / "good.txt")

def test_cached_file_is_verified_again(server, cache):
    base, _ = server
    load_text(f"{base}/good.txt")
    cached_path(f"{base}/good.txt").write_text("tampered")
    with pytest.raises(ValueError, match="sha256 mismatch for cached file"):
        load_text(f"{base}/good.txt", sha256=hashlib.sha256(b"Now is better than never.\n").hexdigest())

def test_wrong_checksum(server, cache):
    base, _ = server
    with pytest.raises(ValueError, match=r"sha256 mismatch for http://127.0.0.1:\d+/good.txt: expected 0{64}, got [0-9a-f]{64}"):
        load_text(f"{base}/good.txt", sha256="0" * 64)
    assert leftovers(cache) == []

def test_404(server, cache):
    base, _ = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        load_text(f"{base}/nope.txt")
    assert leftovers(cache) == []

def test_not_utf8(server, cache):
    base, _ = server
    with pytest.raises(ValueError, match=r"not valid utf-8 text \(byte 2"):
        load_text(f"{base}/latin1.txt")
    assert leftovers(cache) == []
    assert load_text(f"{base}/latin1.txt", encoding="latin-1") == "na\xefve\n"

def test_refused_connection(cache):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(DownloadError, match=f"downloading http://127.0.0.1:{port}/x.txt failed"):
        load_text(f"http://127.0.0.1:{port}/x.txt", timeout=5)
    assert leftovers(cache) == []

def test_local_file(tmp_path):
    p = tmp_path / "mine.txt"; p.write_text("hello\n")
    assert load_text(p) == "hello\n"
    with pytest.raises(FileNotFoundError, match="no such file"): load_text(tmp_path / "absent.txt")
