"""Tokenizer identities that need more text than a chapter should run: the fast trainer learns the naive
trainer's merges, and the Hugging Face fast path gives BPETokenizer's ids on the full built-in corpora."""
import json, random, warnings
import regex
import pytest
from tokenizers import pre_tokenizers, Regex, Tokenizer, models, normalizers
from llmbook.data import load_corpus
from llmbook.tokens import (BPETokenizer, HFTokenizer, CharTokenizer, GPT2_PATTERN, GPT4_PATTERN, split_text, hf_pattern,
                            train_bpe_naive, train_bpe_fast, train_bpe_hf, _merge_by_rank, _merge_by_rank_heap,
                            _merge_by_rounds)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<｜end▁of▁sentence｜>"]

@pytest.fixture(scope="module")
def pydocs(): return load_corpus("pydocs")

@pytest.fixture(scope="module")
def pysource(): return load_corpus("pysource", max_chars=2_000_000)

def _random_text(rng, n, alphabet):
    return "".join(rng.choice(alphabet) for _ in range(n))

def _unicode_sample(rng, n):
    "Characters from every part of Unicode: ASCII, Latin, scripts, symbols, emoji, controls, whitespace, private use."
    pools = [range(0, 0x80), range(0x80, 0x250), range(0x370, 0x1000), range(0x1000, 0x3000), range(0x3000, 0xA000),
             range(0xA000, 0xD800), range(0xE000, 0x10000), range(0x10000, 0x20000), range(0x1F300, 0x1FAFF),
             [0x85, 0xA0, 0x1680, 0x2000, 0x200B, 0x200D, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF, 0x1C, 0x1D, 0x1E, 0x1F]]
    return "".join(chr(rng.choice(rng.choice(pools))) for _ in range(n))

ADVERSARIAL = ["", "a", "aa", "aaa", "aaaa", "a" * 101, "ab" * 50 + "a", "aaab" * 20, "😀" * 9, "😀 😀😀 😀😀😀",
               "日本語のテキストと English と русский текст", "مرحبا بالعالم שלום עולם", "e\u0301\u0302 ñ ǅ ﷺ 𝔘𝔫𝔦 👩‍👩‍👧‍👦",
               "12345678901234567890 3.14159 1,000,000 ١٢٣٤ ⅧⅫ ²³", "\n\n\n\r\n\t \x0b\x0c\x1c\x85\u2028\u3000 \ufeff",
               "'s 'S 'll 'LL 've 're 'd 'm 't", "    indented\n        more\n", "\x00\x01\x02"]

# --- the fast trainer learns exactly the naive trainer's merges ------------------------------------

@pytest.mark.parametrize("pattern", ["gpt2", "gpt4"])
def test_fast_equals_naive_on_corpora(pattern, pydocs, pysource):
    for text in (pydocs[:12_000], pydocs[200_000:212_000], pysource[:12_000], pysource[900_000:912_000]):
        assert list(train_bpe_fast(text, 250, pattern).items()) == list(train_bpe_naive(text, 250, pattern).items())

def test_fast_equals_naive_without_split(pydocs, pysource):
    for text in (pydocs[:4000], pysource[:4000]):
        assert list(train_bpe_fast(text, 150, None).items()) == list(train_bpe_naive(text, 150, None).items())

def test_fast_equals_naive_adversarial():
    rng = random.Random(0)
    texts = ADVERSARIAL + [_random_text(rng, rng.randint(0, 120), rng.choice(["a", "ab", "aab ", "ab c\n", "a😀é ", "xyzw", "aaaab"]))
                           for _ in range(300)] + [_unicode_sample(rng, 60) for _ in range(20)]
    for text in texts:
        for pattern in ("gpt2", "gpt4", None):
            n = rng.randint(0, 60)
            assert list(train_bpe_fast(text, n, pattern).items()) == list(train_bpe_naive(text, n, pattern).items()), (text, pattern, n)

def test_special_tokens_are_cut_out_of_training(pydocs):
    "The special token is frequent enough that, trained as text, its pieces merge; cut out, they never do."
    text = "<|endoftext|>".join(pydocs[i:i + 100] for i in range(0, 30_000, 100))  # 299 separators
    merges = train_bpe_fast(text, 200, "gpt4", ["<|endoftext|>"])
    assert merges == train_bpe_naive(text, 200, "gpt4", ["<|endoftext|>"])
    assert not any(b"<|" in v or b"|>" in v for v in BPETokenizer(merges, "gpt4").vocab.values())
    uncut = BPETokenizer(train_bpe_fast(text, 200, "gpt4", []), "gpt4")  # the bug this test is named for
    assert any(b"<|" in v for v in uncut.vocab.values()) and any(b"|>" in v for v in uncut.vocab.values())

