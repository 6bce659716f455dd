"""Folders written by llmbook before the families shared one `Stack` (checkpoint format 1, LoRA adapter format 1,
Trainer checkpoints) still load and give the numbers the old code gave. The fixtures in `fixtures/v1/` were written
by the old code (commit 227dc25), with its outputs saved beside them."""
import shutil
from pathlib import Path
import torch
from llmbook import hub
from llmbook.finetune import load_lora, lora_layers

V1 = Path(__file__).parent / "fixtures" / "v1"


def test_v1_model_folders_load_with_the_same_outputs():
    for name in ("gpt2", "llama", "bert", "t5", "bart"):
        folder = V1 / f"model-{name}"
        model = hub.load(folder)
        expected = torch.load(folder / "expected.pt", weights_only=True)
        with torch.no_grad():
            if model.family == "seq2seq": out = model(expected["input_ids"], expected["decoder_input_ids"])
            else: out = model(expected["input_ids"])
        torch.testing.assert_close(out, expected["logits"], atol=1e-6, rtol=1e-6, msg=name)


def test_v1_folder_saved_again_is_version_2(tmp_path):
    model = hub.load(V1 / "model-t5")
    hub.save(model, tmp_path / "t5")
    import json
    meta = json.loads((tmp_path / "t5" / "config.json").read_text())
    assert (meta["version"], meta["family"]) == (hub.FORMAT_VERSION, "seq2seq") and hub.FORMAT_VERSION == 2
    again = hub.load(tmp_path / "t5")
    for (n, p), (m, q) in zip(model.state_dict().items(), again.state_dict().items()):
        assert n == m and torch.equal(p, q)


def test_v1_lora_adapters_load_with_the_same_outputs():
    base = hub.load(V1 / "lora-base-bart")
    load_lora(base, V1 / "lora-bart.safetensors")
    assert any(n.startswith("encoder.blocks.0.") for n in lora_layers(base))  # renamed from encoder.0.
    expected = torch.load(V1 / "lora-bart-expected.pt", weights_only=True)
    with torch.no_grad(): out = base(expected["input_ids"], expected["decoder_input_ids"])
    torch.testing.assert_close(out, expected["logits"], atol=1e-6, rtol=1e-6)


def test_v1_trainer_checkpoint_resumes_exactly(tmp_path):
    "A Trainer checkpoint of the old code, resumed for one more step, gives the weights the old code reached."
    from llmbook.pretraining import pretrain
    out = tmp_path / "run"
    shutil.copytree(V1 / "trainer-t5", out)
    torch.set_num_threads(1)
    kw = dict(task="dates", vocab_size=300, batch_size=4, eval_batches=1, progress=False, plot=False, save_every=2,
              model_overrides={"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 24, "max_seq_len": 48})
    trainer, _ = pretrain("tiny-t5", max_steps=3, resume=True, out=out, **kw)
    assert trainer.step == 3
    expected = torch.load(V1 / "trainer-t5-step3-state.pt", weights_only=True)
    now = trainer.model.state_dict()
    from llmbook.hub import upgrade_names
    assert {upgrade_names("seq2seq", k) for k in expected} == set(now)
    for k, v in expected.items(): torch.testing.assert_close(now[upgrade_names("seq2seq", k)], v, atol=1e-6, rtol=0, msg=k)
