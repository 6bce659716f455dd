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

# --- llmbook train / llmbook demo (tiny settings: a 32-token context, a few steps) ---

def _train(out, *extra):
    return run("train", "--model", "max_seq_len=32", "--batch-size", "4", "--out", str(out), "--no-progress", *extra)

def test_train_then_resume(tmp_path):
    out = tmp_path / "gpt"
    r = _train(out, "--steps", "3")
    assert r.returncode == 0, r.stderr
    assert "step 3: training loss" in r.stdout and "sample: 'The" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-0000003", "run.json", "tokenizer.json"]
    r = _train(out, "--steps", "5", "--resume")
    assert r.returncode == 0, r.stderr
    assert "resumed at step 3" in r.stdout and "step 5: training loss" in r.stdout
    from llmbook.hub import load
    assert load(out / "checkpoint-0000005").config.max_seq_len == 32  # the model part opens for inference
    r = _train(out, "--steps", "5")  # the same folder without --resume: refused, nothing overwritten
    assert r.returncode == 2 and "already holds a run" in r.stderr and "Traceback" not in r.stderr
    r = run("train", "--preset", "tiny-llama", "--out", str(out), "--resume")
    assert r.returncode == 2 and "preset: 'tiny-gpt2' -> 'tiny-llama'" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-0000003", "checkpoint-0000005", "run.json", "tokenizer.json"]

def test_train_bad_input(tmp_path):
    (tmp_path / "small.txt").write_text("Simple is better than complex.\n" * 60)
    cases = [(["--preset", "gpt5"], "unknown preset 'gpt5'"),
             (["--corpus", "wikipedia"], "unknown corpus 'wikipedia'"),
             (["--block-size", "256"], "sequences of 256 tokens (input_ids) but the model's context is 128"),
             (["--file", str(tmp_path / "small.txt"), "--batch-size", "512", "--block-size", "16"], "examples but one step needs 512"),
             (["--file", str(tmp_path / "missing.txt")], "no such file"),
             (["--model", "d_model"], "--model expects KEY=VALUE"),
             (["--whole-words"], "whole_words=True is masked-LM masking, for encoders"),
             (["--mask-prob", "0.4"], "mask_prob=0.4 is masked-LM masking, for encoders"),
             (["--preset", "tiny-bert", "--mask-prob", "1.5"], "mask_prob must be in (0, 1], got 1.5")]
    for args, message in cases:
        r = run("train", "--out", str(tmp_path / "out"), "--no-progress", *args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert not (tmp_path / "out").exists()

def test_train_other_families(tmp_path):
    for preset, extra in (("tiny-bert", ["--model", "max_seq_len=32"]), ("tiny-t5", ["--task", "numbers"])):
        r = run("train", "--preset", preset, "--steps", "2", "--batch-size", "4", "--out", str(tmp_path / preset), "--no-progress", *extra)
        assert r.returncode == 0, r.stderr
        assert "step 2: training loss" in r.stdout
    assert "(expected " in r.stdout  # the seq2seq run shows test examples

def test_train_whole_word_masking(tmp_path):
    "The course BERT's masking from the command line: recorded in run.json, so --resume keeps it."
    out = tmp_path / "bert"
    r = run("train", "--preset", "tiny-bert", "--model", "max_seq_len=32", "--steps", "2", "--batch-size", "4",
            "--whole-words", "--mask-prob", "0.4", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    saved = json.loads((out / "run.json").read_text())
    assert saved["whole_words"] is True and saved["mask_prob"] == 0.4, saved
    r = run("train", "--preset", "tiny-bert", "--model", "max_seq_len=32", "--steps", "3", "--batch-size", "4",
            "--out", str(out), "--no-progress", "--resume")  # the masking left out: a different run, refused
    assert r.returncode == 2 and "whole_words: True -> None" in r.stderr, r.stderr

def test_demo(tmp_path):
    r = subprocess.run([LLMBOOK, "demo", "--seconds", "3", "--out", str(tmp_path / "demo")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "before training:" in r.stdout and "after " in r.stdout and "validation loss" in r.stdout
    assert "train:" in r.stderr and "100%" in r.stderr  # the progress bar
    assert any((tmp_path / "demo").glob("checkpoint-*"))
