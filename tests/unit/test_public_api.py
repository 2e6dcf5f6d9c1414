"""The public API: sorted ``__all__``, every name resolves, and importing stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sectigo_chain

REPO = Path(__file__).resolve().parents[2]


def test_all_is_sorted_and_complete() -> None:
    names = sectigo_chain.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(sectigo_chain, name) is not None, name
    assert set(dir(sectigo_chain)) >= set(names)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        sectigo_chain.no_such_thing  # type: ignore[attr-defined] # noqa: B018


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, sectigo_chain\n"
        "heavy = [m for m in ('pypsrp', 'cryptography', 'pydantic', 'asn1crypto', 'requests',"
        " 'OpenSSL') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    assert out == ""


def test_help_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from sectigo_chain.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('pypsrp', 'cryptography', 'pydantic', 'asn1crypto', 'OpenSSL')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    assert out == ""