def test_truncated_is_training_with_a_smaller_vocab(pydocs):
    big = BPETokenizer.train(pydocs, 2048)
    for v in (256, 300, 1000):
        assert big.truncated(v).merges == BPETokenizer.train(pydocs, v).merges

# --- encoding ----------------------------------------------------------------------------------------

def test_heap_encoder_equals_loop(pydocs):
    tok = BPETokenizer.train(pydocs, 1024, "gpt4")
    rng = random.Random(1)
    seqs = [list(pydocs[i:i + rng.randint(0, 400)].encode()) for i in range(0, 400_000, 10_000)]
    seqs += [[rng.choice(b"aab e th\xe6\x97") for _ in range(rng.randint(0, 300))] for _ in range(200)]
    for ids in seqs:
        assert _merge_by_rank_heap(ids, tok.merges) == _merge_by_rank(ids, tok.merges)
        assert _merge_by_rounds(ids, tok.merges) == _merge_by_rank(ids, tok.merges)

def test_roundtrip_and_no_unknowns(pydocs):
    tok = BPETokenizer.train(pydocs, 1024, special_tokens=SPECIALS)
    rng = random.Random(2)
    for text in ADVERSARIAL + [_unicode_sample(rng, 200) for _ in range(20)]:
        assert tok.decode(tok.encode(text)) == text

def test_pattern_none_encodes_long_text_fast(pydocs):
    tok = BPETokenizer(train_bpe_fast(pydocs[:20_000], 300, None), None)
    ids = tok.encode(pydocs[:200_000])                     # one 200 KB chunk: the heap encoder, not the quadratic loop
    assert tok.decode(ids) == pydocs[:200_000]
    assert tok.to_hf().encode(pydocs[:200_000]).ids == ids

# --- the HF fast path gives the same ids -------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizers(pydocs, pysource):
    return {"gpt4-4096": BPETokenizer.train(pydocs + pysource[:300_000], 4096, "gpt4", SPECIALS),
            "gpt2-2048": BPETokenizer.train(pysource[:500_000], 2048, "gpt2", SPECIALS[:2]),
            "none-600": BPETokenizer.train(pydocs[:30_000], 600, None, SPECIALS[:1])}

