"""``sectigo-chain demo``: in-process (JSON and text), one scenario per family, and once as a
real subprocess (``python -m sectigo_chain demo``, no arguments)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.demo import run_demo

REPO = Path(__file__).resolve().parents[2]
PROFILES = {"legacy", "modern", "both"}


def test_demo_json_tells_the_whole_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal_dir = tmp_path / "new" / "dir"  # created on demand
    code = main(["demo", "--json", "--journal-dir", str(journal_dir)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["simulated"] is True
    assert doc["target"] == "sim://broken-r46"
    before, after = doc["before"], doc["after"]
    assert before["verdict"] == "fail"
    assert "SHORT_CHAIN_R46" in {f["code"] for f in before["findings"]}
    assert before["profiles"]["legacy"]["valid"] is False
    assert before["profiles"]["modern"]["valid"] is True
    assert len(before["served_chain"]) == 2
    kinds = [a["kind"] for a in doc["plan"]["actions"]]
    assert kinds == ["import_cross_sign", "remove_self_signed_root", "restart"]
    assert doc["apply"]["changed"] is True
    assert doc["apply"]["after"]["plan_empty"] is True
    assert after["verdict"] == "pass"
    assert {p for p, r in after["profiles"].items() if r["valid"]} == PROFILES
    assert len(after["served_chain"]) == 3
    assert doc["verify"]["verdict"] == "pass"
    assert doc["verify"]["rungs_tried"] == []
    assert doc["verdict"] == "pass"
    journal = Path(doc["journal"])
    assert journal.parent == journal_dir
    assert json.loads(journal.read_text())["status"] == "applied"
    assert doc["journal_dir_temporary"] is False
    assert set(doc["timings"]) >= {"check_before", "plan", "apply", "check_after", "total"}


def test_demo_text_is_a_before_after_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--journal-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert len(lines) <= 26
    assert any(line.startswith("1. BEFORE") and line.endswith("FAIL") for line in lines)
    assert any(line.startswith("4. AFTER") and line.endswith("PASS") for line in lines)
    assert "legacy FAILS (incomplete_fixable), modern ok, both ok" in out
    assert "legacy ok, modern ok, both ok" in out
    assert "SHORT_CHAIN_R46" in out
    assert str(tmp_path) in out
    assert "SIMULATED" in out


def test_demo_ecc_scenario(tmp_path: Path) -> None:
    record = run_demo("broken-e46", journal_dir=tmp_path)
    assert record.before is not None
    assert record.after is not None
    assert record.before.verdict == "fail"
    assert not record.before.profiles["legacy"].valid
    assert "E46" in record.plan.actions[0].reason
    assert record.after.verdict == "pass"
    assert record.ok
    assert "E46" in record.story()


def test_demo_stale_cache_ends_with_the_ladder(tmp_path: Path) -> None:
    record = run_demo("stale-cache", journal_dir=tmp_path)
    assert record.plan.actions == ()
    assert record.after is not None
    assert record.after.verdict == "fail"  # nothing applied: the cache is still stale
    assert record.verify.fixed_by == "iisreset"
    assert record.ok
    assert "stale cache refreshed by iisreset" in record.story()


def test_demo_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # drift with the default strategy: R46 comes back, the story ends with fail
    assert main(["demo", "--scenario", "drift", "--journal-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "did not end well" in out
    # ... and says what to do: the plan's own advice, which works
    assert "What to do: run again with --strategy disable_auto_update" in out
    args = ["demo", "--scenario", "drift", "--strategy", "disable_auto_update"]
    assert main([*args, "--journal-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["demo", "--scenario", "no-such", "--journal-dir", str(tmp_path)]) == 2
    assert "unknown simulated scenario" in capsys.readouterr().err
    assert main(["demo", "--scenario", "gpo-root", "--journal-dir", str(tmp_path)]) == 2
    assert "Group Policy" in capsys.readouterr().err


# Loaded by the subprocess (sitecustomize): any connection to a non-loopback address fails.
_NO_NETWORK = """
import socket
_real_connect, _real_connect_ex = socket.socket.connect, socket.socket.connect_ex
def _check(address):
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise OSError("network access attempted: %r" % (address,))
def _connect(self, address):
    _check(address)
    return _real_connect(self, address)
def _connect_ex(self, address):
    _check(address)
    return _real_connect_ex(self, address)
socket.socket.connect, socket.socket.connect_ex = _connect, _connect_ex
"""


def test_python_m_sectigo_chain_demo_needs_no_arguments(tmp_path: Path) -> None:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_NO_NETWORK)
    path = os.pathsep.join([str(guard), str(REPO)])
    env = {**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "sectigo_chain", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1. BEFORE  check over TLS: FAIL" in done.stdout
    assert "4. AFTER   check over TLS: PASS" in done.stdout
    # the journal went into a fresh temporary directory (under TMPDIR), not the cwd
    journals = list(tmp_path.glob("sectigo-chain-demo-*/sectigo-chain-journal-*.json"))
    assert len(journals) == 1
    assert str(journals[0]) in done.stdout
