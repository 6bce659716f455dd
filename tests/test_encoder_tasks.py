"""Checks of llmbook.encoder_tasks that do not belong in the chapter's prose: the entity scores against
seqeval (the package most NER code is scored with) and TF-IDF against scikit-learn, when they are
installed; and invariants over the whole corpus and many generated sentences."""
import random
import pytest
import torch
from llmbook.data import corpus_docs
from llmbook.encoder_tasks import (bio_entities, entity_scores, TfidfEmbedder, SearchIndex, make_passages, split_sections,
                                   ner_examples, split_words, word_tags, bio_tags, split_sentences, query_sentences)

def random_tags(rng: random.Random, n: int) -> list[str]:
    "Any tag sequence a model could output: stray I- tags and type changes included."
    return [rng.choice(bio_tags()) for _ in range(n)]

def test_entities_and_scores_match_seqeval():
    import seqeval.metrics as seqeval  # in the dev extra: the reference must be there, not skipped
    from seqeval.metrics.sequence_labeling import get_entities
    rng = random.Random(0)
    true = [random_tags(rng, rng.randrange(1, 12)) for _ in range(300)]
    pred = [[t if rng.random() < 0.7 else rng.choice(bio_tags()) for t in s] for s in true]
    for tags in true:  # seqeval: (type, start, end inclusive)
        assert bio_entities(tags) == [(s, e + 1, kind) for kind, s, e in get_entities(tags)], tags
    ours = entity_scores([bio_entities(t) for t in true], [bio_entities(p) for p in pred])
    assert ours["precision"] == pytest.approx(seqeval.precision_score(true, pred))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(true, pred))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(true, pred))

def test_tfidf_matches_scikit_learn():
    import sklearn.feature_extraction.text as text  # in the dev extra
    docs = [p.text for p in make_passages(corpus_docs("pydocs"))[:200]]
    ref = text.TfidfVectorizer(token_pattern=r"(?u)\w+", lowercase=True, smooth_idf=True, norm="l2")
    expected = torch.tensor(ref.fit_transform(docs).toarray(), dtype=torch.float)
    ours = TfidfEmbedder().fit(docs)
    assert list(ours.vocab) == list(ref.get_feature_names_out())
    assert torch.allclose(ours(docs), expected, atol=1e-6)

def test_passages_keep_every_word_of_the_corpus():
    "Packing paragraphs into passages loses no text of a document, and never mixes two sections."
    for doc in corpus_docs("pydocs"):
        sections = split_sections(doc.text)
        passages = make_passages([doc], max_chars=10**9)  # one passage a section
        assert [p.text for p in passages] == [" ".join(body.split()) for _, body in sections if " ".join(body.split())], doc.name
        small = make_passages([doc])
        assert " ".join(p.text for p in small) == " ".join(p.text for p in passages), doc.name
    everything = make_passages(corpus_docs("pydocs"))
    assert len({p.text for p in everything}) == len(everything)  # each text once, though the topics overlap
    assert len({(p.doc, p.title) for p in everything}) >= 150

def test_tfidf_search_finds_sections_by_their_heading():
    "An easy sanity check of the whole search path: a section's heading finds a passage of that section."
    passages = make_passages(corpus_docs("pydocs"))
    texts = [f"{p.title}. {p.text}" for p in passages]
    index = SearchIndex(TfidfEmbedder().fit(texts)).build(texts)
    for query, title in (("The assert statement", 'The "assert" statement'), ("The while statement", 'The "while" statement'),
                         ("Lambdas", "Lambdas")):
        top = index.search(query, k=3)
        assert any(passages[h.id].title == title for h in top), (query, [passages[h.id].title for h in top])

def test_generated_entities_sit_on_word_boundaries():
    "Every generated entity starts and ends at word boundaries, so word-level BIO tags describe it exactly."
    for text, entities in ner_examples(3000, seed=5):
        tags = word_tags(text, entities)
        words = split_words(text)
        back = [(words[s][0], words[e - 1][1], kind) for s, e, kind in bio_entities(tags)]
        assert back == sorted(entities), (text, entities, back)

def test_sentences_are_a_partition_of_the_text():
    for p in make_passages(corpus_docs("pydocs"))[:300]:
        sentences = split_sentences(p.text)
        assert " ".join(sentences) == p.text
        assert all(len(sentences[i].split()) >= 6 for i in query_sentences(sentences))
