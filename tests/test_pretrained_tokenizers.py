"""Checkpoint tokenizers (`hub.PretrainedTokenizer`, `load_tokenizer`), `resolve_checkpoint` and `from_pretrained`,
against `transformers.AutoTokenizer` / `sentence-transformers` on folders written the way the Hub ships them:
tokenizers trained here with `tokenizers` and saved by `transformers`' own classes."""
import json, os, shutil
from pathlib import Path
import pytest, torch
from tokenizers import Tokenizer, Regex, models, trainers, pre_tokenizers, decoders, processors, normalizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, GPT2TokenizerFast, BertTokenizerFast
from llmbook.data import load_corpus
from llmbook.tokens import BPETokenizer, PATTERNS, hf_pattern
from llmbook.hub import PretrainedTokenizer, load_tokenizer, resolve_checkpoint, from_pretrained, TOKENIZER_BACKENDS

TEXT = load_corpus("pydocs", max_chars=60_000)
LLAMA3_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if loop.index0 == 0 and m['role'] != 'system' and false %}{% endif %}"
                   "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
                   "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
STRICT_TEMPLATE = ("{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                   "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}[{{ m['role'] }}] {{ m['content'] | tojson }}\n"
                   "{% endfor %}")
SAMPLES = ["Hello world", "  leading spaces and\ttabs\n\nnew lines", "ROMEO: what's this, thou art?",
           "e\u0301 café ﬁ naïve 👩‍👩‍👧 123456", "<|endoftext|> inside", "", "don't I'm we've , . !", TEXT[:3000]]

def byte_level(ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.decoder = decoders.ByteLevel()
    return tok

def gpt2_like(folder):
    tok = byte_level()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"], show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    GPT2TokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>").save_pretrained(folder)

def llama3_like(folder):
    tok = byte_level(ignore_merges=True)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(hf_pattern(PATTERNS["gpt4"])), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=700, special_tokens=specials, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1", special_tokens=[("<|begin_of_text|>", bos)])])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                            chat_template=LLAMA3_TEMPLATE).save_pretrained(folder)

def bert_like(folder):
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer, wp.pre_tokenizer, wp.decoder = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer(), decoders.WordPiece()
    wp.train_from_iterator([TEXT], trainers.WordPieceTrainer(vocab_size=500, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                                             show_progress=False))
    wp.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                      special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    BertTokenizerFast(tokenizer_object=wp).save_pretrained(folder)

def t5_like(folder):
    u = Tokenizer(models.Unigram())
    u.normalizer, u.pre_tokenizer, u.decoder = normalizers.NFKC(), pre_tokenizers.Metaspace(), decoders.Metaspace()
    u.train_from_iterator([TEXT], trainers.UnigramTrainer(vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                                                          show_progress=False))
    u.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=u, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                            chat_template=STRICT_TEMPLATE).save_pretrained(folder)

KINDS = {"gpt2": gpt2_like, "llama3": llama3_like, "bert": bert_like, "t5": t5_like}
PYTHON_OK = {"gpt2", "llama3"}  # byte-level BPE: the python engine runs them

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizers")
    for name, make in KINDS.items(): make(root / name)
    return root

def test_byte_tokens_are_not_in_byte_order(folders):
    vocab = json.loads((folders / "gpt2" / "tokenizer.json").read_text())["model"]["vocab"]
    assert vocab["Ġ"] != 32 and vocab["a"] != 97  # what makes renumbering a silent error
    with pytest.raises(ValueError, match="numbers its tokens differently"): BPETokenizer.from_hf(folders / "gpt2" / "tokenizer.json")

