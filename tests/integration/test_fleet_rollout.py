"""A 20-host simulated fleet: canary, batches, a failing host stops the rollout, reports, resume.

Every host is a real ``SimulatedHost`` (``sim://broken-r46``) and, with ``sim_tls``, its served
chain is fetched over real TLS from a loopback listener and judged by the real check code.
"""

from __future__ import annotations

import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.fleet.host import open_executor
from sectigo_chain.fleet.inventory import HostSecrets, ResolvedHost
from sectigo_chain.fleet.report import FleetReport
from sectigo_chain.fleet.rollout import run_fleet
from sectigo_chain.hosts.base import Executor, ScriptResult
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.testing.lab import LabHierarchy

FAST = RetryPolicy(attempts=2, wait_initial=0)
PFX_SECRET = "Pfx-S3cret-Value-9431"
FAILING = "web07"
PFX_HOST = "web03"


def _inventory(tmp_path: Path, lab: LabHierarchy, *, failing: str | None = FAILING) -> Path:
    (tmp_path / "www.pfx").write_bytes(
        lab.issue_leaf(["www.example.test"]).pfx(PFX_SECRET, with_chain=True)
    )
    lines = ["version = 1", "", "[defaults]", 'site = "Default Web Site"', ""]
    for i in range(20):
        name = f"web{i:02d}"
        lines += ["[[hosts]]", f'name = "{name}"', 'target = "sim://broken-r46"']
        if name == PFX_HOST:
            lines += ['pfx = "www.pfx"', 'pfx_password_env = "FLEET_TEST_PFX_PW"']
        if name == failing:
            lines += ["sim_faults = { fail_action = 1 }"]
        lines.append("")
    path = tmp_path / "fleet.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class _Rows(HTMLParser):
    """Counts the host entries (one ``<details class="host">`` each) and collects the text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "details" and ("class", "host") in attrs:
            self.rows += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class _Counting:
    """Opens hosts the way the fleet does and remembers which ones it opened."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, host: ResolvedHost, secrets: HostSecrets) -> Executor:
        with self.lock:
            self.opened.append(host.name)
        return open_executor(host, secrets)


