"""llmbook, transformers and nanoGPT side by side on one GPU: one table, one process, one run.

    python bench/bench_gpu.py [--budget 330] [--new-tokens 128] [--nanogpt path/to/model.py]
    python bench/bench_gpu.py --smoke      # the same code paths on CPU with tiny sizes (CI, laptops)

Rows, in priority order (the most wanted first, so a spent `--budget` only drops the last ones):
1. Decoding GPT-2 124M (random weights, the same ones in every library), bf16: tokens/s of greedy batch 1,
   beam-4 batch 1 and greedy batch 32, `--new-tokens` each (no EOS, so every run writes all of them), for
   transformers `generate` (the reference), transformers with its static cache and compile, llmbook eager,
   llmbook `generate(..., static_cache=True, compile=True)`, and nanoGPT's `generate` (top_k=1 makes it greedy;
   it has no KV cache and no beam search). "same as transformers" compares every output with the reference's
   ids ("no (token k)" names the first new token that differs; in bf16 two correct libraries may drift apart).
2. Training GPT-2 124M, B=16, T=1024, bf16 autocast, fused AdamW, clipping at 1.0: llmbook's `Trainer` (eager
   and `compile=True`) against a plain transformers loop (and nanoGPT's model, when given) with the same
   weights, optimizer groups, batches (the Trainer's `BatchStream`) and a loss read back every step:
   ms/step, tokens/s and MFU (`llmbook.perf.mfu`, nanoGPT's FLOP convention, against the peak of the matching
   `llmbook.perf.DEVICES` entry). "same as transformers" compares the first step's loss.

Columns: tokens/s (new tokens of all rows of the batch, or trained tokens, per second); ms/step (a generate
call's time over its new tokens, prefill included, or one optimizer step); x transformers (speed over the row's
transformers reference); MFU (training only); graphs (graphs torch.compile built during the warm-up: a compiled
implementation showing 0 ran eagerly; transformers' beam search never compiles); same as transformers.

How it measures: every contender of a row is warmed up first (compilation, CUDA graph capture and cuBLAS
set-up happen there and are not timed), then the contenders run in turns, `--repeats` rounds, so a slow
moment of the machine hits them alike; each time is taken between two `torch.cuda.synchronize()` (GPU work is
asynchronous: without them a timer measures how fast Python queues kernels) and the table shows the median.
Ratios are against transformers measured in the same run. Elapsed time is printed; once `--budget` seconds
are spent no new contender is started and the skipped ones are listed.

`--smoke` runs on the CPU in float32 with a 64-wide, 2-layer GPT-2 (vocab 256), 16 new tokens, training
steps of B=4, T=32 (3 a round), one thread, and compiles with dynamo's "eager" backend (`--backend`): the
same tracing, guards and recompiles as on a GPU, without Inductor's code generation, which costs 10-30 s per
graph on a 2-core CPU. On a GPU the compiled rows use the libraries' own settings (Inductor; llmbook and
transformers pick their modes).
`bench/gpu_check.sh` runs this script on a lent GPU machine (see bench/README.md).
"""
import argparse, contextlib, importlib.util, io, os, statistics, sys, time, warnings
import torch
import torch.nn.functional as F

FULL = dict(vocab=50257, d=768, layers=12, heads=12, ctx=1024, prompt=16, new=128, big_batch=32,
            train_batch=16, train_len=1024, train_steps=5, repeats=5)
SMOKE = dict(vocab=256, d=64, layers=2, heads=4, ctx=64, prompt=8, new=16, big_batch=4,
             train_batch=4, train_len=32, train_steps=3, repeats=3)
HEADER = ["row", "implementation", "tokens/s", "ms/step", "x transformers", "MFU", "graphs",
          "same as transformers"]

def sync(device: torch.device):
    "Wait for the GPU's queued work (a no-op on the CPU, where work is done when the call returns)."
    if device.type == "cuda": torch.cuda.synchronize(device)

class Budget:
    "Seconds since the start, and whether a new contender may still start."
    def __init__(self, seconds: float):
        self.start = time.perf_counter()
        self.seconds = seconds
        self.skipped = []  # "row: implementation" that did not run

    def elapsed(self) -> float: return time.perf_counter() - self.start

    def allows(self, what: str) -> bool:
        if self.elapsed() < self.seconds: return True
        self.skipped.append(what)
        return False

