"""The operator's second look (issue 14): ``--version``, one-line usage errors, ``check
sim://SCENARIO`` offline, colour on a terminal only (a real pseudo-terminal, a real pipe)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sectigo_chain import __version__
from sectigo_chain.cli.main import main
from sectigo_chain.testing.lab import default_lab
from sectigo_chain.testing.tls_servers import LoopbackTLSServer

REPO = Path(__file__).resolve().parents[2]
ESC = "\x1b["


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sectigo_chain", *argv],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})},
        timeout=120, check=False,
    )  # fmt: skip


def _tty(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; (exit code, what it showed)."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environ.update({"TERM": "xterm", **(env or {})})
    proc = subprocess.Popen(
        [sys.executable, "-m", "sectigo_chain", *argv],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=REPO, env=environ,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"sectigo-chain {__version__}\n"


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["plan"], "sectigo-chain plan"),
        (["check", "--tls-version", "1.1", "x"], "sectigo-chain check"),
        (["nonsense"], "sectigo-chain"),
        (["fleet", "plan", "inv.toml", "--concurency", "2"], "sectigo-chain"),  # argparse's
        (["fleet", "plan"], "sectigo-chain fleet"),
    ],
)
def test_usage_errors_are_one_line_with_a_pointer_to_help(
    argv: list[str], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"{prog}: error: ")
    assert err.endswith(f"; see '{prog} --help'\n")


def test_check_sim_fixed_passes_and_broken_fails_with_short_chain(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "sim://fixed"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sim://fixed: PASS")
    assert main(["check", "sim://broken-r46", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == "sim://broken-r46"
    assert doc["verdict"] == "fail"
    assert "SHORT_CHAIN_R46" in [f["code"] for f in doc["findings"]]


def test_check_mixes_sim_targets_and_endpoints_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    lab = default_lab()
    leaf = lab.issue_leaf(["lab.example.test"])
    with LoopbackTLSServer(lab.served_chain(leaf, "cross"), leaf.key) as server:
        endpoint = f"127.0.0.1:{server.port}"
        code = main(["check", "sim://broken-r46", endpoint, "--servername", "lab.example.test",
                     "--catalog", "lab", "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert [t["target"] for t in doc["targets"]] == [
        "sim://broken-r46",
        f"{endpoint} (SNI lab.example.test)",
    ]
    assert [t["verdict"] for t in doc["targets"]] == ["fail", "pass"]
    assert code == 1


def test_check_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "sim://nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sectigo-chain check: error: unknown scenario 'nope'")
    assert "broken-r46" in err


def test_colour_on_a_terminal_only() -> None:
    code, shown = _tty("check", "sim://fixed")
    assert code == 0
    assert f"{ESC}1m{ESC}32mPASS{ESC}0m" in shown
    piped = _cli("check", "sim://fixed")
    assert piped.returncode == 0
    assert "PASS" in piped.stdout
    assert ESC not in piped.stdout + piped.stderr
    code, plain = _tty("check", "sim://fixed", "--no-color")
    assert code == 0
    assert "PASS" in plain
    assert ESC not in plain
    code, plain = _tty("check", "sim://fixed", env={"NO_COLOR": "1"})
    assert ESC not in plain
    code, as_json = _tty("check", "sim://fixed", "--json")
    assert ESC not in as_json
    assert json.loads(as_json)["verdict"] == "pass"


def test_fleet_progress_bar_with_rate_and_time_left_on_a_terminal_only(tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.toml"
    inventory.write_text(
        "version = 1\n"
        + "".join(f'[[hosts]]\nname = "web{i}"\ntarget = "sim://fixed"\n' for i in range(4))
    )
    code, shown = _tty("fleet", "plan", str(inventory), "--concurrency", "1")
    assert code == 0
    assert re.search(r"\] 1/4 [0-9.]+/s ETA \d+:\d\d web", shown)
    assert re.search(r"\] 4/4 [0-9.]+/s in \d+:\d\d", shown)
    assert f"{ESC}1m{ESC}32mOK{ESC}0m" in shown
    piped = _cli("fleet", "plan", str(inventory), "--concurrency", "1")
    assert piped.returncode == 0
    assert "ETA" not in piped.stderr + piped.stdout
    assert ESC not in piped.stderr + piped.stdout
