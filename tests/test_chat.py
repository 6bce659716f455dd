"""The chat chapter's parts against independent references, on more cases than a chapter should run:
- the chat template and its loss mask equal what Hugging Face `transformers` makes from the same template
  written in Jinja (`apply_chat_template` with `{% generation %}` blocks and `return_assistant_tokens_mask`);
- the safe calculator agrees with Python's own arithmetic on thousands of random expressions (generated here,
  so evaluating them with `eval` in the test is safe), and refuses everything that is not arithmetic;
- the syntax check is fair to truncation: every function of the standard library's validation files, cut
  after any whole line of its body, is never judged invalid; and cut anywhere in its first lines, never either."""
import ast, random, re
import pytest
from llmbook.chat import (CHAT_TOKENS, TOOL_TOKENS, calculate, cut_function, function_status, render_chat,
                          with_special_tokens, run_tool)
from llmbook.data import IGNORE_INDEX, load_corpus
from llmbook.pretraining import train_tokenizer

TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' }}"
            "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] + '<|end|>' }}{% endgeneration %}"
            "{% else %}{{ m['content'] + '<|end|>' }}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")

@pytest.fixture(scope="module")
def chat_tok():
    return with_special_tokens(train_tokenizer(load_corpus("pydocs", "train")[:100_000], 600), CHAT_TOKENS + TOOL_TOKENS)

def _conversations(rng, n):
    words = ["sort: 3 1 2", "what is 12 times 34?", "count: h e l l o", "Hello there.", "def f(x):\n    return x",
             "ünïcode ✓ 日本", "  spaces  ", "<calc>12*34</calc><result>408</result>408", "1 2 3", ""]
    out = []
    for _ in range(n):
        conv = [{"role": "system", "content": rng.choice(words[:7])}] if rng.random() < 0.3 else []
        for _ in range(rng.randint(1, 3)):
            conv.append({"role": "user", "content": rng.choice(words[:7] + words[8:])})
            conv.append({"role": "assistant", "content": rng.choice(words)})
        out.append(conv)
    return out

def test_template_and_mask_match_transformers(chat_tok):
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_object=chat_tok.to_hf())
    hf.chat_template = TEMPLATE
    for conv in _conversations(random.Random(0), 200):
        ids, labels = render_chat(conv, chat_tok)
        out = hf.apply_chat_template(conv, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        assert out["input_ids"] == ids
        assert out["assistant_masks"] == [int(l != IGNORE_INDEX) for l in labels]
        prompt = render_chat(conv[:-1], chat_tok, add_generation_prompt=True)[0]
        assert hf.apply_chat_template(conv[:-1], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"] == prompt

def _expression(rng, depth=0):
    if depth > 2 or rng.random() < 0.3:
        return str(rng.randint(0, 99)) if rng.random() < 0.85 else f"{rng.randint(0, 99)}.{rng.randint(0, 9)}"
    op = rng.choice(["+", "-", "*", "/", "//", "%", "**"])
    left, right = _expression(rng, depth + 1), _expression(rng, depth + 1)
    if op == "**": right = str(rng.randint(0, 3))
    text = f"{left} {op} {right}"
    return f"({text})" if rng.random() < 0.5 else (f"-{text}" if rng.random() < 0.1 else text)

def _largest_step(e: str) -> float:
    "The largest absolute value of any operation inside `e` (complex values count as infinitely large)."
    values = []
    for node in ast.walk(ast.parse(e, mode="eval")):
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            v = eval(ast.unparse(node), {"__builtins__": {}})
            values.append(float("inf") if isinstance(v, complex) else abs(v))
    return max(values, default=0.0)

def test_calculator_agrees_with_python():
    rng, checked = random.Random(0), 0
    for _ in range(5000):
        e = _expression(rng)
        try: expected = eval(e, {"__builtins__": {}})  # our own generated arithmetic: safe to evaluate here
        except ZeroDivisionError:
            with pytest.raises(ValueError, match="division by zero"): calculate(e)
            continue
        if _largest_step(e) >= 1e50 or isinstance(expected, complex):  # refused: too large on the way, or not real
            with pytest.raises(ValueError, match="too large|not a real number"): calculate(e)
            continue
        assert calculate(e) == pytest.approx(expected, rel=1e-12, abs=1e-12), e
        checked += 1
    assert checked > 4000

@pytest.mark.parametrize("bad", ["__import__('os')", "open('f')", "[1, 2]", "1 if 2 else 3", "a.b", "x", "1; 2", "lambda: 1",
                                 "(1).__class__", "'a' * 3", "1 < 2", "~1", "2 ** 1000", "1 +", "", "f'{1}'", "True + 1"])
def test_calculator_refuses(bad):
    "Each is refused for what it is (not, say, by a crash of the evaluator): the message names the reason."
    with pytest.raises(ValueError, match=r"is not allowed in a calculation|is not an arithmetic expression|is too large"):
        calculate(bad)

def test_tool_errors_are_results_not_crashes(chat_tok):
    for call in ["<calc></calc>", "<calc>1 +</calc>", "<calc>os.system('ls')</calc>", "</calc>", "<calc>" + "9" * 300 + "</calc>"]:
        out = chat_tok.decode(run_tool(chat_tok.encode(call, allowed_special="all"), chat_tok))
        assert re.fullmatch(r"<result>error: .*</result>", out, re.S), out

def _functions(source: str):
    "(header, body lines) of every function and method in `source` whose header is one line, as indented in the file."
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.decorator_list:
            header, *body = source.split("\n")[node.lineno - 1:node.end_lineno]
            if header.lstrip().startswith("def ") and header.endswith(":") and body: yield header, body

def test_truncated_functions_are_never_invalid():
    source, n = load_corpus("pysource", "valid", 1_000_000), 0
    functions = []
    for chunk in source.split("\n\n\n"):
        try: functions += list(_functions(chunk))
        except SyntaxError: continue  # a chunk cut through a class or a string: skip it
    assert len(functions) > 200
    for header, body in functions[:400]:
        full = "\n".join(body) + "\n" + header[:len(header) - len(header.lstrip())] + "x = 1\n"  # back at its level
        assert function_status(header, full) == "complete", (header, body)
        first = next(i for i, line in enumerate(body) if line.strip() and not line.endswith("\\"))  # a whole logical line
        for cut in range(first + 1, len(body)):  # cut after at least one whole line of body
            text = "\n".join(body[:cut]) + "\n"
            for end in {0, 1, len(body[cut]) // 2, len(body[cut])}:  # then part of the next line
                assert function_status(header, text + body[cut][:end]) != "invalid", (header, text + body[cut][:end])
                n += 1
    assert n > 5000

def test_cut_function_keeps_whole_lines():
    assert cut_function("def f():", "    return 1\n    x = (") == ("def f():\n    return 1\n", False)
    assert cut_function("def f():", "    return 1\n\n\nclass A:\n    pass") == ("def f():\n    return 1\n\n\n", True)
