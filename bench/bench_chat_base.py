"""Chapter 15's instruction tuning from two base models: the chapter's own tiny Llama (rotary positions, 2 layers of
width 64, 600 pretraining steps on pydocs) and the course GPT (`course_model("gpt")`: learned positions, 4 layers of
width 128, the pretraining chapter's 400 steps on pydocs). Both get the chapter's chat and tool tokens and the same
tuning run (the chapter's mix of instructions and calculator questions, 2,000 steps of 16, lr 3e-3, seed 0), then
the chapter's two measures on its held-out sets: exact answers to the 200 requests (and per skill), and right final
answers to the 90 arithmetic questions with the calculator. Goal: say with numbers which base the chapter should tune.

    python bench/bench_chat_base.py [--steps 2000] [--bases llama gpt]

About 4 minutes on 2 CPU cores (the GPT's tuning alone is about 2.5 of them).
"""
import argparse, collections, random, time
import torch
from llmbook.core import seed_everything, count_params, format_size
from llmbook.pretraining import pretrain, course_model
from llmbook.training import Trainer
from llmbook.chat import (CHAT_TOKENS, TOOL_TOKENS, END, SKILLS, with_special_tokens, resize_vocab, ChatCollator,
                          instruction_task, arithmetic_task, conversations, chat_dataset, chat_replies, chat_with_tools)

LLAMA = dict(d_model=64, n_layers=2, n_heads=4, d_ff=176, max_seq_len=128)  # the chapter's SIZE

def base_model(name):
    "A base model and its tokenizer, and the seconds it took to get them."
    t = time.perf_counter()
    if name == "llama":
        trainer, tok = pretrain("tiny-llama", "pydocs", model_overrides=LLAMA, max_steps=600, batch_size=16, lr=2e-3,
                                eval_batches=4, progress=False, plot=False)
        model = trainer.model
    else:
        model, tok = course_model("gpt", progress=False)
    return model, tok, time.perf_counter() - t

def tune(name, steps, task, arith):
    base, tok, base_s = base_model(name)
    chat_tok = with_special_tokens(tok, CHAT_TOKENS + TOOL_TOKENS)
    resize_vocab(base, chat_tok.vocab_size)
    mix = task["train"] + [(q, reply) for q, reply, _ in arith["train"]]
    random.Random(0).shuffle(mix)
    data = chat_dataset(conversations(mix, seed=0), chat_tok, base.config.max_seq_len)
    seed_everything(0)
    t = time.perf_counter()
    tuner = Trainer(base, data, collate=ChatCollator(pad_id=chat_tok.special_tokens[END]), max_steps=steps,
                    batch_size=16, lr=3e-3, progress=False, plot=False)
    tuner.fit()
    model = tuner.model.eval()
    tune_s = time.perf_counter() - t
    requests = [[{"role": "user", "content": q}] for q, _ in task["test"]]
    replies = chat_replies(model, chat_tok, requests, max_new_tokens=16)
    right = [r["text"] == a for r, (_, a) in zip(replies, task["test"])]
    skill = collections.defaultdict(list)
    for (q, _), ok in zip(task["test"], right): skill[q.split(":")[0]].append(ok)
    tools = [chat_with_tools(model, chat_tok, [{"role": "user", "content": q}]) for q, _, _ in arith["test"]]
    tool_acc = sum(r["answer"] == v and r["ended"] for r, (_, _, v) in zip(tools, arith["test"])) / len(tools)
    return dict(params=count_params(model), base_s=base_s, tune_s=tune_s, exact=sum(right) / len(right),
                tools=tool_acc, **{s: sum(v) / len(v) for s, v in skill.items()})

def main(bases, steps):
    task, arith = instruction_task(8000, 200), arithmetic_task(3000, 90)
    print(f"{steps} tuning steps of 16; exact: 200 held-out requests; tools: 90 held-out questions with the calculator")
    print(f"{'base':6} {'weights':>8} {'base s':>7} {'tune s':>7} {'exact':>6} " + " ".join(f"{s:>7}" for s in SKILLS)
          + f" {'tools':>6}")
    for name in bases:
        r = tune(name, steps, task, arith)
        print(f"{name:6} {format_size(r['params']):>8} {r['base_s']:7.0f} {r['tune_s']:7.0f} {r['exact']:6.0%} "
              + " ".join(f"{r[s]:7.0%}" for s in SKILLS) + f" {r['tools']:6.0%}", flush=True)

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bases", nargs="+", choices=["llama", "gpt"], default=["llama", "gpt"])
    p.add_argument("--steps", type=int, default=2000)
    a = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    main(a.bases, a.steps)