def _with_specials(text, specials, every=5000):
    return "".join(text[i:i + every] + specials[(i // every) % len(specials)] for i in range(0, len(text), every))

@pytest.mark.parametrize("name", ["gpt4-4096", "gpt2-2048", "none-600"])
def test_hf_same_ids_on_corpora(name, tokenizers, pydocs, pysource):
    tok = tokenizers[name]
    hf, fast = tok.to_hf(), HFTokenizer(tok)
    limit = 60_000 if name.startswith("none") else None
    for text in (pydocs[:limit], pysource[:limit]):
        ids = tok.encode(text)
        assert hf.encode(text, add_special_tokens=False).ids == ids
        assert fast.encode(text) == ids
        mixed = _with_specials(text, list(tok.special_tokens))
        assert fast.encode(mixed, allowed_special="all") == tok.encode(mixed, allowed_special="all")
        assert fast.encode(mixed, allowed_special="none") == tok.encode(mixed, allowed_special="none")
        assert fast.decode(ids) == text

@pytest.mark.parametrize("name", ["gpt4-4096", "gpt2-2048", "none-600"])
def test_hf_same_ids_adversarial(name, tokenizers):
    tok = tokenizers[name]
    fast = HFTokenizer(tok)
    rng = random.Random(3)
    specials = list(tok.special_tokens)
    texts = ADVERSARIAL + [_unicode_sample(rng, rng.randint(1, 80)) for _ in range(300)]
    texts += [_random_text(rng, 60, ["a", " ", "\n", "1", "'s", "😀", "é", *specials, specials[0][:4]]) for _ in range(300)]
    for text in texts:
        for policy in ("all", "none"):
            assert fast.encode(text, allowed_special=policy) == tok.encode(text, allowed_special=policy), (text, policy)

def test_hf_regex_split_matches_python():
    "HF's Oniguruma and Python's `regex` cut text into the same chunks under both patterns, across Unicode."
    rng = random.Random(4)
    texts = ADVERSARIAL + [_unicode_sample(rng, rng.randint(1, 40)) for _ in range(2000)]
    for pattern in (GPT2_PATTERN, GPT4_PATTERN):
        split = pre_tokenizers.Split(Regex(hf_pattern(pattern)), behavior="isolated")
        for text in texts:
            assert [p for p, _ in split.pre_tokenize_str(text)] == split_text(text, pattern), text

def test_hf_classes_match_python_for_every_code_point():
    "The character classes of both patterns match the same code points in HF (after `hf_pattern`) and in Python's `regex`."
    every = "".join(chr(c) for c in [*range(0xD800), *range(0xE000, 0x110000)])
    for cls in (r"\p{L}", r"\p{N}", r"[^\s\p{L}\p{N}]", r"[^\r\n\p{L}\p{N}]", r"\s", r"[\r\n]", r"\S"):
        split = pre_tokenizers.Split(Regex(hf_pattern(cls)), behavior="removed")
        not_matched = set("".join(p for p, _ in split.pre_tokenize_str(every)))
        assert set(every) - not_matched == set(regex.findall(cls, every)), cls

def test_hf_pattern_keeps_meaning():
    for pattern in (GPT2_PATTERN, GPT4_PATTERN, r"[\p{L}\]]+|[^\p{N}]|\PL", r"[]\p{N}]+|[^]\pL]+"):
        rng = random.Random(6)
        for _ in range(200):
            text = _unicode_sample(rng, 30) + "]^[" + _unicode_sample(rng, 5)
            assert regex.findall(hf_pattern(pattern), text) == regex.findall(pattern, text)
    assert hf_pattern(r"\s+\d") == r"\s+\d"

def test_hf_decode_matches_python_replacement(tokenizers):
    "Rust's lossy UTF-8 decoding and Python's errors='replace' put U+FFFD in the same places."
    tok = tokenizers["gpt4-4096"]
    hf = tok.to_hf(special_tokens=False)
    rng = random.Random(5)
    for _ in range(3000):
        ids = [rng.randrange(256 + len(tok.merges)) if rng.random() < 0.5 else rng.randrange(128, 256) for _ in range(rng.randint(0, 12))]
        assert hf.decode(ids) == tok.decode(ids), ids

def test_hf_policy_and_batch(tokenizers):
    tok = tokenizers["gpt4-4096"]
    fast = HFTokenizer(tok)
    text = "a <|im_start|>user\nhi<|im_end|> b"
    for policy in ("all", "none", {"<|im_start|>", "<|im_end|>"}):
        assert fast.encode(text, allowed_special=policy) == tok.encode(text, allowed_special=policy)
    for policy in ("none_raise", {"<|im_start|>"}):
        with pytest.raises(ValueError, match="special token '<\\|im_end\\|>'|special token '<\\|im_start\\|>'"):
            fast.encode(text, allowed_special=policy)
    texts = ["hello world", "", "naïve 😀", "x" * 1000]
    assert fast.encode_batch(texts) == [tok.encode(t) for t in texts]
    assert fast.encode_batch([text, "plain"], allowed_special="none") == [tok.encode(t, allowed_special="none") for t in (text, "plain")]
    with pytest.raises(ValueError, match="outside the vocabulary"): fast.decode([tok.vocab_size])

def test_to_hf_refuses_two_tokens_with_one_spelling():
    a, b, c = b"abc"
    tok = BPETokenizer({(a, b): 256, (256, c): 257, (b, c): 258, (a, 258): 259}, None)  # "abc" twice
    assert tok.decode([257]) == tok.decode([259]) == "abc"
    with pytest.raises(ValueError, match="both spell b'abc'"): tok.to_hf()

def test_to_hf_refuses_a_special_token_spelled_like_a_token():
    with pytest.raises(ValueError, match="special token 'Ā'"): BPETokenizer({}, "gpt4", ["Ā"]).to_hf()  # byte 0 in HF's byte alphabet

# --- training with HF, loaded into llmbook ----------------------------------------------------------

def test_hf_trained_tokenizer_in_llmbook(pydocs, pysource):
    tok = BPETokenizer.train(pydocs, 4096, "gpt4", ["<|endoftext|>"], trainer="hf")
    assert tok.vocab_size == 4096 and list(tok.special_tokens.values()) == [4095]
    # the same training run in HF's own terms: its ids differ, its tokens are ours
    ref = BPETokenizer({}, "gpt4").to_hf(); ref.model = models.BPE()
    from tokenizers import trainers
    ref.train_from_iterator([pydocs], trainers.BpeTrainer(vocab_size=4095, min_frequency=0, show_progress=False,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    for text in (pydocs, pysource[:500_000]):
        ours = tok.encode(text)
        theirs = ref.encode(text, add_special_tokens=False).tokens
        assert tok.pieces(ours) == [bytes(_u2b(t)).decode("utf-8", errors="backslashreplace") for t in theirs]
        assert HFTokenizer(tok).encode(text) == ours

def _u2b(s):
    from llmbook.tokens import _U2B
    return [_U2B[c] for c in s]

def test_from_hf_refuses_what_it_cannot_reproduce():
    hf = BPETokenizer({}, "gpt4").to_hf()
    hf.normalizer = normalizers.NFKC()
    with pytest.raises(ValueError, match="unsupported normalizer 'NFKC'"): BPETokenizer.from_hf(hf)
    hf = BPETokenizer({}, "gpt4").to_hf()
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match="unsupported pre-tokenizer"): BPETokenizer.from_hf(hf)
    hf = Tokenizer(models.WordLevel({"a": 0}, unk_token="a"))
    with pytest.raises(ValueError, match="expected a BPE model"): BPETokenizer.from_hf(hf)

def test_from_hf_roundtrip_file(tmp_path, tokenizers):
    for tok in tokenizers.values():
        tok.to_hf().save(str(tmp_path / "tokenizer.json"))
        back = BPETokenizer.from_hf(tmp_path / "tokenizer.json")
        assert (back.merges, back.pattern, back.special_tokens) == (tok.merges, tok.pattern, tok.special_tokens)

# --- bad input and files -----------------------------------------------------------------------------

def test_bad_input():
    tok = BPETokenizer.train(load_corpus("pydocs")[:5000], 270, special_tokens=["<s>", "</s>"])
    with pytest.raises(ValueError, match="vocab_size=257 is below 256 byte tokens \\+ 2 special tokens = 258"):
        BPETokenizer.train("x", 257, special_tokens=["<s>", "</s>"])
    with pytest.raises(TypeError, match="text must be a str, got int"): tok.encode(5)
    with pytest.raises(TypeError, match="text must be a str, got list"): BPETokenizer.train(["a"], 300)
    with pytest.raises(ValueError, match="id 270 at position 2 is outside the vocabulary \\(ids 0..269\\)"): tok.decode([1, 2, 270])
    with pytest.raises(TypeError, match="ids must be ints"): tok.decode(["a"])
    with pytest.raises(ValueError, match="special token '<s>'"): tok.encode("a<s>b")
    with pytest.raises(TypeError, match="special_tokens must be a list"): BPETokenizer.train("x", 300, special_tokens="<s>")
    with pytest.raises(ValueError, match="not a valid regular expression"): BPETokenizer.train("x", 300, pattern="[")
    with pytest.raises(ValueError, match="character 'z'"): CharTokenizer.train("abc").encode("abz")

def test_decode_accepts_tensors():
    import torch, numpy as np
    tok = BPETokenizer.train(load_corpus("pydocs")[:5000], 270)
    ids = tok.encode("hello")
    assert tok.decode(torch.tensor(ids)) == tok.decode(np.array(ids)) == "hello"
    with pytest.raises(TypeError, match="dtype"): tok.decode(torch.tensor([1.0]))

def test_save_load(tmp_path, tokenizers):
    for tok in tokenizers.values():
        back = BPETokenizer.load(tok.save(tmp_path / "t.json"))
        assert (back.merges, back.pattern, back.special_tokens) == (tok.merges, tok.pattern, tok.special_tokens)
    data = json.loads((tmp_path / "t.json").read_text())
    for bad, msg in [("{", "not JSON"), (json.dumps({**data, "version": 0}), "format version 0"),
                     (json.dumps({**data, "format": "tiktoken"}), "not an llmbook BPE tokenizer"),
                     (json.dumps({**data, "merges": [[1, 2, 3, 4]] + data["merges"][1:]}), "corrupt"),
                     (json.dumps({**data, "merges": "lots"}), "corrupt"),
                     (json.dumps({**data, "special_tokens": {"<|endoftext|>": 5}}), "corrupt")]:
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(ValueError, match=msg): BPETokenizer.load(tmp_path / "bad.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not JSON"): BPETokenizer.load(tmp_path / "bin.json")

def test_train_warns_when_text_runs_out():
    with pytest.warns(UserWarning, match="only allowed 0 merges"): tok = BPETokenizer.train("", 300)
    assert tok.vocab_size == 256

# --- every mistake gets an error that names it (the chapter shows a few; here is the whole table) ---

@pytest.fixture(scope="module")
def small_tok(pydocs): return BPETokenizer.train(pydocs[:20_000], 300, special_tokens=["<|endoftext|>"])

BAD_INPUT = [  # (what, call on the small tokenizer, error type, part of the message)
    ("vocab below bytes + specials", lambda t: BPETokenizer.train("text", 256, special_tokens=["<|endoftext|>"]),
     ValueError, "vocab_size=256 is below 256 byte tokens + 1 special tokens = 257"),
    ("train on bytes", lambda t: BPETokenizer.train(b"bytes", 300), TypeError, "text must be a str, got bytes"),
    ("encode None", lambda t: t.encode(None), TypeError, "text must be a str, got NoneType"),
    ("lone surrogate", lambda t: t.encode("ok \udcff"), ValueError, "lone surrogate U+DCFF"),
    ("id past the vocabulary", lambda t: t.decode([72, 300]), ValueError,
     "id 300 at position 1 is outside the vocabulary (ids 0..299)"),
    ("negative id", lambda t: t.decode([-1]), ValueError, "id -1 at position 0"),
    ("float id", lambda t: t.decode([1.5]), TypeError, "ids must be ints"),
    ("unknown trainer", lambda t: BPETokenizer.train("text", 300, trainer="magic"), ValueError,
     "unknown trainer 'magic'"),
    ("merge ids not from 256", lambda t: BPETokenizer({(97, 98): 300}), ValueError, "expected 256"),
    ("merge of a later id", lambda t: BPETokenizer({(97, 256): 256}), ValueError, "two ids that exist before it"),
    ("special token twice", lambda t: BPETokenizer({}, special_tokens=["<s>", "<s>"]), ValueError,
     "'<s>' is given twice"),
    ("allowed_special names no special token", lambda t: t.encode("a<|endoftext|>b", allowed_special={"<|pad|>"}),
     ValueError, "allowed_special names '<|pad|>', which is not a special token of this tokenizer"),
    ("allowed_special of no known kind", lambda t: t.encode("a", allowed_special="some"), ValueError,
     "allowed_special must be 'none_raise', 'none', 'all' or a set of special tokens, got 'some'"),
    ("char: id past the vocabulary", lambda t: CharTokenizer.train("hello world").decode([0, 8]), ValueError,
     "id 8 at position 1 is outside the vocabulary (ids 0..7)"),
    ("char: encode bytes", lambda t: CharTokenizer.train("hello world").encode(b"hello"), TypeError,
     "text must be a str, got bytes"),
    ("char: unk_token already a character", lambda t: CharTokenizer.train("ab", unk_token="a"), ValueError,
     "unk_token must be a non-empty str that is not itself in the vocabulary, got 'a'"),
]

@pytest.mark.parametrize("call, error, message", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_a_clear_error(small_tok, call, error, message):
    with pytest.raises(error) as caught: call(small_tok)
    assert message in str(caught.value)

BAD_FILES = [  # (what, the file's text from the saved tokenizer's JSON `data` and text `raw`, part of the message)
    ("not json", lambda data, raw: "{not json", "not JSON"),
    ("another format", lambda data, raw: '{"format": "something"}', "not an llmbook BPE tokenizer file"),
    ("another version", lambda data, raw: json.dumps({**data, "version": 2}),
     "format version 2, but this llmbook reads version 1"),
    ("a merge missing", lambda data, raw: json.dumps({**data, "merges": data["merges"][:-1]}),
     "do not follow the merges"),
    ("an id out of range", lambda data, raw: json.dumps({**data, "merges": [[97, 5000, "a?"]] + data["merges"][1:]}),
     "corrupt"),
    ("a wrong merge text", lambda data, raw: json.dumps({**data, "merges": [[*data["merges"][0][:2], "xx"]]
                                                         + data["merges"][1:]}), "says it makes 'xx'"),
    ("no pattern", lambda data, raw: json.dumps({k: v for k, v in data.items() if k != "pattern"}), "corrupt"),
    ("cut in half", lambda data, raw: raw[:len(raw) // 2], "not JSON"),
]

@pytest.mark.parametrize("make, message", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_tokenizer_file_is_refused(tmp_path, small_tok, make, message):
    raw = small_tok.save(tmp_path / "tok.json").read_text()
    (tmp_path / "bad.json").write_text(make(json.loads(raw), raw))
    with pytest.raises(ValueError) as caught: BPETokenizer.load(tmp_path / "bad.json")
    assert message in str(caught.value)

def test_saved_format_is_unchanged(tmp_path, small_tok):
    "Files saved before the constants were renamed keep loading: the values are the same."
    from llmbook.tokens import TOKENIZER_FORMAT, TOKENIZER_FORMAT_VERSION
    assert (TOKENIZER_FORMAT, TOKENIZER_FORMAT_VERSION) == ("llmbook-bpe", 1)
    data = json.loads(small_tok.save(tmp_path / "tok.json").read_text())
    assert (data["format"], data["version"]) == ("llmbook-bpe", 1)