@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("backend", TOKENIZER_BACKENDS)
def test_same_ids_as_transformers(folders, kind, backend):
    if backend == "python" and kind not in PYTHON_OK:
        with pytest.raises(ValueError, match="backend='python' runs llmbook's byte-level BPE; this tokenizer is a"):
            PretrainedTokenizer(folders / kind, backend)
        return
    ours, theirs = PretrainedTokenizer(folders / kind, backend), AutoTokenizer.from_pretrained(folders / kind)
    for s in SAMPLES:
        for add in (True, False):
            assert ours.encode(s, add_special_tokens=add) == theirs(s, add_special_tokens=add)["input_ids"], (s, add)
        ids = theirs(s)["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip), (s, skip)
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (theirs.bos_token_id, theirs.eos_token_id, theirs.pad_token_id)
    assert ours.vocab_size == len(theirs)

@pytest.mark.parametrize("kind", ["bert", "t5"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_batch_padding_and_mask(folders, kind, side):
    ours, theirs = PretrainedTokenizer(folders / kind), AutoTokenizer.from_pretrained(folders / kind)
    texts = ["a short one", "and a rather longer sentence, with commas", "x"]
    a, b = ours(texts, padding_side=side), theirs(texts, padding=True, padding_side=side, return_tensors="pt")
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["attention_mask"], b["attention_mask"])
    assert ours(texts, padding=False, return_tensors=None)["input_ids"] == theirs(texts)["input_ids"]

def test_chat_templates_equal_transformers(folders):
    msgs = [{"role": "system", "content": "Be brief. "}, {"role": "user", "content": "Hi there "}, {"role": "assistant", "content": "Hello!"}]
    ours, theirs = PretrainedTokenizer(folders / "llama3", "python"), AutoTokenizer.from_pretrained(folders / "llama3")
    for gen in (False, True):
        text = ours.apply_chat_template(msgs, add_generation_prompt=gen)
        assert text == theirs.apply_chat_template(msgs, add_generation_prompt=gen, tokenize=False)
        assert ours.apply_chat_template(msgs, add_generation_prompt=gen, tokenize=True) == theirs(text, add_special_tokens=False)["input_ids"]
    strict, ref = PretrainedTokenizer(folders / "t5"), AutoTokenizer.from_pretrained(folders / "t5")
    ok = [{"role": "user", "content": 'say "é"'}, {"role": "assistant", "content": "é"}]
    assert strict.apply_chat_template(ok) == ref.apply_chat_template(ok, tokenize=False)

BAD = [  # (what, call, error type, message)
    ("unknown backend", lambda f: PretrainedTokenizer(f / "gpt2", "rust"), ValueError, "backend='rust' is not one of"),
    ("no tokenizer.json", lambda f: PretrainedTokenizer(f), FileNotFoundError, "has no tokenizer.json"),
    ("python engine on Unigram", lambda f: PretrainedTokenizer(f / "t5", "python"), ValueError, "this tokenizer is a Unigram model"),
    ("template that raises", lambda f: PretrainedTokenizer(f / "t5").apply_chat_template([{"role": "assistant", "content": "x"}]),
     ValueError, "the chat template refused these messages: roles must alternate"),
    ("no chat template", lambda f: PretrainedTokenizer(f / "bert").apply_chat_template([{"role": "user", "content": "x"}]),
     ValueError, "has no chat template"),
    ("messages not dicts", lambda f: PretrainedTokenizer(f / "llama3").apply_chat_template(["hi"]), ValueError, "messages must be a list of dicts"),
    ("padding without a pad token", lambda f: PretrainedTokenizer(f / "gpt2")(["a", "a b c"]), ValueError, "has no pad token"),
    ("uneven rows as tensors", lambda f: PretrainedTokenizer(f / "bert")(["a", "a b c"], padding=False), ValueError, "pass padding=True"),
    ("bad padding", lambda f: PretrainedTokenizer(f / "bert")(["a"], padding="max_length"), ValueError, "padding='max_length'"),
    ("bad padding side", lambda f: PretrainedTokenizer(f / "bert")(["a"], padding_side="up"), ValueError, "padding_side='up'"),
    ("id outside the vocabulary", lambda f: PretrainedTokenizer(f / "gpt2", "python").decode([600]), ValueError, "token id 600 is outside"),
    ("not a string", lambda f: PretrainedTokenizer(f / "gpt2").encode(b"bytes"), TypeError, "str"),
]

@pytest.mark.parametrize("what,call,err,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_input(folders, tmp_path, what, call, err, msg):
    if what == "no tokenizer.json": folders = tmp_path
    with pytest.raises(err, match=msg): call(folders)

def test_unknown_model_type(folders, tmp_path):
    data = json.loads((folders / "bert" / "tokenizer.json").read_text())
    data["model"]["type"] = "CharacterTrie"
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="tokenizer model of type 'CharacterTrie': expected one of"): PretrainedTokenizer(tmp_path)

def hub_cache(root: Path, repo: str, files: Path) -> Path:
    "A Hugging Face cache holding `files` as the main snapshot of `repo`, laid out as huggingface_hub writes it (blobs + links)."
    base = root / ("models--" + repo.replace("/", "--"))
    sha = "1234567890abcdef1234567890abcdef12345678"
    snap = base / "snapshots" / sha
    (base / "blobs").mkdir(parents=True)
    for f in files.iterdir():
        blob = base / "blobs" / f"blob-{f.name}"
        shutil.copy(f, blob)
        (snap / f.name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(sha)
    return root

def test_hub_names_from_the_cache(folders, tmp_path, monkeypatch):
    import huggingface_hub.constants as C
    monkeypatch.setattr(C, "HF_HUB_OFFLINE", True)
    from transformers import GPT2Config, GPT2LMHeadModel
    files = tmp_path / "files"
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=600, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)).eval()
    hf.save_pretrained(files)
    for f in (folders / "gpt2").iterdir(): shutil.copy(f, files)
    cache = hub_cache(tmp_path / "cache", "someone/tiny-gpt2", files)
    folder = resolve_checkpoint("someone/tiny-gpt2", cache_dir=cache)
    assert (folder / "config.json").is_file() and folder.is_relative_to(cache)
    model, tok = from_pretrained("someone/tiny-gpt2", cache_dir=cache), load_tokenizer("someone/tiny-gpt2", "python", cache_dir=cache)
    ids = torch.tensor([tok.encode("def f(x): return x")])
    torch.testing.assert_close(model(ids), hf(ids).logits, atol=1e-5, rtol=0)
    with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache and the Hub cannot be reached.*hf download someone/other"):
        from_pretrained("someone/other", cache_dir=cache)
    with pytest.raises(FileNotFoundError, match="there is no folder ./nope"): from_pretrained("./nope")
    with pytest.raises(FileNotFoundError, match="neither a folder nor a valid Hub name"): from_pretrained("bad name!")

def test_bin_only_folder_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(FileNotFoundError, match="safetensors only, never pickled .bin"): from_pretrained(tmp_path)

def test_sentence_transformers_folder(folders, tmp_path):
    from transformers import BertConfig, BertModel
    from sentence_transformers import SentenceTransformer
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                max_position_embeddings=64))  # with its pooler, as all-MiniLM-L6-v2 ships
    for p in bert.parameters(): p.data.normal_(0, 0.3)  # every tensor away from its initial value
    st = tmp_path / "st"
    bert.save_pretrained(st)
    for f in (folders / "bert").iterdir(): shutil.copy(f, st)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    (st / "modules.json").write_text(json.dumps(modules))
    (st / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 24, "do_lower_case": False}))
    (st / "1_Pooling").mkdir()
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (st / "2_Normalize").mkdir()
    texts = ["how do I sort a list", "sorting lists in place", "a dictionary maps keys to values"]
    ref = torch.as_tensor(SentenceTransformer(str(st), device="cpu").encode(texts))
    model, tok = from_pretrained(st), load_tokenizer(st)
    batch = tok(texts)
    ours = model.embed(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(3))
    assert model.sentence_settings == {"pooling": "mean", "normalize": True, "max_seq_length": 24}
    with pytest.raises(ValueError, match="takes at most max_seq_length=24"): model.embed(tok(["word " * 40])["input_ids"])
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(ValueError, match="pooling 'max_tokens' is not supported"): from_pretrained(st)

