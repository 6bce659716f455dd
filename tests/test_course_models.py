"""Course models (chapter 11, "Course models: trained once, used by the later chapters"): the cache keyed by
a hash of the recipe, a cold call that trains once and a warm one that only loads, the cold path equal to the
chapter's own GPT, the refusals of `save_course_model`, two processes asking at once, and an interrupted save.

Every test uses a temporary `LLMBOOK_CACHE` and `IN_TEST=1` (recipes cut to 10 steps). The key test uses the
real "gpt" recipe, and so does one case of the chapter-equality test (with its evaluations cut to 2 batches);
the others, which train, swap it for `SMALL` (one narrow layer with dropout, a 300-token vocabulary, one
validation batch) to stay quick; the "bert" tests swap its recipe for `BERT_SMALL` in the same way (with
dropout, so that the chapter-path test also compares the dropout masks)."""
import json, os, re, subprocess, sys, time
from pathlib import Path
import pytest
import torch
import llmbook.hub as hub
import llmbook.pretraining as P
from llmbook.core import seed_everything
from llmbook.data import word_heads
from llmbook.tokens import BPETokenizer
from llmbook.training import Trainer

SMALL = dict(preset_name="tiny-gpt2", corpus="pydocs", vocab_size=300, block_size=32,
             model_overrides=dict(d_model=32, n_layers=1, n_heads=2, max_seq_len=32, dropout=0.1),
             max_steps=400, batch_size=16, lr=2e-3, seed=0, eval_batches=1)
TEXT = "The with statement is used to wrap the execution of a block."
WHOLE = ["model", "recipe.json", "tokenizer.json"]  # what a course model's folder holds

@pytest.fixture
def course(tmp_path, monkeypatch):
    "The course folder of an empty, temporary cache, with nbdev_test's short recipes."
    monkeypatch.setenv("LLMBOOK_CACHE", str(tmp_path))
    monkeypatch.setenv("IN_TEST", "1")
    return tmp_path / "course"

@pytest.fixture
def small(course, monkeypatch):
    "As `course`, with the quick recipe `SMALL` in place of the real 'gpt' one."
    monkeypatch.setitem(P.COURSE_RECIPES, "gpt", SMALL)
    return course

def entries(course: Path) -> list[str]:
    "Everything in the course folder but the lock files (which stay, empty, by design)."
    return sorted(p.name for p in course.iterdir() if not p.name.endswith(".lock")) if course.exists() else []

def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

def no_training(*args, **kwargs): pytest.fail("a cached course model must be loaded, not trained")