def test_failing_host_stops_the_rollout_and_resume_finishes_it(
    tmp_path: Path, lab: LabHierarchy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_TEST_PFX_PW", PFX_SECRET)
    inventory = _inventory(tmp_path, lab)
    report_path = tmp_path / "report.json"
    seen: list[tuple[int, int, str, str]] = []
    first = _Counting()
    report = run_fleet(
        inventory, "apply", concurrency=4, batch_size=4, report_path=report_path,
        journal_dir=tmp_path / "journals", sim_tls=True, retry=FAST, executor_factory=first,
        progress=lambda *a: seen.append(a),
    )  # fmt: skip

    rows = {r.name: r for r in report.hosts}
    assert [r.name for r in report.hosts] == [f"web{i:02d}" for i in range(20)]
    # canary alone, then batches of 4: web01-04, web05-08 (web07 fails), then the stop
    assert rows["web00"].canary
    assert rows["web00"].batch == 0
    assert rows["web00"].status == "applied"
    assert first.opened[0] == "web00"
    assert sorted(first.opened) == [f"web{i:02d}" for i in range(9)]
    assert report.stopped
    assert report.stop_reason is not None
    assert FAILING in report.stop_reason
    for i in range(9):
        row = rows[f"web{i:02d}"]
        assert row.batch == (0 if i == 0 else (i - 1) // 4 + 1)
        if row.name == FAILING:
            continue
        assert row.status == "applied", row.detail
        assert row.before is not None
        assert row.before.source == "sim-tls"
        assert row.before.verdict == "fail"  # leaf + R36: clients without R46 fail
        assert row.after is not None
        assert row.after.verdict == "pass"
        assert row.verify == "pass"
        assert row.converged is True
        assert len(row.after.chain) == 3
        assert row.after.chain[2].common_name.endswith("Root R46")  # the cross-sign, served
        assert row.journal is not None
        assert Path(row.journal).is_file()
    pfx_row = rows[PFX_HOST]
    assert [a.kind for a in pfx_row.actions][:1] == ["import_cross_sign"]
    assert "import_pfx" in [a.kind for a in pfx_row.actions]
    failed = rows[FAILING]
    assert failed.status == "rolled_back"
    assert failed.error is not None
    assert failed.error.type == "ApplyError"
    assert failed.rollback_complete is True
    assert failed.rolled_back  # the steps it undid
    assert failed.after is not None
    assert failed.before is not None
    assert failed.after.verdict == failed.before.verdict == "fail"  # back where it started
    assert failed.after.chain == failed.before.chain
    for i in range(9, 20):
        row = rows[f"web{i:02d}"]
        assert row.status == "skipped"
        assert row.note is not None
        assert FAILING in row.note
    assert report.exit_code() == 4
    assert report.counts == {"applied": 8, "rolled_back": 1, "skipped": 11}
    assert seen[-1][:2] == (9, 20)
    assert [s[3] for s in seen[:1]] == ["applied"]

    # the JSON report on disk is the report returned
    assert FleetReport.load(report_path) == report
    # the HTML page: one row per host, escaped, standalone
    page = report.to_html()
    parser = _Rows()
    parser.feed(page)
    assert parser.rows == 20
    assert "ROLLED BACK" in "".join(parser.text)
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page

    # fix the failing host (no more fault) and resume: only the rest run, all end well
    inventory = _inventory(tmp_path, lab, failing=None)
    second = _Counting()
    resumed = run_fleet(
        inventory, "apply", concurrency=4, batch_size=4, report_path=report_path,
        resume_from=report_path, journal_dir=tmp_path / "journals", sim_tls=True, retry=FAST,
        executor_factory=second,
    )  # fmt: skip
    assert sorted(second.opened) == [FAILING] + [f"web{i:02d}" for i in range(9, 20)]
    assert not resumed.stopped
    assert resumed.ok
    assert resumed.exit_code() == 0
    assert resumed.resumed_from == str(report_path)
    assert all(r.status == "applied" for r in resumed.hosts)
    again = {r.name: r for r in resumed.hosts}
    assert again["web01"].started_at == rows["web01"].started_at  # carried over, not re-run
    assert FleetReport.load(report_path) == resumed

    # the PFX password is in no report, journal or rendering
    texts = [str(report), str(resumed), page, resumed.to_html()]
    texts += [p.read_text(encoding="utf-8") for p in tmp_path.rglob("*.json")]
    assert all(PFX_SECRET not in t for t in texts)


class _Gauge:
    """Counts executors open at once (each wraps a SimulatedHost and is slow enough to overlap)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.release = threading.Event()

    def __call__(self, host: ResolvedHost, secrets: HostSecrets) -> Executor:
        return _Slow(open_executor(host, secrets), self)


class _Slow:
    def __init__(self, inner: Executor, gauge: _Gauge) -> None:
        self.inner = inner
        self.sim_host = inner
        self.gauge = gauge
        with gauge.lock:
            gauge.open += 1
            gauge.peak = max(gauge.peak, gauge.open)

    @property
    def target(self) -> str:
        return self.inner.target

    def run(self, script: Any, *, timeout: float) -> ScriptResult:
        self.gauge.release.wait(0.02)  # hold the slot a little so that workers overlap
        return self.inner.run(script, timeout=timeout)

    def close(self) -> None:
        with self.gauge.lock:
            self.gauge.open -= 1
        self.inner.close()

    def __enter__(self) -> _Slow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.mark.parametrize("batch_size", [None, 5])
def test_concurrency_is_bounded_and_every_executor_is_closed(
    tmp_path: Path, lab: LabHierarchy, batch_size: int | None
) -> None:
    from sectigo_chain.fleet.inventory import Inventory

    inv = Inventory.model_validate(
        {"hosts": [{"name": f"h{i}", "target": "sim://broken-r46"} for i in range(12)]}
    )
    gauge = _Gauge()
    report = run_fleet(
        inv, "apply", concurrency=3, batch_size=batch_size, executor_factory=gauge,
        journal_dir=tmp_path, sim_tls=False, retry=FAST,
    )  # fmt: skip
    assert gauge.peak == 3
    assert gauge.open == 0
    assert report.counts == {"applied": 12}
    assert all(r.after is not None and r.after.source == "sim-model" for r in report.hosts)
