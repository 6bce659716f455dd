"""Issue 16: bad inputs, table-driven. Each row is (what, a call, the error type, words the message must hold):
the message names the value, what was expected, and what to do. Inputs that must give the right result instead
are in `test_nothing_silent.py`."""
import json, warnings
import pytest
import torch
from llmbook.blocks import TransformerConfig, preset
from llmbook.decoder import Decoder
from llmbook.encoder import Encoder
from llmbook.seq2seq import Seq2Seq
from llmbook.generation import generate
from llmbook.hub import carry_generation, UnsupportedConfigError

def cfg(**kw): return TransformerConfig(**{**dict(vocab_size=64, d_model=32, n_heads=4, n_layers=1, max_seq_len=32), **kw})

_models = {}
def model(name="tiny-gpt2"):
    if name not in _models:
        torch.manual_seed(0)
        build = {"tiny-gpt2": Decoder, "tiny-llama": Decoder, "tiny-bert": Encoder, "tiny-t5": Seq2Seq}[name]
        _models[name] = build(preset(name)).eval()
    return _models[name]

IDS = torch.randint(3, 200, (2, 5), generator=torch.Generator().manual_seed(0))

CONFIG = [  # item 4: invalid values refused, not replaced or accepted
    ("n_kv_heads=0", lambda: cfg(n_kv_heads=0), ValueError, "n_kv_heads must be an int >= 1 or None (the default), got 0"),
    ("d_ff=0", lambda: cfg(d_ff=0), ValueError, "d_ff must be an int >= 1 or None (the default), got 0"),
    ("n_decoder_layers=0", lambda: cfg(n_decoder_layers=0), ValueError, "n_decoder_layers must be an int >= 1 or None"),
    ("pad_vocab_multiple=0", lambda: cfg(pad_vocab_multiple=0), ValueError, "pad_vocab_multiple must be an int >= 1 or None"),
    ("head_dim=0", lambda: cfg(head_dim=0), ValueError, "head_dim must be an int >= 1 or None"),
    ("norm_eps<0", lambda: cfg(norm_eps=-1e-6), ValueError, "norm_eps must be a finite number >= 0, got -1e-06"),
    ("norm_eps=nan", lambda: cfg(norm_eps=float("nan")), ValueError, "norm_eps must be a finite number >= 0, got nan"),
    ("rope_theta=0", lambda: cfg(position="rope", rope_theta=0.0), ValueError, "rope_theta must be a finite number > 0, got 0.0"),
    ("rope_theta<0", lambda: cfg(rope_theta=-5), ValueError, "rope_theta must be a finite number > 0, got -5"),
    ("attn_scale<0", lambda: cfg(attn_scale=-1.0), ValueError, "attn_scale must be a finite number > 0 or None"),
    ("dropout=1", lambda: cfg(dropout=1.0), ValueError, "dropout must be a finite number in [0, 1), got 1.0"),
    ("output_scale=0", lambda: cfg(output_scale=0), ValueError, "output_scale must be a finite number > 0, got 0"),
    ("init_std<0", lambda: cfg(init_std=-0.02), ValueError, "init_std must be a finite number >= 0, got -0.02"),
    ("vocab_size float", lambda: cfg(vocab_size=64.5), ValueError, "vocab_size must be an int >= 1, got 64.5"),
    ("n_layers bool", lambda: cfg(n_layers=True), ValueError, "n_layers must be an int >= 1, got True"),
    ("tie_embeddings str", lambda: cfg(tie_embeddings="false"), ValueError, "tie_embeddings must be True or False, got 'false'"),
    ("type_vocab_size<0", lambda: cfg(type_vocab_size=-1), ValueError, "type_vocab_size must be an int >= 0, got -1"),
    ("pos_offset<0", lambda: cfg(pos_offset=-2), ValueError, "pos_offset must be an int >= 0, got -2"),
    ("rel_buckets=1 (item 14)", lambda: cfg(position="relative", rel_buckets=1), ValueError, "relative positions need rel_buckets >= 4"),
    ("rel_buckets=2 (item 14)", lambda: cfg(position="relative", rel_buckets=2), ValueError, "got rel_buckets=2, rel_max_distance=128"),
    ("rel_max_distance < buckets (item 14)", lambda: cfg(position="relative", rel_buckets=32, rel_max_distance=8),
     ValueError, "rel_max_distance > rel_buckets // 2"),
    ("eos outside the vocabulary", lambda: cfg(eos_token_id=64), ValueError, "eos_token_id=64 is not a token id of the vocabulary [0, 64)"),
    ("eos list with a bad id", lambda: cfg(eos_token_id=[1, 99]), ValueError, "eos_token_id=[1, 99] is not a token id"),
    ("eos empty list", lambda: cfg(eos_token_id=[]), ValueError, "eos_token_id=[] lists no id: use None"),
    ("pad list", lambda: cfg(pad_token_id=[0, 1]), ValueError, "only eos_token_id may list several"),
    ("generation not a dict", lambda: cfg(generation=[("num_beams", 2)]), ValueError, "generation must be a dict of `generate` settings"),
    ("Decoder with n_decoder_layers", lambda: Decoder(cfg(n_decoder_layers=2)), ValueError,
     "n_decoder_layers=2 has no effect on a Decoder"),
    ("Encoder untied", lambda: Encoder(cfg(tie_embeddings=False)), ValueError,
     "tie_embeddings=False has no effect on an Encoder (BERT's masked-LM head always shares the token table): leave it at True"),
    ("Encoder head_bias", lambda: Encoder(cfg(head_bias=True)), ValueError, "head_bias=True has no effect on an Encoder"),
    ("Encoder output_scale", lambda: Encoder(cfg(output_scale=0.5)), ValueError, "output_scale=0.5 has no effect on an Encoder"),
]

