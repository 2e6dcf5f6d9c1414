"""A fleet rollout killed or stopped part-way leaves every finished host on disk, and
``--resume`` carries over exactly the hosts that are done and defined as they were run.

The rollouts here run the real CLI in a child process (``python -m sectigo_chain``) against
simulated hosts, and are ended with real signals: SIGTERM (orderly: the final report is
written) and SIGKILL (nothing runs: only the fsync'd progress log survives).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sectigo_chain.fleet.report import FleetReport, ProgressLog, progress_log_path
from sectigo_chain.fleet.rollout import run_fleet

HOSTS = 120


def _inventory(tmp_path: Path, count: int, target: str = "sim://broken-r46") -> Path:
    path = tmp_path / "fleet.toml"
    body = "".join(f'[[hosts]]\nname = "h{i:03d}"\ntarget = "{target}"\n\n' for i in range(count))
    path.write_text("version = 1\n\n" + body, encoding="utf-8")
    return path


def _start(tmp_path: Path, inv: Path, report: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "sectigo_chain", "fleet", "apply", str(inv), "--yes", "-q"]
    cmd += ["--no-canary", "--concurrency", "1", "--report", str(report)]
    cmd += ["--journal-dir", str(tmp_path / "journals"), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)


def _wait_for_rows(log: Path, proc: subprocess.Popen[bytes], rows: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"\n") > rows:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"no {rows} finished hosts in {log} within 60 s")


def _logged(report: Path) -> dict[str, str]:
    mode, rows = ProgressLog.read(progress_log_path(report))
    assert mode == "apply"
    return {name: row.status for name, row in rows.items()}


def test_sigterm_writes_the_final_report_and_resume_finishes_the_rest(tmp_path: Path) -> None:
    inv, report = _inventory(tmp_path, HOSTS), tmp_path / "fleet.json"
    proc = _start(tmp_path, inv, report)
    _wait_for_rows(progress_log_path(report), proc, 15)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert b"interrupted by SIGTERM" in err
    assert b"--resume" in err
    stopped = FleetReport.load(report)
    assert stopped.complete
    assert stopped.stopped
    assert stopped.stop_reason == "interrupted"
    done = {r.name for r in stopped.hosts if r.status == "applied"}
    skipped = {r.name for r in stopped.hosts if r.status == "skipped"}
    assert len(done) >= 15
    assert len(done) + len(skipped) == HOSTS
    assert {n for n, s in _logged(report).items() if s == "applied"} == done
    print(f"SIGTERM after {len(done)} of {HOSTS} hosts: report complete, {len(skipped)} skipped")

    resumed = run_fleet(inv, "apply", canary=False, resume_from=report, report_path=report,
                        journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip
    assert resumed.ok
    assert not resumed.stopped
    carried = {r.name for r in resumed.hosts if r.note == "done in an earlier run"}
    assert carried == done  # the finished hosts were not touched again
    assert [r.status for r in resumed.hosts] == ["applied"] * HOSTS


def test_sigkill_loses_no_finished_host(tmp_path: Path) -> None:
    inv, report = _inventory(tmp_path, HOSTS), tmp_path / "fleet.json"
    proc = _start(tmp_path, inv, report)
    _wait_for_rows(progress_log_path(report), proc, 10)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    logged = {n for n, s in _logged(report).items() if s == "applied"}
    assert len(logged) >= 10
    # the report itself may be missing or seconds old: resume goes by the log as well
    resumed = run_fleet(inv, "apply", canary=False, resume_from=report, report_path=report,
                        journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip
    carried = {r.name for r in resumed.hosts if r.note == "done in an earlier run"}
    assert carried >= logged
    assert resumed.ok
    assert [r.status for r in resumed.hosts] == ["applied"] * HOSTS
    print(f"SIGKILL after {len(logged)} logged hosts: all carried over on resume")


def test_resume_runs_again_a_host_whose_definition_changed(tmp_path: Path) -> None:
    inv, report = _inventory(tmp_path, 3), tmp_path / "fleet.json"
    first = run_fleet(inv, "apply", canary=False, report_path=report,
                      journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip
    assert [r.status for r in first.hosts] == ["applied"] * 3
    text = inv.read_text(encoding="utf-8")
    changed = text.replace('name = "h001"\ntarget = "sim://broken-r46"',
                           'name = "h001"\ntarget = "sim://broken-e46"')  # fmt: skip
    assert changed != text
    inv.write_text(changed, encoding="utf-8")
    again = run_fleet(inv, "apply", canary=False, resume_from=report,
                      journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip
    rows = {r.name: r for r in again.hosts}
    assert rows["h000"].note == rows["h002"].note == "done in an earlier run"
    assert rows["h001"].note != "done in an earlier run"
    assert rows["h001"].target == "sim://broken-e46"
    assert rows["h001"].status == "applied"


def test_a_report_without_definitions_carries_nothing_over(tmp_path: Path) -> None:
    """Reports written before definitions were recorded: every host runs again (the safe
    reading), none is silently taken as done."""
    inv, report = _inventory(tmp_path, 2), tmp_path / "fleet.json"
    run_fleet(inv, "apply", canary=False, report_path=report,
              journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip
    doc = json.loads(report.read_text(encoding="utf-8"))
    for row in doc["hosts"]:
        row.pop("definition")
    report.write_text(json.dumps(doc), encoding="utf-8")
    progress_log_path(report).unlink()
    again = run_fleet(inv, "apply", canary=False, resume_from=report,
                      journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip
    assert all(r.note != "done in an earlier run" for r in again.hosts)


@pytest.mark.parametrize("damage", ["torn-last-line", "damaged-middle"])
def test_progress_log_tolerates_only_a_torn_last_line(tmp_path: Path, damage: str) -> None:
    inv, report = _inventory(tmp_path, 3), tmp_path / "fleet.json"
    run_fleet(inv, "apply", canary=False, report_path=report,
              journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip
    log = progress_log_path(report)
    lines = log.read_bytes().splitlines(keepends=True)
    if damage == "torn-last-line":
        torn = json.loads(lines[-1])["name"]
        log.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
        _mode, rows = ProgressLog.read(log)
        assert sorted(rows) == sorted({"h000", "h001", "h002"} - {torn})
    else:
        log.write_bytes(b"".join([lines[0], b"{not json\n", *lines[1:]]))
        from sectigo_chain.errors import InputError

        with pytest.raises(InputError, match="damaged at line 2"):
            ProgressLog.read(log)


@pytest.mark.parametrize("kill_after", [1, 7, 29, 61])
def test_killed_at_any_point_then_resumed_equals_an_uninterrupted_run(
    tmp_path: Path, kill_after: int
) -> None:
    """Suite 7 (issue 13): kill -9 the rollout after ``kill_after`` finished hosts (the points
    are spread over the run), resume it, and compare the final report with the report of an
    uninterrupted run of the same inventory: the same hosts, statuses, actions and verdicts."""
    inv = _inventory(tmp_path, HOSTS)
    (tmp_path / "whole").mkdir()
    whole = run_fleet(inv, "apply", canary=False, report_path=tmp_path / "whole" / "r.json",
                      journal_dir=tmp_path / "whole" / "j", sim_tls=False)  # fmt: skip
    report = tmp_path / "fleet.json"
    proc = _start(tmp_path, inv, report)
    _wait_for_rows(progress_log_path(report), proc, kill_after)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    resumed = run_fleet(inv, "apply", canary=False, resume_from=report, report_path=report,
                        journal_dir=tmp_path / "journals", sim_tls=False)  # fmt: skip

    def essence(r: FleetReport) -> list[tuple[object, ...]]:
        return [
            (row.name, row.status, tuple(a.kind for a in row.actions), row.verify,
             row.after.verdict if row.after else None)
            for row in r.hosts
        ]  # fmt: skip

    assert essence(resumed) == essence(whole)
    assert resumed.counts == whole.counts
    assert resumed.exit_code() == whole.exit_code() == 0
