"""DDP on CPU (gloo): two processes give the losses of one process with the same global batch, only rank 0
writes checkpoints, and a resumed two-process run continues exactly."""
import json, os
from pathlib import Path
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

STEPS = 6

def _data():
    from llmbook.data import NextTokenDataset, load_corpus
    ids = torch.tensor(list(load_corpus("pydocs", "train").encode())[:30_000])
    return NextTokenDataset(ids, 32)

def _trainer(out, batch_size, accumulate, resume=False, dropout=0.0, **settings):
    from llmbook.core import seed_everything
    from llmbook.decoder import Decoder, preset
    from llmbook.training import Trainer
    seed_everything(0)
    model = Decoder(preset("tiny-gpt2", max_seq_len=32, dropout=dropout))
    return Trainer(model, _data(), out=out, resume=resume, max_steps=STEPS, batch_size=batch_size, accumulate=accumulate,
                   lr=3e-3, warmup_steps=1, save_every=3, progress=False, plot=False, **settings)

def _losses(t): return [r["loss"] for r in t.history]

def _worker(rank, world_size, tmp, port):
    torch.set_num_threads(1)
    tmp = Path(tmp)
    # what torchrun puts in each process's environment
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), LLMBOOK_DEVICE="cpu",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import llmbook.training as training
    joined = training.setup_distributed()  # the explicit join a training script makes
    try:
        assert joined == (rank, world_size, torch.device("cpu")), joined
        if rank != 0:  # any attempt of another rank to write a checkpoint fails the test
            def refuse(*a, **k): raise AssertionError(f"rank {rank} tried to write a checkpoint")
            training._save_model = refuse
        t = _trainer(tmp / "ddp", batch_size=2, accumulate=2)
        t.fit()
        result = {"losses": _losses(t), "world": [t.rank, t.world_size], "weights": t.model.head.weight.sum().item()}
        # exact resume under DDP, with dropout: 6 steps straight vs 4 + a resumed 2
        straight = _trainer(tmp / "straight", 2, 2, dropout=0.1); straight.fit()
        first = _trainer(tmp / "resumed", 2, 2, dropout=0.1); first.fit(4)
        second = _trainer(tmp / "resumed", 2, 2, resume=True, dropout=0.1); second.fit()
        result.update(straight=_losses(straight), resumed=_losses(second))
        (tmp / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        training.cleanup_distributed()

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def test_two_processes_match_one(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path), _free_port()), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["world"] == [0, 2] and r1["world"] == [1, 2]
    assert r0["losses"] == r1["losses"]  # every rank reports the global (all-reduced) loss
    torch.set_num_threads(1)
    single = _trainer(tmp_path / "single", batch_size=4, accumulate=2)  # the same global batch of 8
    single.fit()
    assert len(r0["losses"]) == STEPS
    torch.testing.assert_close(r0["losses"], _losses(single), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r0["weights"], single.model.head.weight.sum().item(), rtol=1e-4, atol=1e-4)
    assert r0["weights"] == r1["weights"]  # the ranks hold the same weights
    assert r0["losses"][-1] < r0["losses"][0]
    from llmbook.training import checkpoints, read_checkpoint
    saved = checkpoints(tmp_path / "ddp")
    assert [p.name for p in saved] == ["checkpoint-0000003", "checkpoint-0000006"]
    meta = read_checkpoint(saved[-1])
    assert meta["world_size"] == 2 and len(meta["rng"]) == 2  # both ranks' random states, written by rank 0
    assert not [p for p in (tmp_path / "ddp").iterdir() if p.name.startswith(".tmp")]
    # every final weight, not only a sum of one matrix: the DDP checkpoint equals the one-process model
    from safetensors.torch import load_file
    ddp_state, single_state = load_file(str(saved[-1] / "model.safetensors")), single.model.state_dict()
    assert ddp_state and set(ddp_state) <= set(single_state), sorted(set(ddp_state) - set(single_state))
    for k, v in ddp_state.items(): torch.testing.assert_close(v, single_state[k], rtol=1e-4, atol=1e-5, msg=k)
    # a resumed DDP run (dropout on) continues exactly as the uninterrupted one
    assert r0["resumed"] == r0["straight"] and r1["resumed"] == r1["straight"]

def test_torchrun_cli_matches_one_process(tmp_path):
    "The same `llmbook train` command under `torchrun --nproc_per_node 2` (gloo) gives one process's losses."
    import subprocess, sys
    from safetensors.torch import load_file
    bindir = Path(sys.executable).parent
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["train", "--model", "max_seq_len=32", "--steps", "4", "--no-progress", "--device", "cpu"]
    two = subprocess.run([str(bindir / "torchrun"), "--standalone", "--nproc_per_node", "2", "--no-python",
                          str(bindir / "llmbook"), *common, "--batch-size", "2", "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es) on cpu" in two.stdout and two.stdout.count("step 4: training loss") == 1  # rank 0 prints
    one = subprocess.run([str(bindir / "llmbook"), *common, "--batch-size", "4", "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stderr
    h2, h1 = (load_file(str(tmp_path / d / "checkpoint-0000004" / "trainer.safetensors")) for d in ("two", "one"))
    torch.testing.assert_close(h2["history/loss"], h1["history/loss"], rtol=1e-5, atol=1e-6)
    assert len(h2["history/loss"]) == 4

def test_trainer_refuses_an_unjoined_torchrun_process(monkeypatch):
    "Started by torchrun (WORLD_SIZE > 1) without `setup_distributed()`: an error naming it, not a silent solo run."
    import pytest
    from llmbook.training import Trainer
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LLMBOOK_DEVICE", "cpu")
    with pytest.raises(RuntimeError, match=r"call llmbook\.training\.setup_distributed\(\) before building the Trainer"):
        Trainer(torch.nn.Linear(2, 2), [(torch.zeros(2), torch.zeros(2))], task=lambda m, b: b, progress=False)
