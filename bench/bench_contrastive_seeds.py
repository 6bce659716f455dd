"""Chapter 14's contrastive fine-tuning over several fine-tuning seeds: recall@1/5/10 of the masked-LM encoder (the
reference: the same pretrained body before fine-tuning, measured in the same run) and of the fine-tuned one, on the
chapter's 106 held-out inverse-cloze queries over its 714 passages. The pretrained body is the course BERT
(`course_model("bert")`, the pretraining chapter's 1,000 whole-word masked-LM steps), shared by every row; only the
fine-tuning seed changes (initial shuffling and the collator's choice of query sentences). Goal: the fine-tuned
encoder above the masked-LM one at every k, on every seed.

    python bench/bench_contrastive_seeds.py [--seeds 0 1 2] [--old] [--scratch]

`--old` runs the chapter's first recipe (lr 1e-3, 200 steps, temperature 0.05, no hard negatives) for comparison;
`--scratch` also fine-tunes the same architecture from random weights with each seed (the chapter's exercise 4), so
the rows say what the pretraining adds. Takes about 100 s per fine-tuning on 2 CPU cores (far more on a loaded
machine).
"""
import argparse, statistics, time
import torch
from llmbook.core import seed_everything
from llmbook.data import corpus_docs, split_docs
from llmbook.pretraining import course_model
from llmbook.encoder import Encoder
from llmbook.training import Trainer
from llmbook.finetune import with_head
from llmbook.encoder_tasks import (make_passages, cloze_queries, split_sentences, query_sentences, hard_negatives,
                                   PairCollator, InBatchContrastive, EncoderEmbedder, SearchIndex, recall_at_k)

RECIPES = {"new": dict(steps=300, batch=32, lr=3e-4, temperature=0.02, hard=True),
           "old": dict(steps=200, batch=32, lr=1e-3, temperature=0.05, hard=False)}
KS = (1, 5, 10)

def setup():
    "The chapter's pretrained encoder, training data and evaluation, as its cells make them."
    bert, tok = course_model("bert", progress=False)
    docs = corpus_docs("pydocs")
    train_passages = make_passages(split_docs(docs, "train"))
    seen = {p.text for p in train_passages}
    passages = train_passages + [p for p in make_passages(split_docs(docs, "valid")) if p.text not in seen]
    queries, answers, index_texts = cloze_queries(passages, list(range(len(train_passages), len(passages))))
    kept = [p for p in train_passages if query_sentences(split_sentences(p.text))]
    items = [split_sentences(p.text) for p in kept]
    negatives = hard_negatives([p.text for p in kept])
    return bert, tok, items, [(s, kept[j].text) for s, j in zip(items, negatives)], queries, answers, index_texts

def recall(model, tok, queries, answers, index_texts):
    index = SearchIndex(EncoderEmbedder(model, tok)).build(index_texts)
    return recall_at_k(index.rank(queries, max(KS)), answers, KS)

def fine_tune(bert, tok, data, seed, steps, batch, lr, temperature, scratch=False):
    seed_everything(seed)
    model = Encoder(bert.config, head=None) if scratch else with_head(bert, None)[0]
    Trainer(model, data, task=InBatchContrastive(temperature), seed=seed,
            collate=PairCollator(EncoderEmbedder(model, tok), generator=torch.Generator().manual_seed(seed)),
            max_steps=steps, batch_size=batch, lr=lr, plot=False, progress=False).fit()
    return model

def main(seeds, recipe_name, scratch):
    recipe = dict(RECIPES[recipe_name])
    bert, tok, items, items_with_negatives, queries, answers, index_texts = setup()
    data = items_with_negatives if recipe.pop("hard") else items
    before = recall(bert, tok, queries, answers, index_texts)
    print(f"recipe {recipe_name}: {recipe}, hard negatives: {data is items_with_negatives}; "
          f"{len(queries)} queries over {len(index_texts)} passages; recall in %")
    print(f"{'seed':>4}  {'masked-LM @1/@5/@10':>20}  {'fine-tuned @1/@5/@10':>21}  {'margin @1/@5/@10':>17}  {'s':>4}"
          + (f"  {'from scratch @1/@5/@10':>23}" if scratch else ""))
    rows = []
    fmt = lambda r: " ".join(f"{100 * r[k]:5.1f}" for k in KS)
    for seed in seeds:
        t = time.perf_counter()
        after = recall(fine_tune(bert, tok, data, seed, **recipe), tok, queries, answers, index_texts)
        seconds = time.perf_counter() - t
        rows.append(after)
        margin = {k: after[k] - before[k] for k in KS}
        margins = " ".join(f"{100 * margin[k]:+5.1f}" for k in KS)
        line = f"{seed:>4}  {fmt(before):>20}  {fmt(after):>21}  {margins:>17}  {seconds:4.0f}"
        if scratch:
            from_scratch = fine_tune(bert, tok, data, seed, **recipe, scratch=True)
            line += f"  {fmt(recall(from_scratch, tok, queries, answers, index_texts)):>23}"
        print(line, flush=True)
    mean = {k: statistics.mean(r[k] for r in rows) for k in KS}
    sd = {k: statistics.stdev(r[k] for r in rows) if len(rows) > 1 else 0.0 for k in KS}
    print("fine-tuned mean (sd over seeds): " + ", ".join(f"@{k} {100 * mean[k]:.1f} ({100 * sd[k]:.1f})" for k in KS))
    print("above masked-LM at every k on every seed:", all(r[k] > before[k] for r in rows for k in KS))

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--old", action="store_true", help="the chapter's first recipe instead")
    p.add_argument("--scratch", action="store_true", help="also fine-tune from random weights, with each seed")
    a = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    main(a.seeds, "old" if a.old else "new", a.scratch)
