"""``_engine.idna_name``: the IDNA codec's answer for every name, without loading the codec
for ASCII names (issue 15: `check` start-up)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sectigo_chain.tls._engine import idna_name

NAMES = [
    "",
    "www.example.test",
    "WWW.Example.TEST",
    "example.test.",
    "a" * 63 + ".test",
    "test." + "a" * 63,
    "a" * 64 + ".test",  # a label too long
    "test." + "a" * 64,  # the last label too long
    "www..example.test",  # an empty label
    ".example.test",
    ".",
    "..",
    "xn--bcher-kva.example",
    "bücher.example",
    "пример.испытание",
    "bad\u200bname.test",
    "-leading.test",
    "under_score.test",
]


def _codec(name: str) -> bytes | str:
    try:
        return name.encode("idna")
    except UnicodeError as exc:
        return f"UnicodeError: {exc}"


def _ours(name: str) -> bytes | str:
    try:
        return idna_name(name)
    except UnicodeError as exc:
        return f"UnicodeError: {exc}"


@pytest.mark.parametrize("name", NAMES)
def test_same_answer_as_the_codec(name: str) -> None:
    assert _ours(name) == _codec(name)


def test_an_ascii_name_does_not_load_the_codec() -> None:
    code = (
        "import sys\n"
        "from sectigo_chain.tls._engine import idna_name\n"
        "assert idna_name('www.example.test') == b'www.example.test'\n"
        "print('encodings.idna' in sys.modules, 'stringprep' in sys.modules)\n"
        "idna_name('bücher.example')\n"
        "print('encodings.idna' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False", "True"]