MASKS = [  # item 3: attention_mask holds 0 and 1 only, and every row has a token
    ("additive all-zeros mask, decoder", lambda: model()(IDS, attention_mask=torch.zeros(2, 5)), ValueError,
     "row 0 of attention_mask is all 0 (no token to attend to)"),
    ("additive -inf mask, decoder", lambda: model()(IDS, attention_mask=torch.tensor([[0.0] * 5, [float("-inf")] + [0.0] * 4])),
     ValueError, "attention_mask holds -inf: expected 1 for a token and 0 for padding"),
    ("mask value 2", lambda: model("tiny-llama")(IDS, attention_mask=torch.full((2, 5), 2)), ValueError, "attention_mask holds 2"),
    ("mask value -1", lambda: model("tiny-bert")(IDS, attention_mask=-torch.ones(2, 5, dtype=torch.long)), ValueError,
     "attention_mask holds -1"),
    ("mask value 0.5 in generate", lambda: generate(model(), IDS, attention_mask=torch.full((2, 5), 0.5), max_new_tokens=2),
     ValueError, "attention_mask holds 0.5"),
    ("mask value 2 in generate", lambda: generate(model(), IDS, attention_mask=torch.full((2, 5), 2), max_new_tokens=2),
     ValueError, "attention_mask holds 2"),
    ("mask as a list", lambda: model()(IDS, attention_mask=[[1] * 5] * 2), TypeError, "attention_mask must be a tensor of 0s and 1s, got list"),
    ("seq2seq source mask all 0", lambda: model("tiny-t5")(IDS, IDS, attention_mask=torch.zeros(2, 5, dtype=torch.long)),
     ValueError, "row 0 of attention_mask is all 0"),
]

_LLAMA_CONFIG = cfg(max_seq_len=32)
GENERATION = [  # item 2: a checkpoint's generation settings are carried or refused by name
    ("typical_p", lambda: carry_generation({"typical_p": 0.9}, _LLAMA_CONFIG), UnsupportedConfigError,
     "generation settings ['typical_p=0.9'] are not supported by llmbook's generate"),
    ("decoder max_length < context", lambda: carry_generation({"max_length": 20 + 1}, _LLAMA_CONFIG), UnsupportedConfigError,
     "a decoder's max_length and min_length count the prompt too"),
    ("decoder min_length", lambda: carry_generation({"min_length": 5}, _LLAMA_CONFIG), UnsupportedConfigError,
     "from_hf(..., generation=False)"),
    ("bad_words_ids", lambda: carry_generation({"bad_words_ids": [[5]]}, _LLAMA_CONFIG), UnsupportedConfigError, "bad_words_ids=[[5]]"),
    ("invalid top_p", lambda: carry_generation({"top_p": 1.5}, _LLAMA_CONFIG), UnsupportedConfigError,
     "the checkpoint's generation settings are invalid: top_p must be in (0, 1], got 1.5"),
    ("eos outside the vocabulary", lambda: carry_generation({"eos_token_id": [1, 70]}, _LLAMA_CONFIG), UnsupportedConfigError,
     "eos_token_id 70 is not a token id of the vocabulary [0, 64)"),
    ("two bos ids", lambda: carry_generation({"bos_token_id": [1, 2]}, _LLAMA_CONFIG), UnsupportedConfigError,
     "llmbook takes one bos_token_id"),
]

