"""``sectigo-chain check``: usage and input errors (exit 2, one line), profile listing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sectigo_chain.cli.commands.check import read_targets_file
from sectigo_chain.cli.main import main
from sectigo_chain.errors import InputError
from sectigo_chain.trust.profiles import list_profiles


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check"], "no target given"),
        (["check", "https://example.com"], "looks like a URL"),
        (["check", "example.com:99999"], "is not a TCP port"),
        (["check", "example.com", "--profile", "nope"], "unknown profile 'nope'"),
        (["check", "example.com", "--profile", "x=/nonexistent.pem"], "cannot load the bundle"),
        (["check", "example.com", "--profile", "legacy", "--profile", "legacy"], "twice"),
        (["check", "example.com", "--timeout", "0"], "--timeout must be a positive"),
        (["check", "example.com", "--timeout", "nan"], "--timeout must be a positive"),
        (["check", "example.com", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["check", "--targets-file", "/nonexistent/targets"], "cannot read the targets file"),
    ],
)
def test_usage_errors_exit_2_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("sectigo-chain check: error: ")
    assert message in err


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "example.com", "--servername", "a", "--no-sni"],
        ["check", "example.com", "--tls-version", "1.1"],
        ["check", "example.com", "--tls-version", "1.2", "--each-tls-version"],
        ["check", "example.com", "--timeout", "soon"],
    ],
)
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, argv)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("sectigo-chain check: error: ")


def test_list_profiles_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, ["check", "--list-profiles"])
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == [n for n, _ in list_profiles()] + ["NAME=PEMFILE"]
    code, out, _ = _run(capsys, ["check", "--list-profiles", "--json"])
    assert code == 0
    assert json.loads(out)["profiles"] == [
        {"name": n, "description": d} for n, d in list_profiles()
    ]


def test_read_targets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = tmp_path / "t.txt"
    listing.write_text(
        "# comment\n\nexample.com\n  [::1]:8443   name.example  # trailing\nhost:1\n",
        encoding="utf-8",
    )
    expected = [("example.com", None), ("[::1]:8443", "name.example"), ("host:1", None)]
    assert read_targets_file(str(listing)) == expected
    monkeypatch.setattr("sys.stdin", io.StringIO("a.example b.example\n"))
    assert read_targets_file("-") == [("a.example", "b.example")]
    listing.write_text("a b c\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1: expected HOST"):
        read_targets_file(str(listing))


def test_bad_target_in_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "t.txt"
    listing.write_text("good.example\nbad.example:xyz\n", encoding="utf-8")
    code, out, err = _run(capsys, ["check", "--targets-file", str(listing)])
    assert (code, out) == (2, "")
    assert "'bad.example:xyz'" in err
