"""`llmbook generate` against `transformers` `generate` on the same GPT-2-size (124M) random-weight folder, CPU.

Time to first token (from the call to the first new text written / the first new token streamed; loading timed apart)
and tokens/s after it, greedy, `--new` tokens; the two are interleaved, `--repeats` times each, median reported.
The folder has GPT-2's real tokenizer when `python tests/real_tokenizers.py` has fetched it.

    python bench/bench_cli_generate.py [--new 64] [--repeats 3] [--threads 2]
"""
import argparse, contextlib, io, statistics, sys, tempfile, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

class Clock(io.StringIO):
    "A stdout that notes when each write happens."
    def __init__(self): super().__init__(); self.times = []
    def write(self, s):
        self.times.append(time.perf_counter())
        return super().write(s)

def ours(model, tok, prompt, new):
    "What `llmbook generate` runs once the model is loaded: encode, then `_say_stream` (which prints as it goes)."
    from llmbook.cli import _say_stream
    out = Clock()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out): _say_stream(model, tok.encode(prompt), tok, {"max_new_tokens": new, "min_new_tokens": new}, None, prompt)
    # writes: the prompt together with the first piece, then one per piece
    return out.times[0] - t0, (new - 1) / (out.times[-1] - out.times[0])

def load_times(folder):
    "Seconds to load model + tokenizer: llmbook's `from_pretrained` + `load_tokenizer`, transformers' Auto classes."
    from llmbook.hub import from_pretrained, load_tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer
    t0 = time.perf_counter()
    from_pretrained(folder), load_tokenizer(folder)
    t1 = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    return t1 - t0, time.perf_counter() - t1

def theirs(model, tok, prompt, new):
    from transformers.generation.streamers import BaseStreamer
    class Times(BaseStreamer):
        def __init__(self): self.times = []
        def put(self, value): self.times.append(time.perf_counter())
        def end(self): pass
    s = Times()
    t0 = time.perf_counter()
    ids = torch.tensor([tok.encode(prompt)])
    model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False, streamer=s, pad_token_id=50256)
    new_times = s.times[1:]  # the first put is the prompt
    return new_times[0] - t0, (new - 1) / (new_times[-1] - new_times[0])

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from transformers import GPT2Config, GPT2LMHeadModel, AutoModelForCausalLM
    import real_tokenizers as real
    from llmbook.hub import load_tokenizer
    folder = Path(tempfile.mkdtemp()) / "gpt2-124M-random"
    if (real.folder("gpt2") / "tokenizer.json").is_file(): tokenizer_source = real.folder("gpt2")
    else:
        from test_pretrained_tokenizers import gpt2_like
        tokenizer_source = folder.parent / "tok"
        gpt2_like(tokenizer_source)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=50257)).save_pretrained(folder)
    for f in tokenizer_source.iterdir(): (folder / f.name).write_bytes(f.read_bytes())
    from llmbook.hub import from_pretrained
    hf, model = AutoModelForCausalLM.from_pretrained(folder).eval(), from_pretrained(folder)
    tok = load_tokenizer(folder)
    prompt = "The quick brown fox jumps over the lazy dog. " * 4
    rows = {"llmbook generate (CLI, streamed)": [], "transformers generate (streamer)": []}
    ours(model, tok, prompt, 4)  # warm-up
    theirs(hf, tok, prompt, 4)
    for _ in range(a.repeats):
        rows["llmbook generate (CLI, streamed)"].append(ours(model, tok, prompt, a.new))
        rows["transformers generate (streamer)"].append(theirs(hf, tok, prompt, a.new))
    print(f"GPT-2 124M random weights, CPU, {a.threads} threads, prompt {len(tok.encode(prompt))} tokens, {a.new} new tokens, "
          f"greedy, median of {a.repeats}")
    print(f"{'':34}{'first token (ms)':>18}{'tokens/s':>10}")
    med = {k: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v)) for k, v in rows.items()}
    for k, (t, r) in med.items(): print(f"{k:34}{t * 1000:18.0f}{r:10.1f}")
    (a1, r1), (a2, r2) = med.values()
    print(f"{'llmbook / transformers':34}{a1 / a2:18.2f}{r1 / r2:10.2f}")
    loads = [load_times(folder) for _ in range(a.repeats)]
    print(f"loading model + tokenizer (s, median): llmbook {statistics.median(l for l, _ in loads):.2f}, "
          f"transformers {statistics.median(t for _, t in loads):.2f}")

if __name__ == "__main__":
    main()