@contextlib.contextmanager
def use_backend(backend: str | None):
    "Make every `torch.compile` (llmbook's, transformers', ours) use `backend` (modes dropped); None: as is."
    real = torch.compile
    def compile(model=None, **kwargs):
        kwargs.pop("mode", None)
        kwargs.pop("options", None)
        kwargs["backend"] = backend
        return real(**kwargs) if model is None else real(model, **kwargs)
    if backend: torch.compile = compile
    try: yield
    finally: torch.compile = real

def peak_flops(device: torch.device) -> tuple[float | None, str, str | None]:
    """The bf16 peak of this GPU from `llmbook.perf.DEVICES` (None where unknown, or on the CPU), the device's
    name and the DEVICES key used."""
    from llmbook.perf import DEVICES
    if device.type != "cuda": return None, "cpu", None
    name = torch.cuda.get_device_name(device)
    for key in DEVICES:
        if key in name: return DEVICES[key]["bf16_flops"], name, key
    return None, name, None

def run_in_turns(contenders: dict, device: torch.device, repeats: int) -> dict:
    "Median seconds of each `fn()` in `contenders`, run in turns (one round = each once), synchronised."
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}

def dynamo_graphs() -> int:
    "Graphs torch.compile (dynamo) has compiled in this process so far."
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]

def warm_up(what: str, fn, times: int, keep=lambda x: x) -> tuple:
    """Call `fn` `times` times (compilation, CUDA graph capture, allocator growth); returns `keep` of the first
    result (a copy: a CUDA graph's next replay may overwrite its outputs) and how many graphs dynamo compiled
    meanwhile (0 for an eager contender; a compiled one that shows 0 ran eagerly, e.g. after dynamo's recompile
    limit was hit)."""
    graphs = dynamo_graphs()
    t = time.perf_counter()
    first = keep(fn())
    for _ in range(times - 1): fn()
    graphs = dynamo_graphs() - graphs
    seconds = time.perf_counter() - t
    print(f"  warm-up {what}: {seconds:.1f} s, {graphs} graphs compiled", file=sys.stderr, flush=True)
    return first, graphs

def add(rows: list, row: list):
    "Append a measured row, and log it at once (a run killed by a time limit still shows what it measured)."
    rows.append(row)
    print("  row: " + " | ".join(str(x) for x in row), file=sys.stderr, flush=True)