def test_cold_call_trains_once_and_warm_call_loads(small, monkeypatch):
    logs = []
    model, tok = P.course_model("gpt", progress=False, log=logs.append)
    assert len(logs) == 1 and "not in the cache yet" in logs[0] and "(10 steps;" in logs[0], logs
    folder = P.course_dir("gpt")
    assert folder.parent == small and re.fullmatch(r"gpt-[0-9a-f]{12}", folder.name), folder
    assert entries(small) == [folder.name]  # no .tmp-* or .old-* left beside it
    assert sorted(p.name for p in folder.iterdir()) == WHOLE
    assert sorted(p.name for p in (folder / "model").iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((folder / "recipe.json").read_text())
    assert saved["name"] == "gpt" and saved["version"] == P.COURSE_VERSION
    assert saved["recipe"] == {**SMALL, "max_steps": 10, "eval_batches": 2}
    assert 0 < saved["valid_loss"] < 6.0  # evaluated once at the end; log(300) = 5.7 is the untrained loss
    seed_everything(SMALL["seed"])  # the weights it started from (as `pretrain` builds them)
    untrained = P.build_model("tiny-gpt2", tok, **SMALL["model_overrides"])
    assert not same_weights(model, untrained)

    monkeypatch.setattr(P, "pretrain", no_training)
    again, again_tok = P.course_model("gpt", progress=False, log=logs.append)
    assert len(logs) == 1  # nothing said: it did not train
    x = torch.tensor([tok.encode(TEXT)[:SMALL["block_size"]]])
    with torch.no_grad(): assert torch.equal(again(x), model(x))
    assert same_weights(again, model)
    assert again_tok.encode(TEXT) == tok.encode(TEXT) and again_tok.vocab_size == tok.vocab_size == 300
    assert again_tok.special_tokens == tok.special_tokens == {"<|endoftext|>": 299}

def changed(value):
    "Another value of a recipe field's type."
    if isinstance(value, bool): return not value
    if isinstance(value, (int, float)): return value * 2 + 1
    if isinstance(value, str): return value + "x"
    raise TypeError(value)

def test_the_key_is_the_whole_recipe_and_the_version(course, monkeypatch):
    recipe = P.course_recipe("gpt")  # the real one, cut to 10 steps under IN_TEST
    assert recipe == {**P.COURSE_RECIPES["gpt"], "max_steps": 10, "eval_batches": 2} and P.COURSE_RECIPES["gpt"]["max_steps"] > 10
    recipe["model_overrides"]["d_model"] += 1  # a copy: the table itself is untouched
    assert P.course_recipe("gpt")["model_overrides"] == P.COURSE_RECIPES["gpt"]["model_overrides"]
    recipe = P.course_recipe("gpt")
    folder = P.course_dir("gpt")
    assert folder.parent == course and re.fullmatch(r"gpt-[0-9a-f]{12}", folder.name)
    assert P.course_dir("gpt", recipe) == folder
    assert P.course_dir("gpt", dict(reversed(list(recipe.items())))) == folder  # the order of the fields does not count
    variants = {k: {**recipe, k: changed(v)} for k, v in recipe.items() if k != "model_overrides"}
    variants |= {f"model_overrides.{k}": {**recipe, "model_overrides": {**recipe["model_overrides"], k: changed(v)}}
                 for k, v in recipe["model_overrides"].items()}
    variants["model_overrides+n_kv_heads"] = {**recipe, "model_overrides": {**recipe["model_overrides"], "n_kv_heads": 2}}
    assert {"max_steps", "lr", "seed", "model_overrides.d_model", "model_overrides.dropout"} <= set(variants)
    folders = {k: P.course_dir("gpt", r) for k, r in variants.items()}
    assert len(set(folders.values()) | {folder}) == len(variants) + 1, folders
    assert P.course_dir("gpt2", recipe).name[len("gpt2-"):] != folder.name[len("gpt-"):]  # the name counts too

    monkeypatch.delenv("IN_TEST")  # a learner's run: the full recipe, another folder than the tests' 10 steps
    assert P.course_recipe("gpt") == P.COURSE_RECIPES["gpt"]
    assert P.course_dir("gpt") not in (folder, *folders.values())
    monkeypatch.setenv("IN_TEST", "1")
    monkeypatch.setattr(P, "COURSE_VERSION", P.COURSE_VERSION + 1)
    assert P.course_dir("gpt") != folder and P.course_dir("gpt").name.startswith("gpt-")
    unknown = r"unknown course model 'bart': expected one of \['bert', 'gpt', 't5'\]"
    for call in (lambda: P.course_recipe("bart"), lambda: P.course_dir("bart"), lambda: P.course_model("bart")):
        with pytest.raises(ValueError, match=unknown):
            call()
    assert entries(course) == []

def test_a_changed_recipe_trains_again(small, monkeypatch):
    logs = []
    first, _ = P.course_model("gpt", progress=False, log=logs.append)
    old = P.course_dir("gpt")
    monkeypatch.setitem(P.COURSE_RECIPES, "gpt", {**SMALL, "lr": 1e-3})
    second, _ = P.course_model("gpt", progress=False, log=logs.append)
    assert len(logs) == 2 and P.course_dir("gpt") != old
    assert entries(small) == sorted([old.name, P.course_dir("gpt").name])
    assert not same_weights(first, second)  # trained with the new learning rate, not the old model reloaded

@pytest.mark.parametrize("recipe", ["small", "real"])
def test_the_cold_path_is_the_chapters_path(course, monkeypatch, recipe):
    "`course_model`'s training equals chapter 11's GPT built piece by piece, to the last bit (dropout included)."
    real = {**P.COURSE_RECIPES["gpt"], "eval_batches": 2}  # the real recipe, its evaluations cut to 2 batches
    monkeypatch.setitem(P.COURSE_RECIPES, "gpt", SMALL if recipe == "small" else real)
    logs = []
    model, tok = P.course_model("gpt", progress=False, log=logs.append)
    assert len(logs) == 1
    r = P.course_recipe("gpt")
    # chapter 11, "Text and a tokenizer" and "A GPT on Python's documentation", with the recipe's values
    train_docs, valid_docs = P.load_documents(r["corpus"])
    train_text = "\n\n".join(train_docs)  # as load_texts joins them
    hand_tok = P.train_tokenizer(train_text, r["vocab_size"])
    block_size = r["block_size"]
    train_ds = P.lm_data(train_docs, hand_tok, block_size)
    valid_ds = P.lm_data(valid_docs, hand_tok, block_size)
    seed_everything(r["seed"])
    gpt = P.build_model(r["preset_name"], hand_tok, **r["model_overrides"])
    steps = r["max_steps"]
    trainer = Trainer(gpt, train_ds, valid_data=valid_ds, max_steps=steps, batch_size=r["batch_size"], lr=r["lr"],
                      seed=r["seed"], eval_every=max(1, steps // 4), eval_batches=2, plot=False, progress=False)
    assert r["model_overrides"]["dropout"] > 0  # the random dropout masks must match too
    trainer.fit()
    assert trainer.step == steps == 10
    assert hand_tok.encode(train_text[:3000]) == tok.encode(train_text[:3000])
    assert hand_tok.special_tokens == tok.special_tokens
    seed_everything(r["seed"])
    untrained = P.build_model(r["preset_name"], hand_tok, **r["model_overrides"])
    assert not same_weights(gpt, untrained)
    diffs = {k: (v - model.state_dict()[k]).abs().max().item() for k, v in gpt.state_dict().items()}
    assert max(diffs.values()) == 0.0, {k: d for k, d in diffs.items() if d}
    assert same_weights(gpt, model)

def test_save_course_model_refuses_other_training_and_replaces_atomically(small, monkeypatch):
    r = P.course_recipe("gpt")
    trainer, tok = P.pretrain(**r, progress=False, plot=False)
    def refused(match):
        with pytest.raises(ValueError, match=match): P.save_course_model("gpt", trainer, tok)
    with pytest.raises(ValueError, match=r"unknown course model 'bart': expected one of \['bert', 'gpt', 't5'\]"):
        P.save_course_model("bart", trainer, tok)
    c = trainer.config
    for field, value in (("max_steps", 11), ("lr", 1e-3), ("batch_size", 8), ("seed", 1)):
        kept = getattr(c, field)
        setattr(c, field, value)
        refused(rf"not trained with the recipe of course model 'gpt': {field}: {value!r}, recipe {kept!r}")
        setattr(c, field, kept)
    model = trainer.model
    trainer.model = P.build_model("tiny-gpt2", tok, **{**r["model_overrides"], "d_model": 64})
    refused(r"model d_model: 64, recipe 32")
    trainer.model = model
    trainer.step = 5
    refused(r"trained 5 of its 10 steps")
    trainer.step = 10
    other_tok = P.train_tokenizer("\n\n".join(P.load_documents("pydocs")[0]), 280)
    with pytest.raises(ValueError, match=r"vocab_size: 280, recipe 300"): P.save_course_model("gpt", trainer, other_tok)
    assert entries(small) == []  # refused before anything was written

    folder = P.save_course_model("gpt", trainer, tok)
    assert folder == P.course_dir("gpt") and sorted(p.name for p in folder.iterdir()) == WHOLE
    first_id = json.loads((folder / "model" / "config.json").read_text())["save_id"]
    (folder / "left-by-the-first-save").write_text("")
    assert P.save_course_model("gpt", trainer, tok) == folder  # again: the new copy takes the old one's place
    assert sorted(p.name for p in folder.iterdir()) == WHOLE and entries(small) == [folder.name]  # no .old-*, .tmp-*
    second_id = json.loads((folder / "model" / "config.json").read_text())["save_id"]
    assert second_id != first_id

    tokenizer_save = BPETokenizer.save
    def fail(*args, **kwargs): raise OSError("disk full")
    monkeypatch.setattr(BPETokenizer, "save", fail)  # a replacement interrupted after the weights were written
    with pytest.raises(OSError, match="disk full"): P.save_course_model("gpt", trainer, tok)
    assert entries(small) == [folder.name] and sorted(p.name for p in folder.iterdir()) == WHOLE
    assert json.loads((folder / "model" / "config.json").read_text())["save_id"] == second_id  # the old copy, whole
    monkeypatch.setattr(BPETokenizer, "save", tokenizer_save)

    monkeypatch.setattr(P, "pretrain", no_training)
    loaded, loaded_tok = P.course_model("gpt", progress=False, log=no_training)
    assert same_weights(loaded, trainer.model) and loaded_tok.encode(TEXT) == tok.encode(TEXT)

@pytest.mark.parametrize("where", ["weights", "tokenizer"])
def test_an_interrupted_save_leaves_no_folder(small, monkeypatch, where):
    real_save, tokenizer_save = hub.save, BPETokenizer.save
    def save_then_fail(model, folder, *args, **kwargs):
        real_save(model, folder, *args, **kwargs)  # the weights are on disk when it fails
        raise OSError("disk full")
    def interrupted(*args, **kwargs): raise KeyboardInterrupt  # Ctrl-C in the middle of the save
    if where == "weights": monkeypatch.setattr(hub, "save", save_then_fail)
    else: monkeypatch.setattr(BPETokenizer, "save", interrupted)
    logs = []
    with pytest.raises(OSError if where == "weights" else KeyboardInterrupt):
        P.course_model("gpt", progress=False, log=logs.append)
    assert len(logs) == 1 and entries(small) == []  # no folder, no temporary one
    monkeypatch.setattr(hub, "save", real_save)
    monkeypatch.setattr(BPETokenizer, "save", tokenizer_save)
    model, tok = P.course_model("gpt", progress=False, log=logs.append)
    assert len(logs) == 2  # the next call trained
    assert entries(small) == [P.course_dir("gpt").name]
    assert sorted(p.name for p in P.course_dir("gpt").iterdir()) == WHOLE

RACER = """
import json, sys, time
from pathlib import Path
import torch
import llmbook.pretraining as P
P.COURSE_RECIPES["gpt"] = json.loads(sys.argv[1])
here, who = Path(sys.argv[2]), sys.argv[3]
(here / f"ready-{who}").touch()
while not (here / "go").exists(): time.sleep(0.005)  # both start together
def log(message):
    with open(here / f"log-{who}", "a") as f: f.write(message + "\\n")
model, tok = P.course_model("gpt", progress=False, log=log)
torch.save(model.state_dict(), here / f"weights-{who}.pt")
"""

def test_two_processes_at_once_train_it_once(small, tmp_path):
    here = tmp_path / "race"
    here.mkdir()
    env = {**os.environ, "LLMBOOK_CACHE": str(small.parent), "IN_TEST": "1", "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, json.dumps(SMALL), str(here), who], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for who in "ab"]
    try:
        deadline = time.monotonic() + 90
        while not all((here / f"ready-{w}").exists() for w in "ab"):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.poll() for p in procs]
            time.sleep(0.05)
        (here / "go").touch()
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None: p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    logs = [line for w in "ab" if (here / f"log-{w}").exists() for line in (here / f"log-{w}").read_text().splitlines()]
    assert len(logs) == 1 and "not in the cache yet" in logs[0], logs  # exactly one of them trained
    a, b = (torch.load(here / f"weights-{w}.pt", weights_only=True) for w in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    folder = P.course_dir("gpt")
    assert entries(small) == [folder.name]  # one folder, no temporary one
    assert sorted(p.name for p in folder.iterdir()) == WHOLE

BERT_SMALL = dict(preset_name="tiny-bert", corpus="pydocs", vocab_size=300, block_size=32, whole_words=True, mask_prob=0.4,
                  model_overrides=dict(d_model=32, n_layers=1, n_heads=2, max_seq_len=32, dropout=0.1, pre_norm=True),
                  max_steps=400, batch_size=16, lr=2e-3, seed=0, eval_batches=1)

def test_the_bert_recipe_masks_whole_words_and_is_kept_whole(course, monkeypatch):
    "The real 'bert' recipe masks whole words; its course model is `pretrain`'s, and a model masked otherwise is refused."
    real = P.COURSE_RECIPES["bert"]
    assert real["whole_words"] is True and real["mask_prob"] == 0.4 and P.course_recipe("bert")["max_steps"] == 10
    monkeypatch.setitem(P.COURSE_RECIPES, "bert", BERT_SMALL)
    logs = []
    model, tok = P.course_model("bert", progress=False, log=logs.append)
    assert len(logs) == 1 and "course model 'bert' is not in the cache yet" in logs[0]
    folder = P.course_dir("bert")
    assert re.fullmatch(r"bert-[0-9a-f]{12}", folder.name) and sorted(p.name for p in folder.iterdir()) == WHOLE
    saved = json.loads((folder / "recipe.json").read_text())["recipe"]
    assert saved["whole_words"] is True and saved["mask_prob"] == 0.4 and model.config.pre_norm
    assert set(tok.special_tokens) == {"[PAD]", "[MASK]", "[CLS]", "[SEP]"}
    r = P.course_recipe("bert")
    trainer, same_tok = P.pretrain(**r, progress=False, plot=False)  # the same recipe by hand
    assert same_weights(trainer.model, model) and same_tok.encode(TEXT) == tok.encode(TEXT)
    batch = trainer.collate(trainer.train_data[:64])  # the trainer's masking: whole words, never a blank
    pieces = tok.pieces(range(tok.vocab_size))
    chosen, ids = batch["labels"] != -100, batch["labels"]
    assert trainer.collate.prob == 0.4
    assert chosen.any() and not any(pieces[i].isspace() for i in ids[chosen].tolist())
    starts = P.starts_word(pieces)
    never = torch.tensor(sorted(set(tok.special_tokens.values()) | set(P.blank_ids(pieces))))
    originals = torch.stack(trainer.train_data[:64])
    heads = word_heads(originals, starts, ~torch.isin(originals, never))
    for b in range(len(originals)):
        for first in heads[b][chosen[b]].unique().tolist():  # every chosen word is chosen whole
            assert chosen[b][heads[b] == first].all(), (b, first)
    assert any((heads[b][chosen[b]].bincount() > 1).any() for b in range(len(originals)))  # some words of 2+ tokens
    _, token_level = P.mlm_data(" ".join(["x"] * 100), tok, 32, prob=0.4)
    whole = trainer.collate
    trainer.collate = token_level  # as if trained with token-level masking
    with pytest.raises(ValueError, match=r"not trained with the recipe of course model 'bert': whole_words: False, recipe True$"):
        P.save_course_model("bert", trainer, tok)
    trainer.collate = whole
    whole.prob = 0.15  # as if trained with BERT's 15%
    with pytest.raises(ValueError, match=r"not trained with the recipe of course model 'bert': mask_prob: 0.15, recipe 0.4$"):
        P.save_course_model("bert", trainer, tok)
    with pytest.raises(ValueError, match=r"whole_words=True is masked-LM masking, for encoders; preset 'tiny-gpt2' is a decoder"):
        P.pretrain("tiny-gpt2", whole_words=True, fit=False)
    with pytest.raises(ValueError, match=r"mask_prob=0.3 is masked-LM masking, for encoders; preset 'tiny-t5' is a seq2seq"):
        P.pretrain("tiny-t5", mask_prob=0.3, fit=False)
    with pytest.raises(ValueError, match=r"mask_prob must be in \(0, 1\], got 0"):
        P.pretrain("tiny-bert", mask_prob=0, fit=False)

def test_the_bert_cold_path_is_the_chapters_path(course, monkeypatch):
    "`course_model('bert')` equals chapter 11's BERT built piece by piece (whole words, 40%), to the last bit."
    monkeypatch.setitem(P.COURSE_RECIPES, "bert", {**BERT_SMALL, "eval_batches": 2})
    model, tok = P.course_model("bert", progress=False, log=lambda m: None)
    r = P.course_recipe("bert")
    # chapter 11, "A BERT that fills in blanks", with the recipe's values
    train_docs, valid_docs = P.load_documents(r["corpus"])
    train_text, valid_text = "\n\n".join(train_docs), "\n\n".join(valid_docs)
    bert_tok = P.train_tokenizer(train_text, r["vocab_size"], family="encoder")
    seqs, mlm = P.mlm_data(train_text, bert_tok, r["block_size"], whole_words=True, prob=r["mask_prob"])
    valid_seqs, valid_mlm = P.mlm_data(valid_text, bert_tok, r["block_size"], generator=torch.Generator().manual_seed(1),
                                       whole_words=True, prob=r["mask_prob"])
    valid_masked = P.masked_once(valid_seqs, valid_mlm)
    seed_everything(r["seed"])
    bert = P.build_model(r["preset_name"], bert_tok, **r["model_overrides"])
    steps = r["max_steps"]
    trainer = Trainer(bert, seqs, collate=mlm, valid_data=valid_masked, valid_collate=P.stack_examples, max_steps=steps,
                      batch_size=r["batch_size"], lr=r["lr"], eval_every=max(1, steps // 4), eval_batches=2,
                      plot=False, progress=False)
    assert r["model_overrides"]["dropout"] > 0 and steps == 10  # the random dropout masks must match too
    trainer.fit()
    assert bert_tok.encode(train_text[:3000]) == tok.encode(train_text[:3000])
    assert same_weights(bert, model)
    assert P.save_course_model("bert", trainer, bert_tok) == P.course_dir("bert")  # and it is accepted as the course BERT

def test_the_t5_cold_path_is_the_chapters_path(course):
    "`course_model('t5')` (the real recipe, 10 steps under IN_TEST) equals chapter 11's T5 built piece by piece."
    model, tok = P.course_model("t5", progress=False, log=lambda m: None)
    r = P.course_recipe("t5")
    assert r["task"] == "dates" and r["max_steps"] == 10 and P.COURSE_RECIPES["t5"]["max_steps"] == 500
    # chapter 11, "An encoder-decoder that reads dates", with the recipe's values
    task = P.synthetic_task(r["task"], **P.TASK_SPLITS)
    text = "\n".join(f"{s}\n{t}" for s, t in task["train"])
    t5_tok = P.train_tokenizer(text, r["vocab_size"], family="seq2seq")
    pairs, s2s = P.seq2seq_data(task["train"], t5_tok)
    valid_pairs, _ = P.seq2seq_data(task["valid"], t5_tok)
    seed_everything(r["seed"])
    t5 = P.build_model(r["preset_name"], t5_tok, **r["model_overrides"])
    trainer = Trainer(t5, pairs, collate=s2s, valid_data=valid_pairs, max_steps=r["max_steps"],
                      batch_size=r["batch_size"], lr=r["lr"], eval_every=2, eval_batches=2, plot=False,
                      progress=False)
    trainer.fit()
    assert t5_tok.encode("Friday, March 5, 2021") == tok.encode("Friday, March 5, 2021")
    assert same_weights(t5, model)  # to the last bit
    assert P.save_course_model("t5", trainer, t5_tok) == P.course_dir("t5")  # accepted as the course T5
    trainer.train_data = P.seq2seq_data(P.synthetic_task("numbers", n_train=50)["train"], t5_tok)[0]
    with pytest.raises(ValueError, match=r"training data: not the 'dates' task of the recipe"):
        P.save_course_model("t5", trainer, t5_tok)  # the same settings on another task are refused