GENERATE = [  # item 17: generate's arguments are checked for their type too
    ("max_new_tokens=True", lambda: generate(model(), IDS, max_new_tokens=True), ValueError, "max_new_tokens must be an int, got True"),
    ("do_sample='yes'", lambda: generate(model(), IDS, do_sample="yes"), ValueError, "do_sample must be True or False, got 'yes'"),
    ("seed=-1", lambda: generate(model(), IDS, seed=-1), ValueError, "seed must be an int >= 0, got -1"),
    ("streamer=5", lambda: generate(model(), IDS, streamer=5), TypeError, "streamer must be a function of each step's tokens"),
    ("generator=3", lambda: generate(model(), IDS, generator=3), TypeError, "generator must be a torch.Generator, got int"),
    ("temperature='hot'", lambda: generate(model(), IDS, do_sample=True, temperature="hot"), ValueError,
     "temperature must be a number, got 'hot'"),
]

CASES = CONFIG + MASKS + GENERATION + GENERATE

@pytest.mark.parametrize("what,call,error,words", CASES, ids=[c[0] for c in CASES])
def test_refused_with_a_clear_message(what, call, error, words):
    with pytest.raises(error) as e: call()
    assert words in str(e.value), f"{what}: {e.value}"

# --- the Trainer: items 5, 8 and the resume half of 16 (each call gets a fresh folder)
from llmbook.data import NextTokenDataset
from llmbook.training import Trainer

def trainer(out, resume=False, **kw):
    torch.manual_seed(0)
    data = NextTokenDataset(torch.arange(400) % 200, 8)
    return Trainer(Decoder(preset("tiny-gpt2", max_seq_len=16)), data, out=out, resume=resume, progress=False, plot=False,
                   **{"max_steps": 4, "batch_size": 2, **kw})

def one_run(folder, steps=1, **kw):
    t = trainer(folder, **kw)
    t.fit(steps)
    t.save_checkpoint()
    return t.last_checkpoint

def saved_by_two_processes(tmp):
    ck = one_run(tmp / "a")
    meta = json.loads((ck / "trainer.json").read_text())
    (ck / "trainer.json").write_text(json.dumps({**meta, "world_size": 2}))  # as rank 0 of 2 processes writes it
    return trainer(tmp / "a", resume=True)

def resume_into_another_runs_folder(tmp):
    one_run(tmp / "A")  # run A's checkpoints
    other = one_run(tmp / "B", steps=2)
    return trainer(tmp / "A", resume=other)

TRAINING = [
    ("resume 2 processes on 1 (item 5)", saved_by_two_processes, ValueError,
     "global batch of 4 examples (batch_size 2 x accumulate 1 x 2 process(es)); this run has 2"),
    ("resume 2 processes on 1: what to do", saved_by_two_processes, ValueError, "resume with 2 process(es), or accumulate=2 to keep it"),
    ("resume from B into A (item 8)", resume_into_another_runs_folder, ValueError, "already holds checkpoints of another run"),
    ("resume=True into an empty folder (item 16)", lambda tmp: trainer(tmp / "empty", resume=True), ValueError,
     "resume=True, but"),
]

@pytest.mark.parametrize("what,call,error,words", TRAINING, ids=[c[0] for c in TRAINING])
def test_training_refused_with_a_clear_message(what, call, error, words, tmp_path):
    with pytest.raises(error) as e: call(tmp_path)
    assert words in str(e.value), f"{what}: {e.value}"

# --- checkpoints: items 9 and 10; the optimizer: item 11; TrainConfig values (item 6's --weight-decay -1)
from llmbook import hub
from llmbook.finetune import add_lora
from llmbook.training import TrainConfig, make_optimizer

