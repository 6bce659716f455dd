"""The chat chapter's error messages, table-driven: each row is a call and a piece of the message it must raise
(moved from the chapter's wall of `test_fail`s; the chapter keeps a few representative ones)."""
import pytest
from llmbook.chat import calculate

CALCULATOR = [
    (lambda: calculate("__import__('os').getcwd()"), "is not allowed in a calculation", ValueError),
    (lambda: calculate("x + 1"), "'x' is not allowed", ValueError),
    (lambda: calculate("12*/3"), "'12*/3' is not an arithmetic expression", ValueError),
    (lambda: calculate("1/0"), "division by zero", ValueError),
    (lambda: calculate("9**9**9"), "exponent", ValueError),
    (lambda: calculate("10**49 * 10**2"), "too large", ValueError),
    (lambda: calculate("(-1)**0.5"), "not a real number", ValueError),
    (lambda: calculate(12), "expression must be a str", TypeError),
]

@pytest.mark.parametrize("call,message,error", CALCULATOR, ids=[m for _, m, _ in CALCULATOR])
def test_calculate_refuses(call, message, error):
    with pytest.raises(error) as e: call()
    assert type(e.value) is error, e.value  # exactly this type, not a subclass of it
    assert message in str(e.value)
