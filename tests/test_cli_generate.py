"""`llmbook generate` and `llmbook chat` on checkpoint folders written the way the Hub ships them (random weights)."""
import builtins, contextlib, io
import pytest, torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from llmbook.cli import main
from llmbook.generation import generate
from llmbook.hub import from_pretrained, load_tokenizer
from test_pretrained_tokenizers import gpt2_like, llama3_like

@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "gpt2"
    gpt2_like(folder)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=600, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)).save_pretrained(folder)
    return folder

@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "llama"
    llama3_like(folder)
    tok = load_tokenizer(folder)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=700, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                                 eos_token_id=tok.hf.token_to_id("<|end_of_text|>"))).save_pretrained(folder)
    return folder

def run(argv, lines=()):
    out, err, feed = io.StringIO(), io.StringIO(), iter(lines)
    def fake_input(prompt=""):
        print(prompt, end="")
        return next(feed)  # StopIteration would be a test bug: the chat must stop at the empty line
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "input", fake_input)
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()

def new_text(folder, ids, **settings):
    "The continuation `generate` picks for `ids`, decoded without special tokens (what the CLI prints)."
    model, tok = from_pretrained(folder), load_tokenizer(folder)
    out = generate(model, torch.tensor([ids]), **settings)[0, len(ids):].tolist()
    return tok.decode(out, skip_special_tokens=True)

@pytest.mark.parametrize("backend", ["hf", "python"])
def test_generate_streams_what_generate_picks(gpt2, backend):
    code, out, _ = run(["generate", gpt2, "def area(w, h):", "--max-new-tokens", 12, "--tokenizer-backend", backend, "--device", "cpu"])
    tok = load_tokenizer(gpt2)
    assert code == 0 and out == "def area(w, h):" + new_text(gpt2, tok.encode("def area(w, h):"), max_new_tokens=12) + "\n"

def test_generate_sampling_and_beams(gpt2):
    tok = load_tokenizer(gpt2)
    ids = tok.encode("x = ")
    code, out, _ = run(["generate", gpt2, "x = ", "--max-new-tokens", 6, "--do-sample", "--top-p", 0.9, "--seed", 3, "--device", "cpu"])
    assert code == 0 and out == "x = " + new_text(gpt2, ids, max_new_tokens=6, do_sample=True, top_p=0.9, seed=3) + "\n"
    code, out, _ = run(["generate", gpt2, "x = ", "--max-new-tokens", 6, "--num-beams", 3, "--device", "cpu"])
    assert code == 0 and out == "x = " + new_text(gpt2, ids, max_new_tokens=6, num_beams=3) + "\n"

def test_chat_uses_the_template_and_keeps_the_history(llama):
    tok = load_tokenizer(llama)
    code, out, _ = run(["chat", llama, "--system", "Be brief.", "--max-new-tokens", 5, "--device", "cpu"], ["hello", "and again", ""])
    assert code == 0
    model_eos = from_pretrained(llama).config.eos_token_id
    eos = sorted({tok.eos_token_id, model_eos} - {None})
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    first = new_text(llama, tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True), max_new_tokens=5, eos_token_id=eos)
    messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "and again"}]
    second = new_text(llama, tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True), max_new_tokens=5, eos_token_id=eos)
    assert out == f"you> model> {first}\nyou> model> {second}\nyou> "

@pytest.mark.parametrize("argv,message", [
    (["generate", "someone/not-cached", "hi"], "not in the Hugging Face cache"),
    (["generate", "./no/such/folder", "hi"], "there is no folder ./no/such/folder"),
    (["chat", "GPT2"], "has no chat template"),
    (["generate", "GPT2", "word " * 80], "the prompt has 241 tokens but the context of the model is 64 tokens"),
    (["generate", "GPT2", "hi", "--max-new-tokens", "-3"], "max_new_tokens"),
])
def test_bad_input_is_one_line(gpt2, monkeypatch, argv, message):
    import huggingface_hub.constants as C
    monkeypatch.setattr(C, "HF_HUB_OFFLINE", True)
    code, out, err = run([gpt2 if a == "GPT2" else a for a in argv] + ["--device", "cpu"], [""])
    assert code == 2 and err.startswith("llmbook: error:") and message in err and "Traceback" not in err, err
    assert "hi" not in out and "word" not in out  # nothing printed before the refusal

def test_generate_from_an_llmbook_run(tmp_path):
    "`llmbook train` writes checkpoints and the run's own BPE tokenizer.json beside them: generate reads both."
    from llmbook.hub import load
    from llmbook.tokens import BPETokenizer
    from llmbook.generation import generate_text
    out = tmp_path / "run"
    code, _, err = run(["train", "--preset", "tiny-gpt2", "--model", "max_seq_len=32", "--steps", 2, "--batch-size", 4,
                        "--out", out, "--no-progress"])
    assert code == 0, err
    [ckpt] = sorted(out.glob("checkpoint-*"))
    code, text, err = run(["generate", ckpt, "The with", "--max-new-tokens", 6, "--device", "cpu"])
    expected = generate_text(load(ckpt), BPETokenizer.load(out / "tokenizer.json"), "The with", max_new_tokens=6)
    assert code == 0 and text == "The with" + expected + "\n", err