def interrupted_save(tmp):
    "A save that stopped between the two files: the new weights beside the old config.json."
    torch.manual_seed(0)
    hub.save(Decoder(preset("tiny-gpt2")), tmp / "m")
    hub.save(Decoder(preset("tiny-gpt2")), tmp / "newer")
    (tmp / "m" / "model.safetensors").write_bytes((tmp / "newer" / "model.safetensors").read_bytes())
    return hub.load(tmp / "m")

def frozen():
    m = Decoder(preset("tiny-gpt2"))
    m.requires_grad_(False)
    return make_optimizer(m)

def corrupt_hf_config(tmp):
    (tmp / "config.json").write_text('{"model_type": "gpt2",')
    return hub.from_hf(tmp)

CHECKPOINTS = [
    ("hub.save then a mismatched pair (item 9)", interrupted_save, ValueError,
     "model.safetensors and config.json were written by different saves"),
    ("hub.save of a LoRA model (item 10)", lambda tmp: hub.save(add_lora(Decoder(preset("tiny-gpt2"))), tmp / "l"), ValueError,
     "carry LoRA adapters (blocks.0.attn.q_proj, ...): hub.save writes plain models"),
    ("no trainable parameters (item 11)", lambda tmp: frozen(), ValueError, "has no trainable parameters"),
    ("corrupt config.json names the file (item 16)", corrupt_hf_config, ValueError, "config.json is not valid JSON"),
    ("weight_decay < 0", lambda tmp: TrainConfig(weight_decay=-1), ValueError, "weight_decay must be a finite number >= 0, got -1"),
    ("lr = 0", lambda tmp: TrainConfig(lr=0.0), ValueError, "lr must be a finite number > 0, got 0.0"),
    ("beta2 = 1", lambda tmp: TrainConfig(betas=(0.9, 1.0)), ValueError, "betas must be two numbers in [0, 1)"),
]

@pytest.mark.parametrize("what,call,error,words", CHECKPOINTS, ids=[c[0] for c in CHECKPOINTS])
def test_checkpoints_refused_with_a_clear_message(what, call, error, words, tmp_path):
    with pytest.raises(error) as e: call(tmp_path)
    assert words in str(e.value), f"{what}: {e.value}"

# --- shapes: items 12 and 13 (every family, the same checks)
EMPTY = torch.zeros(2, 0, dtype=torch.long)

def cache_of_two_rows():
    m = model("tiny-llama")
    cache = m.new_cache()
    m(IDS, cache=cache)
    return m(torch.randint(3, 200, (3, 1)), cache=cache)

SHAPES = [
    ("T=0, decoder", lambda: model()(EMPTY), ValueError, "input_ids has shape (2, 0): expected at least one row and one token"),
    ("B=0, encoder", lambda: model("tiny-bert")(torch.zeros(0, 4, dtype=torch.long)), ValueError, "input_ids has shape (0, 4)"),
    ("T=0, seq2seq decoder", lambda: model("tiny-t5")(IDS, EMPTY), ValueError, "decoder_input_ids has shape (2, 0)"),
    ("S=0, seq2seq source", lambda: model("tiny-t5")(EMPTY, IDS), ValueError, "input_ids has shape (2, 0)"),
    ("negative position_ids", lambda: model("tiny-llama")(IDS, position_ids=torch.full((2, 5), -1)), ValueError,
     "position_ids holds -1: positions start at 0"),
    ("float position_ids", lambda: model()(IDS, position_ids=torch.zeros(2, 5)), TypeError,
     "position_ids must be an integer tensor, got Tensor torch.float32"),
    ("1-D position_ids", lambda: model()(IDS, position_ids=torch.arange(5)), ValueError, "position_ids must have shape (2, 5), got (5,)"),
    ("wrong-batch position_ids", lambda: model()(IDS, position_ids=torch.zeros(3, 5, dtype=torch.long)), ValueError,
     "position_ids must have shape (2, 5), got (3, 5)"),
    ("cache reused with another batch", cache_of_two_rows, ValueError, "the cache holds 2 rows but the input has 3: start a new cache"),
    ("cache of another model", lambda: model("tiny-llama")(IDS, cache=model("tiny-llama").new_cache().__class__(5)), ValueError,
     "the cache has 5 layers but this stack has 2"),
]

