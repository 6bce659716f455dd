"""Training beyond the notebook: exact resume across fresh processes (the real case: a killed job), and the
trainer's behaviour with every model family."""
import json, subprocess, sys, textwrap
from pathlib import Path
import torch

SCRIPT = textwrap.dedent("""
    import sys, json, torch
    torch.set_num_threads(1)
    from llmbook.pretraining import pretrain
    out, steps, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume"
    trainer, _ = pretrain("tiny-gpt2", model_overrides={"max_seq_len": 32, "dropout": 0.1}, out=out, resume=resume,
                          fit=False, max_steps=8, batch_size=4, eval_every=4, eval_batches=2, save_every=2,
                          progress=False, plot=False)
    trainer.fit(steps - trainer.step)
    print(json.dumps([r["loss"] for r in trainer.history]))
""")

def _run(out, steps, resume=False):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(steps), "resume" if resume else "new"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_exact_resume_in_a_fresh_process(tmp_path):
    straight = _run(tmp_path / "a", 8)
    _run(tmp_path / "b", 3)  # "killed" after step 3: checkpoint 2 (save_every) and 3 (end of fit)
    resumed = _run(tmp_path / "b", 8, resume=True)
    assert resumed == straight  # bit-identical losses, dropout and data order included
    from safetensors.torch import load_file
    a, b = (load_file(str(p / "checkpoint-0000008" / "model.safetensors")) for p in (tmp_path / "a", tmp_path / "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from llmbook.training import read_checkpoint
    ev_a, ev_b = (read_checkpoint(p / "checkpoint-0000008")["evals"] for p in (tmp_path / "a", tmp_path / "b"))
    assert [e["step"] for e in ev_a] == [4, 8] and [e["step"] for e in ev_b] == [3, 4, 8]  # b also evaluated when it stopped
    assert ev_b[1:] == ev_a  # evaluating does not disturb the run

def test_seq2seq_trainer_and_checkpoint(tmp_path):
    from llmbook.pretraining import pretrain
    from llmbook.training import read_checkpoint
    from llmbook.hub import load
    torch.set_num_threads(1)
    trainer, tok = pretrain("tiny-t5", task="dates", out=tmp_path / "t5", max_steps=3, batch_size=8, eval_batches=2,
                            progress=False, plot=False)
    assert type(trainer.model).__name__ == "Seq2Seq" and trainer.task.__name__ == "seq2seq_logits"
    meta = read_checkpoint(tmp_path / "t5" / "checkpoint-0000003")
    assert meta["model"] == "Seq2Seq" and meta["step"] == 3
    again = load(tmp_path / "t5" / "checkpoint-0000003")
    batch = trainer.collate([trainer.train_data[i] for i in range(2)])
    with torch.no_grad():
        trainer.model.eval()
        assert torch.equal(again(batch["input_ids"], batch["decoder_input_ids"]), trainer.model(batch["input_ids"], batch["decoder_input_ids"]))

def test_compiled_training_equals_eager():
    "Trainer(compile=True) on the CPU: the same losses and weights as eager (the chapter's check is `slow`: here it runs)."
    import logging
    from llmbook.core import seed_everything
    from llmbook.data import NextTokenDataset
    from llmbook.decoder import Decoder
    from llmbook.blocks import preset
    from llmbook.training import Trainer
    torch._logging.set_logs(dynamo=logging.ERROR)
    ids = torch.randint(0, 256, (4000,), generator=torch.Generator().manual_seed(0))
    def run(**kw):
        seed_everything(0)
        t = Trainer(Decoder(preset("tiny-gpt2", dropout=0.0)), NextTokenDataset(ids, 32), max_steps=3, batch_size=8,
                    device="cpu", precision="fp32", progress=False, plot=False, **kw)
        return [r["loss"] for r in t.fit()], t.model
    (eager, m1), (compiled, m2) = run(), run(compile=True)
    assert len(eager) == len(compiled) == 3
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), atol=1e-5, rtol=0)
    assert eager[0] != eager[-1]  # the weights moved: the steps compare training, not three copies of one loss
    for (n, p), q in zip(m1.named_parameters(), m2.parameters()):
        torch.testing.assert_close(q, p, atol=1e-5, rtol=0, msg=n)
