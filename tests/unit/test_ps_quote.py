"""``ps_quote`` against a faithful port of PowerShell's single-quoted-string tokenizer rule.

PowerShell's tokenizer (``Tokenizer.ScanStringLiteral``) reads a single-quoted string like
this: after the opening quote, take characters; at any of the five single-quote characters
(U+0027, U+2018, U+2019, U+201A, U+201B), if the *next* character is also one of the five,
append that next character and go on, otherwise the string ends; end of input before that is
an error. ``read_single_quoted`` below is that loop, character for character.
"""

from __future__ import annotations

import pytest
import tree_sitter
import tree_sitter_pwsh
from hypothesis import given, settings
from hypothesis import strategies as st

from sectigo_chain.templates.render import SINGLE_QUOTES, encode_payload, ps_quote

QUOTES = frozenset("\u0027\u2018\u2019\u201a\u201b")


def read_single_quoted(source: str, start: int = 0) -> tuple[str, int]:
    """Port of PowerShell's rule: returns (value, index just past the closing quote)."""
    if source[start] not in QUOTES:
        raise ValueError("not at a single quote")
    index = start + 1
    value: list[str] = []
    while True:
        if index >= len(source):
            raise ValueError("missing the terminator of a single-quoted string")
        char = source[index]
        index += 1
        if char in QUOTES:
            if index < len(source) and source[index] in QUOTES:
                char = source[index]
                index += 1
            else:
                return "".join(value), index
        value.append(char)


def naive_quote(value: str) -> str:
    """The common bug: double only the ASCII quote."""
    return "'" + value.replace("'", "''") + "'"


ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200)
# Text the payload can carry: no surrogate code point (those raise InputError, see
# test_templates.py).
CARRYABLE_TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=("Cs",)), max_size=200
)
QUOTE_HEAVY = st.text(alphabet=st.sampled_from(sorted(QUOTES) + list('a;$`"\n\x00 ')))


def test_the_five_quote_characters() -> None:
    assert frozenset(SINGLE_QUOTES) == QUOTES


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'abc'", ("abc", 5)),
        ("'it''s'", ("it's", 7)),
        ("'a\u2019\u2019b'", ("a\u2019b", 6)),
        ("'a'\u2019b'", ("a\u2019b", 6)),  # any quote escapes any other
        ("\u2018x\u2019 rest", ("x", 3)),
        ("'a\u2019; Remove-Item x'", ("a", 3)),  # U+2019 ends the string
        ("''", ("", 2)),
    ],
)
def test_port_matches_the_documented_rule(source: str, expected: tuple[str, int]) -> None:
    assert read_single_quoted(source) == expected


def test_port_reports_an_unterminated_string() -> None:
    with pytest.raises(ValueError, match="terminator"):
        read_single_quoted("'abc")
    with pytest.raises(ValueError, match="terminator"):
        read_single_quoted("'ab''")


def test_doubling_only_the_ascii_quote_is_an_injection() -> None:
    value = "\u2019; Remove-Item C:\\important; \u2019"
    quoted = naive_quote(value)
    read, end = read_single_quoted(quoted)
    assert read != value
    assert end < len(quoted)  # the rest of the "string" would be parsed as code
    assert read_single_quoted(ps_quote(value)) == (value, len(ps_quote(value)))


@settings(max_examples=2000, deadline=None)
@given(ANY_TEXT)
def test_ps_quote_reads_back_exactly(value: str) -> None:
    quoted = ps_quote(value)
    assert read_single_quoted(quoted) == (value, len(quoted))


@settings(max_examples=1000, deadline=None)
@given(QUOTE_HEAVY, st.sampled_from(["", "; Remove-Item x", " '", "\n\u2019\u2019", " # c"]))
def test_ps_quote_ends_exactly_where_it_should(value: str, after: str) -> None:
    # What follows a literal in a script is never a quote character (that would continue it).
    quoted = ps_quote(value)
    assert read_single_quoted(quoted + after) == (value, len(quoted))


@settings(max_examples=500, deadline=None)
@given(CARRYABLE_TEXT)
def test_payload_literal_needs_no_escaping(value: str) -> None:
    payload = encode_payload({"value": value})
    assert not QUOTES & set(payload)
    assert ps_quote(payload) == "'" + payload + "'"


_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_pwsh.language()))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=80))
def test_tree_sitter_sees_one_string_literal_for_ascii(value: str) -> None:
    # Cross-check with the grammar where it is faithful (ASCII; it ignores curly quotes and
    # stops at NUL, so those are left to the tokenizer port above).
    quoted = ps_quote(value)
    tree = _PARSER.parse(("$x = " + quoted + "\n$y = 1").encode())
    assert not tree.root_node.has_error
    statements = tree.root_node.children[0].named_children
    assert [n.type for n in statements] == ["pipeline", "pipeline"]
    literals = [n for n in _descendants(statements[0]) if n.type == "string_literal"]
    assert len(literals) == 1
    assert (literals[0].text or b"").decode() == quoted


def _descendants(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    found = [node]
    for child in node.children:
        found += _descendants(child)
    return found