@pytest.mark.parametrize("what,call,error,words", SHAPES, ids=[c[0] for c in SHAPES])
def test_shapes_refused_with_a_clear_message(what, call, error, words):
    with pytest.raises(error) as e: call()
    assert words in str(e.value), f"{what}: {e.value}"

# --- data helpers: item 7 and the data half of item 16
from llmbook.data import NextTokenDataset, pad_sequences, mask_tokens, Seq2SeqCollator

DATA = [
    ("float ids in NextTokenDataset", lambda: NextTokenDataset([1.5, 2.7, 3.2], 1), TypeError,
     "ids must be integer token ids, got torch.float32 values [1.5, 2.7, 3.2]"),
    ("stride=0", lambda: NextTokenDataset(list(range(10)), 2, stride=0), ValueError, "stride must be an int >= 1 (or None: block_size), got 0"),
    ("block_size float", lambda: NextTokenDataset(list(range(10)), 2.5), ValueError, "block_size must be an int >= 1, got 2.5"),
    ("float ids in pad_sequences", lambda: pad_sequences([[1.7, 2.2]], 0), TypeError, "sequence 0 must be integer token ids"),
    ("mask_id >= vocab_size", lambda: mask_tokens(torch.tensor([[1, 2]]), 10, 10), ValueError,
     "mask_id=10 is not a token id of the vocabulary [0, 10)"),
    ("mask_tokens with no ordinary token", lambda: mask_tokens(torch.tensor([[1, 2]]), 3, 4, special_ids=(0, 1, 2)), ValueError,
     "there is no ordinary token to mask"),
    ("Seq2SeqCollator with an empty target", lambda: Seq2SeqCollator(0, 0)([([1, 2], [3]), ([1], [])]), ValueError,
     "pair 1 has an empty target"),
]

@pytest.mark.parametrize("what,call,error,words", DATA, ids=[c[0] for c in DATA])
def test_data_refused_with_a_clear_message(what, call, error, words):
    with pytest.raises(error) as e: call()
    assert words in str(e.value), f"{what}: {e.value}"

# --- the CLI: item 6 (one line on stderr, exit status 2, nothing written)
from llmbook.cli import main

CLI = [
    (["--block-size", "0"], "block_size must be an int >= 1 (or None for the default), got 0"),
    (["--vocab-size", "0"], "vocab_size must be an int >= 1 (or None for the default), got 0"),
    (["--model", "d_model=32", "--model", "d_model=64"], "--model sets d_model twice"),
    (["--weight-decay", "-1"], "weight_decay must be a finite number >= 0, got -1.0"),
    (["--model", "dropout=0.5x"], "dropout must be a finite number in [0, 1), got '0.5x'"),
    (["--resume"], "resume=True, but"),
]

@pytest.mark.parametrize("args,words", CLI, ids=[" ".join(a) for a, _ in CLI])
def test_cli_refused_with_a_clear_message(args, words, tmp_path, capsys):
    try: code = main(["train", "--out", str(tmp_path / "out"), "--no-progress", "--steps", "1", *args])
    except SystemExit as e: code = e.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()

# --- downloads: items 15 and 17 (a small server in a thread, stopped at the end)
import gzip, http.server, socket, threading
from llmbook.data import load_text, DownloadError

class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def do_GET(self):
        if self.path == "/short":  # promises 100 bytes, sends 3
            self.send_response(200); self.send_header("Content-Length", "100"); self.end_headers(); self.wfile.write(b"abc")
            return
        body, coding = {"/gzip": (gzip.compress("Flat is better than nested.".encode()), "gzip"),
                        "/brotli": (b"\x0b\x02\x80", "br"), "/bad-gzip": (b"\x1f\x8bnot gzip", "gzip"),
                        "/bom": ("\ufeffSparse is better than dense.".encode(), None)}[self.path]
        self.send_response(200)
        if coding: self.send_header("Content-Encoding", coding)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)

@pytest.fixture(scope="module")
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown(); thread.join(timeout=10)

@pytest.fixture
def cache(tmp_path, monkeypatch): monkeypatch.setenv("LLMBOOK_CACHE", str(tmp_path / "cache"))

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]  # nobody listens once it is closed

DOWNLOADS = [
    ("truncated body", "/short", "the server sent 3 bytes and closed the connection before the end (97 more were expected)"),
    ("unknown compression", "/brotli", "the server sent it br-compressed, which llmbook cannot decompress"),
    ("corrupt gzip", "/bad-gzip", "the gzip-compressed body is corrupt"),
]

