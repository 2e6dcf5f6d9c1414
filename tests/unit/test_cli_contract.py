"""The CLI contract for deployment scripts (issue 6, step 4).

Every subcommand accepts ``--json``, ``-v/--verbose`` and ``-q/--quiet``; docs/cli.md names
every subcommand and has the exit-code table; ``-q`` leaves stderr empty on success; ``-vv``
shows DEBUG lines from the library's loggers; pypsrp's logger never goes below INFO (its DEBUG
output dumps passwords); secrets are masked in what the CLI logs; the library never prints.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sectigo_chain.cli import main as cli
from sectigo_chain.logs import clear_secrets, register_secret

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "sectigo_chain"
CERT = PACKAGE / "data" / "sectigo" / "ca-dv-r36.pem"
# where printing is the job: the command modules, the CLI itself, the demo script
PRINT_ALLOWED = ("cli/", "demo.py", "__main__.py", "testing/winrm_lab.py")  # programs


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the CLI has no subcommands")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """main() configures the ``sectigo_chain`` and ``pypsrp`` loggers: put them back."""
    saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level)
        for name in ("sectigo_chain", "pypsrp")
    }
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)
    clear_secrets()


def test_every_designed_command_is_registered() -> None:
    assert set(_subcommands()) == set(cli.COMMANDS)


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_every_command_takes_json_verbose_and_quiet(command: str) -> None:
    sub = _subcommands().get(command)
    assert sub is not None, f"{command} is not registered"
    options = set(sub._option_string_actions)
    for flag in ("--json", "-v", "--verbose", "-q", "--quiet"):
        assert flag in options, f"{command} lacks {flag}"
    verbose = sub._option_string_actions["-v"]
    assert isinstance(verbose, argparse._CountAction)  # -vv counts


def test_docs_cli_names_every_command_and_the_exit_codes() -> None:
    doc = REPO / "docs" / "cli.md"
    assert doc.is_file(), "docs/cli.md is missing"
    text = doc.read_text(encoding="utf-8")
    for command in cli.COMMANDS:
        assert re.search(rf"\b{command}\b", text), f"docs/cli.md does not mention {command}"
    codes = [cli.OK, cli.CHAIN_PROBLEMS, cli.USAGE, cli.UNREACHABLE, cli.APPLY_FAILED, 130]
    for code in codes:
        assert re.search(rf"^\|\s*`?{code}`?\s*\|", text, re.M), f"no table row for exit {code}"


def test_quiet_inspect_leaves_stderr_empty(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["inspect", "-q", "--json", str(CERT)]) == cli.OK
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out)["files"][0]["certificates"][0]["catalog"]["role"] == "issuing_ca"


def test_quiet_plan_leaves_stderr_empty(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan", "--target", "sim://fixed", "-q"]) == cli.OK
    out, err = capsys.readouterr()
    assert err == ""
    assert "Plan for sim://fixed" in out


def test_verbose_twice_shows_library_debug_lines(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan", "--target", "sim://fixed", "-vv", "--json"]) == cli.OK
    out, err = capsys.readouterr()
    assert re.search(r"^DEBUG sectigo_chain\.\S+: ", err, re.M), err
    assert json.loads(out)["target"] == "sim://fixed"  # logs never mix into the JSON


def test_default_level_shows_no_info_or_debug(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan", "--target", "sim://fixed"]) == cli.OK
    assert not re.search(r"^(DEBUG|INFO) ", capsys.readouterr().err, re.M)


@pytest.mark.parametrize(("verbose", "quiet"), [(0, False), (1, False), (2, False), (5, False)])
def test_pypsrp_never_below_info(restore_logging: None, verbose: int, quiet: bool) -> None:
    cli.configure_logging(verbose, quiet)
    assert logging.getLogger("pypsrp").getEffectiveLevel() >= logging.INFO
    assert not logging.getLogger("pypsrp").isEnabledFor(logging.DEBUG)


def test_quiet_keeps_errors_only(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    cli.configure_logging(0, True)
    log = logging.getLogger("sectigo_chain.test")
    log.warning("a warning")
    log.error("an error")
    err = capsys.readouterr().err
    assert "a warning" not in err
    assert "ERROR sectigo_chain.test: an error" in err


def test_configured_logging_masks_secrets(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """cli.configure_logging must install sectigo_chain.logs.SecretMaskFilter on its handler."""
    register_secret("winrm-Passw0rd!")
    cli.configure_logging(2, False)
    logging.getLogger("sectigo_chain.hosts.winrm").debug("auth with winrm-Passw0rd! failed")
    logging.getLogger("sectigo_chain.run.applier").info("import_pfx password=pfx-secret-9")
    err = capsys.readouterr().err
    assert "auth with ******** failed" in err
    assert "winrm-Passw0rd!" not in err
    assert "pfx-secret-9" not in err


def _print_lines(source: str, filename: str = "<src>") -> list[int]:
    """Line numbers of ``print(...)`` calls in ``source``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source, filename=filename))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


def test_print_scan_sees_calls_not_names() -> None:
    source = "import sys\ndef f():\n    print('x')\n    sys.stdout.write(repr(print))\n"
    assert _print_lines(source) == [3]


def test_library_never_prints() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(PRINT_ALLOWED[0]) or rel in PRINT_ALLOWED[1:]:
            continue
        lines = _print_lines(path.read_text(encoding="utf-8"), str(path))
        offenders += [f"{rel}:{n}" for n in lines]
    assert offenders == [], f"print() in library code (use logging or return text): {offenders}"


def test_static_command_help_matches_the_registered_parsers() -> None:
    """`--help` lists commands from cli.COMMAND_HELP without importing them: it must not drift."""
    import argparse

    from sectigo_chain.cli.main import COMMAND_HELP, COMMANDS, build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    registered = {choice.dest: choice.help for choice in sub._choices_actions}
    assert set(COMMAND_HELP) == set(COMMANDS) == set(registered)
    for name, text in COMMAND_HELP.items():
        assert registered[name] == text, name
