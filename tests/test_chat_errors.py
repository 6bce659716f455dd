"""The chat chapter's error messages, table-driven: each row is a call and a piece of the message it must raise
(moved from the chapter's wall of `test_fail`s; the chapter keeps a few representative ones)."""
import pytest
from llmbook.chat import calculate

CALCULATOR = [
    (lambda: calculate("__import__('os').getcwd()"), "is not allowed in a calculation"),
    (lambda: calculate("x + 1"), "'x' is not allowed"),
    (lambda: calculate("12*/3"), "'12*/3' is not an arithmetic expression"),
    (lambda: calculate("1/0"), "division by zero"),
    (lambda: calculate("9**9**9"), "exponent"),
    (lambda: calculate("10**49 * 10**2"), "too large"),
    (lambda: calculate("(-1)**0.5"), "not a real number"),
    (lambda: calculate(12), "expression must be a str"),
]

@pytest.mark.parametrize("call,message", CALCULATOR, ids=[m for _, m in CALCULATOR])
def test_calculate_refuses(call, message):
    with pytest.raises(Exception) as e: call()
    assert message in str(e.value)
