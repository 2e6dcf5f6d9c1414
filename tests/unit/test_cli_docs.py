"""docs/cli.md is tested against the parsers: every option of every subcommand appears in that
command's synopsis (the first code block under its ``## name`` heading), and the synopsis names
no option the parser lacks. The options every command shares (``--json``, ``-v``, ``-q``,
``--no-color``, ``-h``) are described once at the top; the synopses of ``apply`` and ``verify``
say "same options as plan" for the options they share with it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sectigo_chain.cli import main as cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
SHARED = {"--json", "-v", "--verbose", "-q", "--quiet", "--no-color", "-h", "--help"}


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--")} - SHARED


def _synopsis(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section is not None, f"docs/cli.md has no '## {name}' section"
    block = re.search(r"```\n(.*?)```", section.group(1), re.S)
    assert block is not None, f"the {name} section has no synopsis block"
    return block.group(1)


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_synopsis_names_every_option_and_no_other(name: str) -> None:
    parsers = _parsers()
    wanted = _options(parsers[name])
    synopsis = _synopsis(name)
    if name in ("apply", "verify"):
        assert "same options as plan" in synopsis
        wanted -= _options(parsers["plan"])
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", synopsis)) - SHARED
    assert sorted(wanted - shown) == [], f"{name}: options missing from docs/cli.md"
    assert sorted(shown - _options(parsers[name])) == [], f"{name}: docs name unknown options"


def test_top_of_the_page_describes_the_shared_options_and_version() -> None:
    head = DOC.read_text(encoding="utf-8").split("## ", 1)[0]
    for option in ("--json", "-v", "-q", "--no-color", "NO_COLOR", "--version", "; see '"):
        assert option in head
