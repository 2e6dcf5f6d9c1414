"""Every host is isolated; the canary gates the rollout; plan and check change nothing."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.errors import ConnectionFailed
from sectigo_chain.fleet.host import open_executor
from sectigo_chain.fleet.inventory import HostSecrets, Inventory, ResolvedHost
from sectigo_chain.fleet.report import FleetReport
from sectigo_chain.fleet.rollout import run_fleet
from sectigo_chain.hosts.base import Executor, ScriptResult
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import SimulatedHost

FAST = RetryPolicy(attempts=2, wait_initial=0)


def _inv(*hosts: dict[str, Any]) -> Inventory:
    return Inventory.model_validate({"hosts": list(hosts)})


def _host(name: str, scenario: str = "broken-r46", **extra: Any) -> dict[str, Any]:
    return {"name": name, "target": f"sim://{scenario}", **extra}


class _Broken:
    """An executor whose every script fails the way the host is broken."""

    def __init__(self, target: str, error: Exception) -> None:
        self._target = target
        self.error = error

    @property
    def target(self) -> str:
        return self._target

    def run(self, script: Any, *, timeout: float) -> ScriptResult:
        raise self.error

    def close(self) -> None:
        pass

    def __enter__(self) -> _Broken:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _factory(broken: dict[str, Exception]) -> Any:
    def make(host: ResolvedHost, secrets: HostSecrets) -> Executor:
        if host.name in broken:
            return _Broken(host.target, broken[host.name])
        return open_executor(host, secrets)

    return make


def test_unreachable_and_crashing_hosts_are_reported_and_do_not_stop_the_others(
    tmp_path: Path,
) -> None:
    inv = _inv(*[_host(f"h{i}") for i in range(6)])
    broken = {
        "h2": ConnectionFailed("h2: connection refused", host="h2"),
        "h4": RuntimeError("unexpected bug in a host"),
    }
    report = run_fleet(
        inv, "apply", concurrency=2, executor_factory=_factory(broken), journal_dir=tmp_path,
        sim_tls=False, retry=FAST,
    )  # fmt: skip
    rows = {r.name: r for r in report.hosts}
    assert not report.stopped  # nothing changed on h2/h4: no reason to stop
    assert rows["h2"].status == "failed"
    assert rows["h2"].error is not None
    assert rows["h2"].error.unreachable
    assert rows["h2"].error.type == "ConnectionFailed"
    assert rows["h4"].status == "failed"
    assert rows["h4"].error is not None
    assert rows["h4"].error.type == "RuntimeError"
    assert "unexpected bug" in rows["h4"].error.message
    assert not rows["h4"].error.unreachable
    assert [rows[n].status for n in ("h0", "h1", "h3", "h5")] == ["applied"] * 4
    assert report.exit_code() == 1


def test_a_failing_canary_stops_everything(tmp_path: Path) -> None:
    inv = _inv(_host("canary", sim_faults={"fail_action": 0}), *[_host(f"h{i}") for i in range(4)])
    report = run_fleet(inv, "apply", journal_dir=tmp_path, sim_tls=False, retry=FAST)
    assert report.host("canary").status == "rolled_back"
    assert report.stop_reason is not None
    assert "canary host canary" in report.stop_reason
    assert [r.status for r in report.hosts[1:]] == ["skipped"] * 4


def test_an_unreachable_canary_also_stops_the_rollout(tmp_path: Path) -> None:
    inv = _inv(_host("c"), _host("h1"))
    factory = _factory({"c": ConnectionFailed("c: no route to host", host="c")})
    report = run_fleet(inv, "apply", executor_factory=factory, journal_dir=tmp_path,
                       sim_tls=False, retry=FAST)  # fmt: skip
    assert report.host("c").unreachable
    assert report.host("h1").status == "skipped"
    assert report.exit_code() == 3  # every host that was tried was unreachable


def test_a_lost_host_whose_rollback_is_incomplete_is_failed_and_stops(tmp_path: Path) -> None:
    inv = _inv(
        _host("h0"),
        _host("gone", sim_faults={"drop_connection_at": 0, "persistent": True}),
        *[_host(f"h{i}") for i in range(2, 5)],
    )
    report = run_fleet(inv, "apply", concurrency=1, journal_dir=tmp_path, sim_tls=False,
                       retry=FAST)  # fmt: skip
    gone = report.host("gone")
    assert gone.status == "failed"
    assert gone.rollback_complete is False
    assert gone.error is not None
    assert "ROLLBACK INCOMPLETE" in gone.error.message
    assert report.stopped
    assert [report.host(f"h{i}").status for i in range(2, 5)] == ["skipped"] * 3
    assert report.exit_code() == 4


def test_without_stop_on_failure_every_host_runs(tmp_path: Path) -> None:
    inv = _inv(_host("h0"), _host("bad", sim_faults={"fail_action": 1}), _host("h2"))
    report = run_fleet(inv, "apply", concurrency=1, stop_on_failure=False, journal_dir=tmp_path,
                       sim_tls=False, retry=FAST)  # fmt: skip
    assert [r.status for r in report.hosts] == ["applied", "rolled_back", "applied"]
    assert not report.stopped


def test_a_host_that_does_not_converge_fails_verification_and_stops(tmp_path: Path) -> None:
    # drift: the removed root comes back through Automatic Root Update, so verify fails
    inv = _inv(_host("h0"), _host("drifting", "drift"), _host("h2"), _host("h3"))
    report = run_fleet(inv, "apply", concurrency=1, journal_dir=tmp_path, sim_tls=False,
                       retry=FAST)  # fmt: skip
    drifting = report.host("drifting")
    assert drifting.status == "failed"
    assert drifting.verify == "fail"
    assert drifting.converged is False
    assert any("still finds work" in n for n in drifting.verify_notes)
    assert [report.host(n).status for n in ("h2", "h3")] == ["skipped", "skipped"]
    assert report.exit_code() == 1


def test_plan_and_check_change_nothing_and_visit_every_host() -> None:
    hosts: list[SimulatedHost] = []

    def keep(host: ResolvedHost, secrets: HostSecrets) -> Executor:
        sim = open_executor(host, secrets)
        assert isinstance(sim, SimulatedHost)
        hosts.append(sim)
        return sim

    inv = _inv(_host("a", sim_faults={"fail_action": 0}), _host("b", "fixed"), _host("c"))
    planned = run_fleet(inv, "plan", executor_factory=keep, sim_tls=False)
    assert [r.status for r in planned.hosts] == ["planned", "unchanged", "planned"]
    assert not planned.canary
    assert all(set(h.calls) == {"observe"} for h in hosts)
    hosts.clear()
    checked = run_fleet(inv, "check", executor_factory=keep, sim_tls=True)
    assert [r.status for r in checked.hosts] == ["failed", "checked", "failed"]
    assert all(r.before is not None and r.before.source == "sim-tls" for r in checked.hosts)
    assert all(h.calls == [] for h in hosts)
    assert not checked.stopped  # check never stops: every host is reported
    assert checked.exit_code() == 1


def test_an_interrupted_rollout_saves_its_report_and_resumes(tmp_path: Path) -> None:
    inv = _inv(*[_host(f"h{i}") for i in range(8)])
    report_path = tmp_path / "r.json"

    def interrupt(done: int, total: int, host: str, status: str) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fleet(inv, "apply", concurrency=2, progress=interrupt, report_path=report_path,
                  journal_dir=tmp_path, sim_tls=False, retry=FAST)  # fmt: skip
    saved = FleetReport.load(report_path)
    assert saved.stop_reason == "interrupted"
    statuses = [r.status for r in saved.hosts]
    assert statuses.count("applied") >= 3  # the hosts still running were waited for
    assert set(statuses) == {"applied", "skipped"}
    assert statuses.index("skipped") > 2
    resumed = run_fleet(inv, "apply", resume_from=report_path, journal_dir=tmp_path,
                        sim_tls=False, retry=FAST)  # fmt: skip
    assert [r.status for r in resumed.hosts] == ["applied"] * 8


def test_a_refused_plan_is_reported_with_its_guidance_and_the_rollout_goes_on(
    tmp_path: Path,
) -> None:
    inv = _inv(_host("h0"), _host("gpo", "gpo-root"), _host("h2"))
    report = run_fleet(inv, "apply", concurrency=1, journal_dir=tmp_path, sim_tls=False,
                       retry=FAST)  # fmt: skip
    gpo = report.host("gpo")
    assert gpo.status == "failed"
    assert gpo.error is not None
    assert gpo.error.type == "PlanRefused"
    assert ".GroupPolicy" in gpo.error.message
    assert not gpo.changed
    assert report.host("h2").status == "applied"
    assert not report.stopped


def test_a_host_error_that_quotes_a_secret_is_masked_in_the_row(tmp_path: Path) -> None:
    from sectigo_chain.logs import clear_secrets

    secret = "Winrm-Hunter2-Secret"
    with socket.socket() as s:  # a closed loopback port: the before-check stays on 127.0.0.1
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    inv = _inv({"name": "w", "target": "winrm://w.corp.test", "password_env": "W_PW",
                "check": {"host": "127.0.0.1", "port": closed}})  # fmt: skip
    factory = _factory({"w": RuntimeError(f"login refused for password {secret} on w")})
    try:
        report = run_fleet(inv, "apply", executor_factory=factory, environ={"W_PW": secret},
                           journal_dir=tmp_path, retry=FAST)  # fmt: skip
    finally:
        clear_secrets()
    row = report.host("w")
    assert row.error is not None
    assert row.error.type == "RuntimeError"
    assert "login refused" in row.error.message
    assert secret not in report.model_dump_json()
    assert secret not in report.to_html()
