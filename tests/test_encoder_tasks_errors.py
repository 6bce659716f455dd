"""The encoder tasks chapter's error messages, table-driven: each row is a call and a piece of the message it
must raise (moved from the chapter's wall of `test_fail`s; the chapter keeps a few representative ones)."""
import pytest, torch
from llmbook.encoder_tasks import SearchIndex

def letter_counts(texts): return torch.tensor([[t.count(c) for c in "abc"] for t in texts], dtype=torch.float)
letters = SearchIndex(letter_counts).build(["aab", "ccc", "ab b", "bc"], titles=["A", "C", "B", "D"])

SEARCH_INDEX = [
    (lambda: letters.search("   "), "the query is empty"),
    (lambda: letters.search("ab", k=0), "k must be an int in 1..4 (the size of the index), got 0"),
    (lambda: letters.search("ab", k=5), "got 5"),
    (lambda: SearchIndex(letter_counts).build([]), "texts is empty"),
    (lambda: SearchIndex(letter_counts).build(["a", ""]), "texts[1] is ''"),
    (lambda: SearchIndex(letter_counts).build(["a"], titles=["x", "y"]), "2 titles for 1 texts"),
    (lambda: SearchIndex(letter_counts).search("a"), "the index is empty: call build"),
]

@pytest.mark.parametrize("call,message", SEARCH_INDEX, ids=[m for _, m in SEARCH_INDEX])
def test_search_index_refuses(call, message):
    with pytest.raises(ValueError) as e: call()  # every refusal here is a bad value
    assert message in str(e.value)