@pytest.mark.parametrize("what,path,words", DOWNLOADS, ids=[d[0] for d in DOWNLOADS])
def test_download_refused_with_a_clear_message(what, path, words, site, cache):
    with pytest.raises(DownloadError) as e: load_text(site + path)
    assert words in str(e.value), f"{what}: {e.value}"

def test_download_right_results(site, cache, tmp_path):
    "Item 17: a gzip-encoded response is the file's text; a UTF-8 byte-order mark is not part of the text."
    assert load_text(site + "/gzip") == "Flat is better than nested."
    assert load_text(site + "/bom") == "Sparse is better than dense."
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfA")
    assert load_text(tmp_path / "bom.txt") == "A"

def test_cli_unreachable_url_is_one_line(tmp_path, capsys, cache):
    "Item 15: an unreachable --file URL is a one-line error, not a DownloadError traceback."
    url = f"http://127.0.0.1:{closed_port()}/corpus.txt"
    code = main(["train", "--out", str(tmp_path / "out"), "--no-progress", "--steps", "1", "--file", url])
    err = capsys.readouterr().err
    assert code == 2 and f"llmbook: error: downloading {url} failed" in err and "Traceback" not in err, err

# --- item 16's other crashes, and item 17's bf16 checkpoint
from llmbook.tokens import BPETokenizer
from llmbook.training import token_loss

def bf16_checkpoint(tmp):
    torch.manual_seed(0)
    hub.save(Decoder(preset("tiny-llama")).to(torch.bfloat16), tmp / "m")
    return tmp / "m"

MORE = [
    ("BPETokenizer.load(folder)", lambda tmp: BPETokenizer.load(tmp), ValueError, "is a folder: pass the tokenizer file written by `save`"),
    ("hub.load on a missing GPU" if not torch.cuda.is_available() else "hub.load on a missing GPU index",
     lambda tmp: hub.load(bf16_checkpoint(tmp), device="cuda" if not torch.cuda.is_available() else "cuda:99"), ValueError,
     "but this machine has"),
    ("hub.load on a device that is not one", lambda tmp: hub.load(bf16_checkpoint(tmp), device="gpu"), ValueError, "device='gpu' is not a device"),
    ("float labels", lambda tmp: token_loss(torch.randn(2, 3, 10), torch.zeros(2, 3)), TypeError, "labels must be integer token ids, got torch.float32"),
]

@pytest.mark.parametrize("what,call,error,words", MORE, ids=[c[0] for c in MORE])
def test_more_refused_with_a_clear_message(what, call, error, words, tmp_path):
    with pytest.raises(error) as e: call(tmp_path)
    assert words in str(e.value), f"{what}: {e.value}"

def test_right_results(tmp_path):
    "int32 labels work in the loss; a bf16 checkpoint loads as bf16 (its rope frequencies stay float32)."
    logits, labels = torch.randn(2, 3, 10), torch.randint(0, 10, (2, 3))
    assert torch.equal(token_loss(logits, labels.int()), token_loss(logits, labels))
    m = hub.load(bf16_checkpoint(tmp_path))
    assert m.head.weight.dtype == torch.bfloat16 and m.pos.rope.inv_freq.dtype == torch.float32
    assert hub.load(tmp_path / "m", dtype=torch.float32).head.weight.dtype == torch.float32

def test_cli_ctrl_c_is_one_line(tmp_path, capsys, monkeypatch):
    "Item 16: Ctrl-C during `llmbook train` prints one line naming the last checkpoint, no traceback."
    from llmbook import training
    step = training.Trainer.train_step
    def interrupted(self):
        if self.step == 3: raise KeyboardInterrupt
        return step(self)
    monkeypatch.setattr(training.Trainer, "train_step", interrupted)
    code = main(["train", "--out", str(tmp_path / "out"), "--no-progress", "--steps", "6", "--save-every", "2",
                 "--model", "max_seq_len=32", "d_model=32", "n_layers=1", "--batch-size", "4", "--max-chars", "20000"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted at step 3; the last checkpoint is" in err and "checkpoint-0000002" in err, err
    assert "Traceback" not in err and "--resume" in err
