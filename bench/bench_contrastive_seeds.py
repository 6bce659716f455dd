"""Chapter 14's contrastive fine-tuning over several fine-tuning seeds: recall@1/5/10 of the masked-LM encoder (the
reference: the same pretrained body before fine-tuning, measured in the same run) and of the fine-tuned one, on the
chapter's 106 held-out inverse-cloze queries over its 714 passages. The pretraining is the chapter's (300 masked-LM
steps, seed 0) and is shared by every row; only the fine-tuning seed changes (initial shuffling and the collator's
choice of query sentences). Goal: the fine-tuned encoder above the masked-LM one at every k, on every seed.

    python bench/bench_contrastive_seeds.py [--seeds 0 1 2] [--old]

`--old` runs the chapter's first recipe (lr 1e-3, 200 steps, temperature 0.05, no hard negatives) for comparison.
Takes about a minute per seed on 2 CPU cores (far more on a loaded machine).
"""
import argparse, statistics, time
import torch
from llmbook.core import seed_everything
from llmbook.data import corpus_docs, split_docs
from llmbook.pretraining import pretrain
from llmbook.training import Trainer
from llmbook.finetune import with_head
from llmbook.encoder_tasks import (make_passages, cloze_queries, split_sentences, query_sentences, hard_negatives,
                                   PairCollator, InBatchContrastive, EncoderEmbedder, SearchIndex, recall_at_k)

RECIPES = {"new": dict(steps=300, batch=32, lr=3e-4, temperature=0.02, hard=True),
           "old": dict(steps=200, batch=32, lr=1e-3, temperature=0.05, hard=False)}
KS = (1, 5, 10)

def setup():
    "The chapter's pretrained encoder, training data and evaluation, as its cells make them."
    trainer, tok = pretrain("tiny-bert", "pydocs", max_steps=300, batch_size=16, lr=1e-3, eval_batches=4, plot=False,
                            progress=False)
    docs = corpus_docs("pydocs")
    train_passages = make_passages(split_docs(docs, "train"))
    seen = {p.text for p in train_passages}
    passages = train_passages + [p for p in make_passages(split_docs(docs, "valid")) if p.text not in seen]
    queries, answers, index_texts = cloze_queries(passages, list(range(len(train_passages), len(passages))))
    kept = [p for p in train_passages if query_sentences(split_sentences(p.text))]
    items = [split_sentences(p.text) for p in kept]
    negatives = hard_negatives([p.text for p in kept])
    return trainer.model, tok, items, [(s, kept[j].text) for s, j in zip(items, negatives)], queries, answers, index_texts

def recall(model, tok, queries, answers, index_texts):
    index = SearchIndex(EncoderEmbedder(model, tok)).build(index_texts)
    return recall_at_k(index.rank(queries, max(KS)), answers, KS)

def fine_tune(bert, tok, data, seed, steps, batch, lr, temperature):
    seed_everything(seed)
    model, _ = with_head(bert, None)
    Trainer(model, data, task=InBatchContrastive(temperature), seed=seed,
            collate=PairCollator(EncoderEmbedder(model, tok), generator=torch.Generator().manual_seed(seed)),
            max_steps=steps, batch_size=batch, lr=lr, plot=False, progress=False).fit()
    return model

def main(seeds, recipe_name):
    recipe = dict(RECIPES[recipe_name])
    bert, tok, items, items_with_negatives, queries, answers, index_texts = setup()
    data = items_with_negatives if recipe.pop("hard") else items
    before = recall(bert, tok, queries, answers, index_texts)
    print(f"recipe {recipe_name}: {recipe}, hard negatives: {data is items_with_negatives}; "
          f"{len(queries)} queries over {len(index_texts)} passages; recall in %")
    print(f"{'seed':>4}  {'masked-LM @1/@5/@10':>20}  {'fine-tuned @1/@5/@10':>21}  {'margin @1/@5/@10':>17}  {'s':>4}")
    rows = []
    for seed in seeds:
        t = time.perf_counter()
        after = recall(fine_tune(bert, tok, data, seed, **recipe), tok, queries, answers, index_texts)
        rows.append(after)
        fmt = lambda r: " ".join(f"{100 * r[k]:5.1f}" for k in KS)
        margin = {k: after[k] - before[k] for k in KS}
        print(f"{seed:>4}  {fmt(before):>20}  {fmt(after):>21}  {' '.join(f'{100 * margin[k]:+5.1f}' for k in KS):>17}  "
              f"{time.perf_counter() - t:4.0f}")
    mean = {k: statistics.mean(r[k] for r in rows) for k in KS}
    sd = {k: statistics.stdev(r[k] for r in rows) if len(rows) > 1 else 0.0 for k in KS}
    print("fine-tuned mean (sd over seeds): " + ", ".join(f"@{k} {100 * mean[k]:.1f} ({100 * sd[k]:.1f})" for k in KS))
    print("above masked-LM at every k on every seed:", all(r[k] > before[k] for r in rows for k in KS))

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--old", action="store_true", help="the chapter's first recipe instead")
    a = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    main(a.seeds, "old" if a.old else "new")