def failure_row(label: str, name: str, e: Exception) -> list:
    "One library's failure is a result, not the end of the table."
    print(f"  FAILED {label}: {name}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    return [label, name, "failed", "", "", "", "", f"{type(e).__name__}: {str(e)[:100]}"]

# ---------------------------------------------------------------------------------------------- models

def gpt2_models(s: dict, device: torch.device, dtype: torch.dtype, nanogpt_path: str | None):
    """transformers' GPT2LMHeadModel with random weights, the same weights as llmbook's `preset("gpt2")`
    (through `from_hf`; the config is checked equal to the preset's) and, when given, in nanoGPT's `GPT`
    (checked: same logits as transformers in float32)."""
    import dataclasses
    from transformers import GPT2Config, GPT2LMHeadModel
    from llmbook.decoder import preset
    from llmbook.hub import from_hf
    torch.manual_seed(0)
    pad = 1  # token ids inside the vocabulary; EOS is switched off at generation time
    config = GPT2Config(vocab_size=s["vocab"], n_positions=s["ctx"], n_embd=s["d"], n_layer=s["layers"],
                        n_head=s["heads"], bos_token_id=0, eos_token_id=0, pad_token_id=pad,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # as llmbook's preset
                        initializer_range=0.1, attn_implementation="sdpa")
    hf = GPT2LMHeadModel(config).eval()
    ours = from_hf(hf)
    want = preset("gpt2", vocab_size=s["vocab"], max_seq_len=s["ctx"], d_model=s["d"], n_layers=s["layers"],
                  n_heads=s["heads"])
    ids = ("bos_token_id", "eos_token_id", "pad_token_id")
    got = {k: v for k, v in dataclasses.asdict(ours.config).items() if k not in ids}
    diff = {k: (v, getattr(want, k)) for k, v in got.items() if v != getattr(want, k)}
    if diff: raise RuntimeError(f"from_hf's config differs from preset('gpt2') in {diff}")
    nano = nanogpt_model(nanogpt_path, hf, s) if nanogpt_path else None
    models = [m.to(device, dtype) for m in (hf, ours, nano) if m is not None]
    return (*models[:2], models[2] if nano is not None else None, pad)

def load_nanogpt(path: str):
    "Import nanoGPT's model.py from a file path (it is not a package)."
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--nanogpt {path!r}: no such file (nanoGPT's model.py)")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("GPT", "GPTConfig"):
        if not hasattr(module, name): raise ImportError(f"{path} has no {name}: is it nanoGPT's model.py?")
    return module

def nanogpt_model(path: str, hf, s: dict):
    "nanoGPT's GPT with transformers' weights (its own `from_pretrained` recipe: Conv1D weights transposed)."
    module = load_nanogpt(path)
    config = module.GPTConfig(block_size=s["ctx"], vocab_size=s["vocab"], n_layer=s["layers"],
                              n_head=s["heads"], n_embd=s["d"], dropout=0.0, bias=True)
    with contextlib.redirect_stdout(io.StringIO()): model = module.GPT(config)  # it prints its size
    from transformers.pytorch_utils import Conv1D
    conv1d = {f"{name}.weight" for name, m in hf.named_modules() if isinstance(m, Conv1D)}  # stored (in, out)
    theirs = {k: v for k, v in hf.state_dict().items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    mine = model.state_dict()
    with torch.no_grad():
        for k, v in theirs.items():
            if k in conv1d: v = v.t()
            if v.shape != mine[k].shape:
                raise RuntimeError(f"nanoGPT's {k} is {tuple(mine[k].shape)}, transformers' {tuple(v.shape)}")
            mine[k].copy_(v)
    model.eval()
    check_nanogpt(model, hf, s["vocab"])
    return model

def check_nanogpt(model, hf, vocab: int):
    """Same logits as transformers, checked with GPT-2's tanh GELU swapped in for the check only: nanoGPT uses the
    exact GELU (as its `from_pretrained` does too), so its own outputs, and ids, may differ a little."""
    exact = [b.mlp.gelu for b in model.transformer.h]
    for b in model.transformer.h: b.mlp.gelu = torch.nn.GELU(approximate="tanh")
    x = torch.randint(0, vocab, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        err = (model(x)[0][:, -1] - hf(x).logits[:, -1]).abs().max().item()
    for b, g in zip(model.transformer.h, exact): b.mlp.gelu = g
    if err > 1e-4:
        raise RuntimeError(f"nanoGPT's logits differ from transformers' by {err:.2e}: weights not copied right")

# ---------------------------------------------------------------------------------------------- decoding

# (decoding, batch size or the size's key, generate settings); big_batch is 32 (smoke: 4)
DECODE_ROWS = (("greedy", 1, {}), ("beam-4", 1, {"num_beams": 4}), ("greedy", "big_batch", {}))

def first_difference(a: torch.Tensor, b: torch.Tensor, start: int) -> str:
    "'yes' when equal, else 'no (token k)': the first new token (1-based) where any row differs."
    if a.shape == b.shape and torch.equal(a, b): return "yes"
    if a.shape != b.shape: return f"no (shapes {tuple(a.shape)} vs {tuple(b.shape)})"
    k = (a != b).any(0).nonzero()[0].item()
    return f"no (token {k - start + 1})"

def decode_contenders(hf, ours, nano, pad: int, ids: torch.Tensor, new: int, settings: dict,
                      compile_all: bool) -> dict:
    "name -> a function that writes `new` tokens after `ids` (EOS off), in table order, transformers first."
    from llmbook.generation import generate
    mask = torch.ones_like(ids)
    try:
        from transformers.generation import CompileConfig
        compiled = dict(compile_config=CompileConfig())
        compiled["compile_config"]._compile_all_devices = compile_all or None  # else it compiles on GPUs only
    except ImportError:  # an older transformers compiles a static cache on a GPU by itself (see the graphs column)
        compiled = {}
    hf_kw = dict(attention_mask=mask, max_new_tokens=new, do_sample=False, eos_token_id=[], pad_token_id=pad,
                 **settings)
    ours_kw = dict(max_new_tokens=new, eos_token_id=[], pad_token_id=pad, **settings)
    runs = {"transformers generate": lambda: hf.generate(ids, **hf_kw),
            "transformers static cache + compile": lambda: hf.generate(ids, cache_implementation="static",
                                                                       **compiled, **hf_kw),
            "llmbook generate": lambda: generate(ours, ids, **ours_kw),
            "llmbook static_cache + compile": lambda: generate(ours, ids, static_cache=True, compile=True,
                                                               **ours_kw)}
    if nano is not None and settings.get("num_beams", 1) == 1:  # nanoGPT samples; top_k=1 keeps the best token
        runs["nanoGPT generate (no KV cache)"] = lambda: nano.generate(ids, new, top_k=1)
    return runs

def decoding_rows(hf, ours, nano, pad: int, s: dict, device, budget: Budget, repeats: int,
                  compile_all: bool) -> list:
    "Rows 1-3: decode tokens/s of every implementation, same weights, same prompts."
    rows = []
    for kind, batch, settings in DECODE_ROWS:
        batch = s[batch] if isinstance(batch, str) else batch
        label = f"{kind}, batch {batch}"
        prompts = torch.Generator().manual_seed(1)
        ids = torch.randint(2, s["vocab"], (batch, s["prompt"]), generator=prompts).to(device)
        runs = decode_contenders(hf, ours, nano, pad, ids, s["new"], settings, compile_all)
        torch._dynamo.reset()  # each row starts as a fresh process would: no graphs, no recompile count
        outputs, ready, failed, graphs = {}, {}, {}, {}
        with torch.no_grad():
            for name, fn in runs.items():
                if not budget.allows(f"{label}: {name}"): continue
                try:
                    outputs[name], graphs[name] = warm_up(f"{label}: {name}", fn, 2, keep=torch.clone)
                    ready[name] = fn
                except Exception as e:  # one library's failure is a result, not the end of the table
                    failed[name] = failure_row(label, name, e)
            seconds = run_in_turns(ready, device, repeats)
        ref = seconds.get("transformers generate")
        for name in runs:
            if name in failed: add(rows, failed[name])
            if name not in seconds: continue
            t, out = seconds[name], outputs[name]
            want = (batch, s["prompt"] + s["new"])
            same = "reference" if name == "transformers generate" else (
                first_difference(out, outputs["transformers generate"], s["prompt"]) if ref else "")
            if tuple(out.shape) != want: same = f"no: shape {tuple(out.shape)}, expected {want}"
            add(rows, [label, name, f"{batch * s['new'] / t:,.0f}", f"{1000 * t / s['new']:.2f}",
                         f"{ref / t:.2f}x" if ref else "", "", graphs[name], same])
    return rows

# ---------------------------------------------------------------------------------------------- training

def training_data(s: dict):
    "Random token windows of the training length (speed does not depend on what the tokens say)."
    from llmbook.data import NextTokenDataset
    n = s["train_batch"] * 64
    ids = torch.randint(0, s["vocab"], (n * s["train_len"] + 1,), generator=torch.Generator().manual_seed(2))
    return NextTokenDataset(ids, s["train_len"])

def plain_loop(model, data, s: dict, device, dtype, compile: bool, lr: float, forward):
    """A hand-written training step, as a transformers (or nanoGPT) user writes it: the Trainer's batches
    (same `BatchStream`), autocast, cross-entropy, backward, clipping at 1.0, the same fused AdamW groups
    (`make_optimizer`), the loss read back. `forward(model, input_ids, labels)` returns the mean loss."""
    from llmbook.training import BatchStream, collate, make_optimizer
    model.train()
    step_model = torch.compile(model) if compile else model
    optimizer = make_optimizer(model, lr)
    stream = BatchStream(len(data), s["train_batch"])
    def step() -> float:
        (idx,) = stream.next_step()
        batch = {k: v.to(device, non_blocking=True) for k, v in collate([data[i] for i in idx]).items()}
        with torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None):
            loss = forward(step_model, batch["input_ids"], batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()
    return step

def hf_loss(model, input_ids, labels):
    logits = model(input_ids=input_ids).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())

def nano_loss(model, input_ids, labels): return model(input_ids, labels)[1]

def trainer_step(model, data, s: dict, device, dtype, compile: bool, lr: float, **settings):
    "llmbook's Trainer, one `fit(1)` per step; returns the step's loss (from its history). `settings`: TrainConfig's."
    from llmbook.training import Trainer
    trainer = Trainer(model, data, max_steps=10**9, batch_size=s["train_batch"], lr=lr, warmup_steps=0,
                      compile=compile, precision="bf16" if dtype == torch.bfloat16 else "fp32",
                      device=device, progress=False, plot=False, **settings)
    if device.type == "cuda" and not trainer.optimizer.param_groups[0].get("fused"):
        raise RuntimeError("the Trainer's AdamW is not fused on the GPU")
    def step() -> float:
        trainer.fit(1)
        return trainer.history[-1]["loss"]
    return step

def training_contenders(hf, ours, nano, data, s: dict, device, dtype, lr: float = 6e-4) -> dict:
    "name -> a function building that implementation's step function, from a fresh copy of the same weights."
    import copy
    fresh = lambda m: copy.deepcopy(m).to(device)
    runs = {}
    for compile in (False, True):
        tag = "compiled" if compile else "eager"
        runs[f"transformers loop, {tag}"] = (
            lambda c=compile: plain_loop(fresh(hf), data, s, device, dtype, c, lr, hf_loss))
        runs[f"llmbook Trainer{', compile=True' if compile else ''}"] = (
            lambda c=compile: trainer_step(fresh(ours), data, s, device, dtype, c, lr))
        if nano is not None:
            runs[f"nanoGPT loop, {tag}"] = (
                lambda c=compile: plain_loop(fresh(nano), data, s, device, dtype, c, lr, nano_loss))
    # issue 20's ladder, rungs past compile: the loss chunk by chunk, inside the compiled region (chapter 18)
    runs["llmbook Trainer, compile=True, fused_loss=True"] = (
        lambda: trainer_step(fresh(ours), data, s, device, dtype, True, lr, fused_loss=True))
    return runs

def training_rows(hf, ours, nano, s: dict, device, dtype, budget: Budget, repeats: int) -> list:
    """Training rows: ms/step, tokens/s and MFU of each implementation. Kept apart from the decoding rows so
    that more rows (issue 20's optimisation ladder) can be added to `training_contenders`."""
    from llmbook.perf import mfu
    peak = peak_flops(device)[0]
    label = f"train B={s['train_batch']} T={s['train_len']}"
    data = training_data(s)
    hf, ours = (m.float() for m in (hf, ours))  # fp32 master weights; autocast does bf16
    nano = nano.float() if nano is not None else None
    steps, first_loss, failed, graphs = {}, {}, {}, {}
    rows = []
    contenders = training_contenders(hf, ours, nano, data, s, device, dtype)
    torch._dynamo.reset()  # the decoding rows' graphs must not use up the recompile limit of the same forward
    for name, build in contenders.items():
        if not budget.allows(f"{label}: {name}"): continue
        try:
            step = build()
            first_loss[name], graphs[name] = warm_up(f"{label}: {name}", step, 3)  # 1st step's loss; compile
            steps[name] = lambda step=step: [step() for _ in range(s["train_steps"])]
        except Exception as e:
            failed[name] = failure_row(label, name, e)
    seconds = {k: v / s["train_steps"] for k, v in run_in_turns(steps, device, repeats).items()}
    ref, ref_loss = seconds.get("transformers loop, eager"), first_loss.get("transformers loop, eager")
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4  # relative: each library rounds differently in bf16
    for name in contenders:
        if name in failed: add(rows, failed[name])
        if name not in seconds: continue
        t = seconds[name]
        tokens = s["train_batch"] * s["train_len"] / t
        util = f"{mfu(tokens, ours.config, s['train_len'], peak):.1%}" if peak else "n/a"
        if name == "transformers loop, eager": same = "reference"
        elif ref_loss is None: same = ""
        else:
            delta = abs(first_loss[name] - ref_loss) / abs(ref_loss)
            same = f"{'yes' if delta <= tol else 'no'} (loss {first_loss[name]:.4f}, rel. diff {delta:.1e})"
        add(rows, [label, name, f"{tokens:,.0f}", f"{1000 * t:.1f}", f"{ref / t:.2f}x" if ref else "", util,
                     graphs[name], same])
    return rows

# ---------------------------------------------------------------------------------------------- table

def print_table(rows: list):
    "A Markdown table: readable, and parsed by tests/test_bench_gpu.py."
    widths = [max(len(str(r[i])) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    print(line(HEADER))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows: print(line(r))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, float32: prove the code paths")
    p.add_argument("--budget", type=float, default=330, help="seconds after which no new contender starts")
    p.add_argument("--new-tokens", type=int, default=None, help="tokens per generation (default 128; smoke 16)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; smoke 3)")
    p.add_argument("--nanogpt", default=None, help="path to nanoGPT's model.py, to add its rows")
    p.add_argument("--backend", default=None, help="force this torch.compile backend (smoke default: eager)")
    p.add_argument("--threads", type=int, default=None, help="smoke: CPU threads (default 1: fastest here)")
    p.add_argument("--skip-training", action="store_true", help="decoding rows only")
    a = p.parse_args(argv)
    s = dict(SMOKE if a.smoke else FULL)
    if a.new_tokens is not None:
        if a.new_tokens < 1: p.error(f"--new-tokens must be at least 1, got {a.new_tokens}")
        s["new"] = a.new_tokens
    if s["prompt"] + s["new"] > s["ctx"]:
        p.error(f"--new-tokens {s['new']} + a {s['prompt']}-token prompt exceed the context of {s['ctx']} tokens")
    repeats = s["repeats"] if a.repeats is None else a.repeats
    if repeats < 1: p.error(f"--repeats must be at least 1, got {repeats}")
    if a.budget < 0: p.error(f"--budget must be >= 0 seconds, got {a.budget}")
    if a.threads is not None and (not a.smoke or a.threads < 1):
        p.error(f"--threads {a.threads}: only with --smoke, and at least 1")
    if a.smoke:
        device = torch.device("cpu")
        torch.set_num_threads(a.threads or 1)
    elif torch.cuda.is_available(): device = torch.device("cuda")
    else: p.error("no CUDA device: this benchmark is for a GPU; use --smoke to run its code paths on the CPU")
    dtype = torch.float32 if a.smoke else torch.bfloat16
    backend = a.backend or ("eager" if a.smoke else None)
    with use_backend(backend): return run(a, s, device, dtype, repeats, backend)

def run(a, s: dict, device, dtype, repeats: int, backend: str | None) -> list:
    "Build the models, measure every row, print the table."
    if device.type == "cuda": torch.backends.cuda.matmul.allow_tf32 = True
    warnings.filterwarnings("ignore")
    import transformers
    from llmbook.perf import DEVICES
    transformers.logging.set_verbosity_error()
    budget = Budget(a.budget)
    peak, name, key = peak_flops(device)
    print(f"bench_gpu: {name}; torch {torch.__version__}, transformers {transformers.__version__}; "
          f"{'smoke: ' if a.smoke else ''}GPT-2 d={s['d']} L={s['layers']} V={s['vocab']}, {dtype}; "
          f"{s['prompt']}-token prompts, {s['new']} new tokens; median of {repeats}; "
          f"compile backend: {backend or 'default (inductor)'}", flush=True)
    if device.type == "cuda" and peak is None:
        print(f"MFU: no peak known for {name!r} (llmbook.perf.DEVICES has {', '.join(DEVICES)}): shown as n/a")
    elif peak: print(f"MFU against {key}'s {peak / 1e12:,.0f} TFLOP/s (llmbook.perf.DEVICES, SXM spec sheet)")
    hf, ours, nano, pad = gpt2_models(s, device, dtype, a.nanogpt)
    rows = decoding_rows(hf, ours, nano, pad, s, device, budget, repeats, compile_all=device.type != "cuda")
    if not a.skip_training: rows += training_rows(hf, ours, nano, s, device, dtype, budget, repeats)
    print_table(rows)
    print(f"elapsed: {budget.elapsed():.0f} s (budget {a.budget:.0f} s)")
    print("skipped: " + ("; ".join(budget.skipped) if budget.skipped else "none"))
    return rows

if __name__ == "__main__":
    main()
