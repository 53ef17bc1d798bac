"""The quote-then-claim reply format: the grammar that constrains decoding, and reading it back.

The grammar must offer only the sources the model was given and only their own statements,
and llama.cpp must accept it; the parser must read what models write, and `locate` must find
a quote in its source despite spacing, case and the look-alikes fencing put for < and >."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generation.quotes import (
    QuotedClaim,
    is_chinese,
    locate,
    parse_line,
    quotes_grammar,
    split_lines,
)

MARKER = "NOT_IN_SOURCES"
STATEMENTS = {
    2: ["Keeps water cold all day", "capacity: 750 ml"],
    5: ["the lid leaks if you drop it"],
}


def _rule(grammar: str, name: str) -> str:
    match = re.search(rf"^{name} ::= (.*)$", grammar, re.MULTILINE)
    assert match is not None, f"no rule {name} in {grammar}"
    return match[1]


def test_grammar_offers_only_the_given_sources_and_their_statements() -> None:
    grammar = quotes_grammar(STATEMENTS, abstain_marker=MARKER)
    assert _rule(grammar, "root").startswith(f'"{MARKER}" | claim')
    assert _rule(grammar, "claim") == '(q2 | q5) " " text'
    assert _rule(grammar, "q2") == (
        '"[2] \\"" ("Keeps water cold all day" | "capacity: 750 ml") "\\""'
    )
    assert _rule(grammar, "q5") == '"[5] \\"" ("the lid leaks if you drop it") "\\""'
    assert not re.search(r"^q[^25]", grammar, re.MULTILINE)


@pytest.mark.parametrize("statements", [{}, {1: []}, {1: [""]}, {1: ['a 12" screen']}])
def test_grammar_needs_a_quotable_statement(statements: dict[int, list[str]]) -> None:
    with pytest.raises(ValueError, match="at least one source"):
        quotes_grammar(statements, abstain_marker=MARKER)


def test_english_claims_cannot_hold_chinese() -> None:
    text = _rule(quotes_grammar(STATEMENTS, abstain_marker=MARKER), "text")
    assert text.startswith("[^")
    assert "\u4e00" in text and "\u3000" in text  # CJK characters and punctuation excluded


def test_chinese_claims_open_with_a_chinese_character() -> None:
    text = _rule(quotes_grammar({1: ["续航30小时"]}, abstain_marker=MARKER, chinese=True), "text")
    first = text.split(" ", 1)[0]
    assert first.startswith("[\u3400") and "\u4e00" in first and not first.startswith("[^")
    assert text.endswith("[。！？.!?]")


TRICKY = {1: ["C:\\temp is fine", 'a 12" screen', "a 12 inch screen"], 2: ["续航30小时"]}


def test_backslashes_are_escaped_and_double_quotes_left_out() -> None:
    grammar = quotes_grammar(TRICKY, abstain_marker=MARKER)
    assert '"C:\\\\temp is fine"' in _rule(grammar, "q1")
    assert '12\\" screen' not in grammar and '12" screen' not in grammar
    assert '"a 12 inch screen"' in _rule(grammar, "q1")


@pytest.mark.parametrize("chinese", [False, True])
def test_llama_cpp_accepts_the_grammar(chinese: bool) -> None:
    pytest.importorskip("llama_cpp")
    from llama_cpp import LlamaGrammar

    grammar = quotes_grammar(TRICKY, abstain_marker=MARKER, chinese=chinese)
    LlamaGrammar.from_string(grammar, verbose=False)


@pytest.fixture(scope="module")
def grammar_parses() -> Iterator[Callable[[str], bool]]:
    """Whether llama.cpp's own GBNF parser accepts a grammar (``LlamaGrammar.from_string``
    of llama-cpp-python 0.3 only stores the text): a sampler is built on the vocabulary of
    the packaged SmolLM2 GGUF, loaded without its weights."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from generation.llm.gguf import PACKAGED_MODELS, part_files

    paths = part_files(PACKAGED_MODELS["smollm2-135m-instruct-q4_1"])
    if len(paths) != 1 or not Path(paths[0]).is_file():
        pytest.skip("the packaged SmolLM2 GGUF is not installed")
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(paths[0]).encode(), params)
    if not model:
        pytest.skip("llama.cpp could not load the GGUF vocabulary")
    vocab = llama_cpp.llama_model_get_vocab(model)

    def parses(grammar: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    yield parses
    llama_cpp.llama_model_free(model)


@pytest.mark.parametrize("chinese", [False, True])
def test_llama_cpp_parser_accepts_the_grammar(
    grammar_parses: Callable[[str], bool], chinese: bool
) -> None:
    assert not grammar_parses("root ::= [")  # the check can fail
    assert grammar_parses(quotes_grammar(TRICKY, abstain_marker=MARKER, chinese=chinese))


@pytest.mark.parametrize(
    "line",
    [
        '[2] "Keeps water cold" It keeps water cold.',
        "[2] “Keeps water cold” It keeps water cold.",
        ' [ 2 ]  "Keeps water cold": It keeps water cold. ',
    ],
)
def test_parse_line_reads_source_quote_and_claim(line: str) -> None:
    assert parse_line(line) == QuotedClaim(2, "Keeps water cold", "It keeps water cold.")


@pytest.mark.parametrize(
    "line",
    ["It keeps water cold [2].", '[2] "Keeps water cold"', '[2] "" It keeps water cold.', MARKER],
)
def test_parse_line_without_a_quoted_claim_is_none(line: str) -> None:
    assert parse_line(line) is None


def test_split_lines_keeps_the_unfinished_rest() -> None:
    assert split_lines("a\n\nb\nc") == (["a", "b"], "c")
    assert split_lines("a\n") == (["a"], "")
    assert split_lines("unfinished") == ([], "unfinished")


def test_locate_tolerates_space_case_and_fenced_brackets() -> None:
    text = "Capacity: 750 ML.  Keeps   water cold all day. Size <b>large</b>"
    assert locate("capacity: 750 ml", text) == (0, 16)
    start = text.index("Keeps")
    assert locate("keeps water\nCOLD", text) == (start, text.index("cold") + 4)
    assert locate("‹b›large‹/b›", text) == (text.index("<b>"), len(text))


@pytest.mark.parametrize("quote", ["keeps water hot", "cold all night", "", "   "])
def test_locate_is_none_for_words_not_in_the_text(quote: str) -> None:
    assert locate(quote, "Keeps water cold all day.") is None


def test_is_chinese() -> None:
    assert is_chinese("续航约30小时。")
    assert not is_chinese("It lasts 30 hours.")