def test_bert_checkpoint_with_its_pretraining_heads(tmp_path):
    "bert-base-uncased ships BertForPreTraining's weights (pooler, next-sentence head) under architectures=[BertForMaskedLM]."
    from transformers import BertConfig, BertForPreTraining, BertForMaskedLM
    torch.manual_seed(0)
    BertForPreTraining(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64)).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "architectures": ["BertForMaskedLM"]}))
    with pytest.warns(UserWarning, match=r"not loaded: \['bert.pooler.dense.bias', 'bert.pooler.dense.weight', "
                                         r"'cls.seq_relationship.bias', 'cls.seq_relationship.weight'\]"):
        ours = from_pretrained(tmp_path)
    ids = torch.randint(0, 300, (2, 9))
    torch.testing.assert_close(ours(ids), BertForMaskedLM.from_pretrained(tmp_path).eval()(ids).logits, atol=1e-5, rtol=0)

def test_hub_name_that_does_not_exist(tmp_path, monkeypatch):
    "Online, a name the Hub does not know: a local server on 127.0.0.1 answers as the Hub does (404, RepoNotFound)."
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import huggingface_hub.constants as C
    class Hub(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("X-Error-Message", "Repository not found")
            self.end_headers()
        do_HEAD = do_GET
        def log_message(self, *args): pass
    server = HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(C, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(C, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(FileNotFoundError, match="'someone/no-such-model' is neither a folder nor a model on the Hugging Face Hub"):
            from_pretrained("someone/no-such-model", cache_dir=tmp_path)
        assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing written into the cache
    finally: server.shutdown()
