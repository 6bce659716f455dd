"""FSDP2 (`parallel="fsdp"`) on CPU (gloo), two processes: the losses of one process with the same global batch,
each rank holding half the parameter bytes, rank 0 alone writing a checkpoint that a single process loads, exact
resume; and `fused_loss=True` under DDP giving the losses of `fused_loss=False`."""
import json, os
from pathlib import Path
import torch
import torch.multiprocessing as mp
from test_ddp import STEPS, _trainer, _losses, _free_port

def _eval_data():
    from test_ddp import _data
    return torch.utils.data.Subset(_data(), range(10))  # batches of 4, 4 and 2

def _worker(rank, world_size, tmp, port):
    torch.set_num_threads(1)
    tmp = Path(tmp)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), LLMBOOK_DEVICE="cpu",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import llmbook.training as training
    from llmbook.training import local_bytes
    training.setup_distributed()
    try:
        if rank != 0:  # any attempt of another rank to write a checkpoint fails the test
            def refuse(*a, **k): raise AssertionError(f"rank {rank} tried to write a checkpoint")
            training._save_model = refuse
        t = _trainer(tmp / "fsdp", batch_size=2, accumulate=2, parallel="fsdp")
        t.fit()
        # the weights gathered by torch's own state-dict API, independently of the checkpoint code
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, StateDictOptions
        full = get_model_state_dict(t.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if rank == 0: torch.save(full, tmp / "gathered.pt")
        exp_avg = [s["exp_avg"] for s in t.optimizer.state.values()]
        result = {"losses": _losses(t), "local_bytes": local_bytes(t.model),
                  "adam_local": sum(v.to_local().numel() for v in exp_avg), "class": type(t.model).__name__}
        # evaluation of a sharded model: 3 batches over 2 ranks (every rank must join every forward)
        result["eval"] = training.evaluate(t.model, _eval_data(), batch_size=4)
        # activation checkpointing recomputes each block inside FSDP's gathered weights: the same losses
        recomputed = _trainer(None, 2, 2, parallel="fsdp", activation_checkpointing=True); recomputed.fit()
        result["recomputed"] = _losses(recomputed)
        # exact resume under FSDP, with dropout: 6 steps straight vs 4 + a resumed 2
        straight = _trainer(tmp / "straight", 2, 2, dropout=0.1, parallel="fsdp"); straight.fit()
        first = _trainer(tmp / "resumed", 2, 2, dropout=0.1, parallel="fsdp"); first.fit(4)
        second = _trainer(tmp / "resumed", 2, 2, resume=True, dropout=0.1, parallel="fsdp"); second.fit()
        result.update(straight=_losses(straight), resumed=_losses(second))
        # DDP: a whole copy on each rank; the fused loss gives the losses of the plain one
        plain = _trainer(None, 2, 2); plain.fit()
        fused = _trainer(None, 2, 2, fused_loss=True); fused.fit()
        result.update(ddp_plain=_losses(plain), ddp_fused=_losses(fused), ddp_local_bytes=local_bytes(plain.model))
        (tmp / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        training.cleanup_distributed()

def test_fsdp_two_processes(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path), _free_port()), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    torch.set_num_threads(1)
    single = _trainer(tmp_path / "single", batch_size=4, accumulate=2)  # the same global batch of 8
    single.fit()
    full_bytes = sum(p.numel() * p.element_size() for p in single.model.parameters())
    # the losses: FSDP reduce-scatters (a sum in another order than one process's backward): float rounding only
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == STEPS
    torch.testing.assert_close(r0["losses"], _losses(single), rtol=1e-5, atol=1e-6)
    assert r0["losses"][-1] < r0["losses"][0]
    # the point of FSDP: each rank holds about half of the weights (and of AdamW's state), together all of them
    assert r0["local_bytes"] + r1["local_bytes"] == full_bytes, (r0["local_bytes"], r1["local_bytes"], full_bytes)
    for r in (r0, r1): assert 0.45 * full_bytes <= r["local_bytes"] <= 0.55 * full_bytes, r["local_bytes"]
    assert r0["adam_local"] + r1["adam_local"] == full_bytes // 4  # float32 numbers, one per weight
    assert r0["ddp_local_bytes"] == r1["ddp_local_bytes"] == full_bytes  # not sharded: a whole copy each
    from llmbook.perf import memory_budget
    from llmbook.perf_train import per_process_memory  # chapter 18's budget per process says the same
    budget = memory_budget(single.model.config, 2, 32)
    assert per_process_memory(budget, 2, "fsdp")["weights"] == r0["local_bytes"] == r1["local_bytes"]
    assert per_process_memory(budget, 2, "ddp")["weights"] == r0["ddp_local_bytes"]
    assert r0["class"] == "FSDPDecoder"
    # rank 0 alone wrote the checkpoint (rank 1's `_save_model` raises); a plain single process loads it
    from llmbook import hub
    from llmbook.training import checkpoints, read_checkpoint
    saved = checkpoints(tmp_path / "fsdp")
    assert [p.name for p in saved] == ["checkpoint-0000003", "checkpoint-0000006"]
    meta = read_checkpoint(saved[-1])
    assert meta["model"] == "Decoder" and meta["world_size"] == 2 and meta["train_config"]["parallel"] == "fsdp"
    loaded = hub.load(saved[-1])
    assert type(loaded).__name__ == "Decoder"
    gathered = torch.load(tmp_path / "gathered.pt", weights_only=True)
    state = loaded.state_dict()
    assert set(state) == set(gathered)
    for k, v in gathered.items(): torch.testing.assert_close(state[k], v, rtol=0, atol=0, msg=k)  # bit for bit
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=1e-4, atol=1e-5, msg=k)
    # the sharded model's evaluation = the loaded model's, in one process
    from llmbook.training import evaluate
    assert r0["eval"] == r1["eval"]
    for k, v in evaluate(loaded, _eval_data(), batch_size=4).items():
        torch.testing.assert_close(r0["eval"][k], v, msg=k)
    assert r0["recomputed"] == r0["losses"]  # activation checkpointing: bit for bit
    # AdamW's state in the checkpoint is whole (gathered), not rank 0's shard
    from safetensors.torch import load_file
    adam = load_file(str(saved[-1] / "trainer.safetensors"))
    for name, p in single.model.named_parameters():
        assert adam[f"optimizer/{name}/exp_avg"].shape == p.shape, name
    # one process resumes the FSDP run from its step-3 checkpoint (the same global batch, 4 x 2) and continues it
    import pytest
    with pytest.warns(UserWarning, match="parallel: 'fsdp' -> 'ddp'"):
        solo = _trainer(tmp_path / "solo", batch_size=4, accumulate=2, resume=saved[0])
    solo.fit()
    torch.testing.assert_close(_losses(solo), r0["losses"], rtol=1e-5, atol=1e-6)
    # a resumed FSDP run (dropout on) continues exactly as the uninterrupted one
    assert r0["resumed"] == r0["straight"] and r1["resumed"] == r1["straight"]
    # DDP with the fused loss: the losses of the plain loss (chunked sums: float rounding only)
    torch.testing.assert_close(r0["ddp_fused"], r0["ddp_plain"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r0["ddp_plain"], _losses(single), rtol=1e-5, atol=1e-6)
    assert r0["ddp_fused"] == r1["ddp_fused"]
