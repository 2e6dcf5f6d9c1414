"""Transport faults on the loopback WinRM endpoint, one per test: a typed error, retry only for
templates that are safe to repeat, the runspace pool dropped and re-created, the deadline held
(issue 11.7: pypsrp's own retries bounded, session dropped after a timeout, is_alive() before
reuse, a closed shell is a connection failure)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sectigo_chain.errors import ConnectionFailed, ScriptFailed, ScriptTimeout
from sectigo_chain.hosts.retry import RetryPolicy, run_script
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.hosts.winrm import WinRMExecutor
from sectigo_chain.templates.render import render
from sectigo_chain.testing.winrm import WinRMTestServer

pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")

NOW = dt.datetime.now(dt.timezone.utc)
FAST = RetryPolicy(attempts=3, wait_initial=0)
# Short WinRM timeouts so a fault costs seconds, not minutes.
QUICK = {"operation_timeout": 1, "read_timeout": 3, "connection_timeout": 3, "cleanup_grace": 1}


@pytest.fixture
def server() -> Iterator[WinRMTestServer]:
    with WinRMTestServer(SimulatedHost("broken-r46"), at=NOW) as srv:
        yield srv


def _observe() -> object:
    return render("observe", {})


def test_connection_refused_is_a_connection_failure_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the executor connects
    with WinRMTestServer(at=NOW) as srv:
        settings = srv.settings(port=port, **QUICK)
    started = time.monotonic()
    with WinRMExecutor(settings) as ex, pytest.raises(ConnectionFailed) as info:
        ex.run(render("observe", {}), timeout=30)
    assert time.monotonic() - started < 10
    assert "cannot open a PowerShell session" in str(info.value)


def test_401_after_the_pool_is_open_is_a_connection_failure(server: WinRMTestServer) -> None:
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        ex.run(render("observe", {}), timeout=30)
        server.faults.unauthorized_after = server.stats.total_requests
        with pytest.raises(ConnectionFailed) as info:
            ex.run(render("observe", {}), timeout=30)
    assert "AuthenticationError" in str(info.value)
    assert server.password not in str(info.value)


def test_http_500_with_a_wsman_fault_is_typed_and_never_retried(server: WinRMTestServer) -> None:
    server.faults.http_500_once = "Command"
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        with pytest.raises(ScriptFailed) as info:
            run_script(ex, render("observe", {}), timeout=30, policy=FAST)
        assert "WSManFaultError" in str(info.value)
        assert "injected fault" in str(info.value)
        # the broken session was dropped; the next script opens a new pool and works
        assert ex.run(render("observe", {}), timeout=30).ok
        assert ex.pools_opened == 2
    assert server.stats.pipelines == 1


def test_socket_closed_mid_receive_retries_a_safe_template_on_a_new_pool(
    server: WinRMTestServer,
) -> None:
    server.faults.drop_receives = 1
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        result = run_script(ex, render("observe", {}), timeout=30, policy=FAST)
        assert result.ok
        assert ex.pools_opened == 2
    assert server.stats.pools_opened == 2
    assert server.stats.pipelines == 2
    print(f"\nsocket closed mid-Receive, then retried: {server.stats.summary()}")


def test_socket_closed_mid_receive_is_not_retried_for_an_unsafe_template(
    server: WinRMTestServer,
) -> None:
    server.faults.drop_receives = 1
    unsafe = dataclasses.replace(render("observe", {}), idempotent=False)
    with WinRMExecutor(server.settings(**QUICK)) as ex, pytest.raises(ConnectionFailed):
        run_script(ex, unsafe, timeout=30, policy=FAST)
    assert server.stats.pipelines == 1


def test_a_receive_that_is_never_answered_is_polled_again_within_the_deadline(
    server: WinRMTestServer,
) -> None:
    server.faults.hang_receives = 1
    started = time.monotonic()
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        assert ex.run(render("observe", {}), timeout=30).ok
        assert ex.pools_opened == 1
    # one HTTP read timeout (operation timeout 1 s + 2 s), no pypsrp back-off sleeps
    assert time.monotonic() - started < 10


def test_receives_that_are_never_answered_end_in_a_timeout_near_the_deadline(
    server: WinRMTestServer,
) -> None:
    # pypsrp 0.9.1 alone would retry each hung Receive 5 times, sleeping 2+6+14+30+62 s.
    server.faults.hang_receives = 1000
    started = time.monotonic()
    with WinRMExecutor(server.settings(**QUICK)) as ex, pytest.raises(ScriptTimeout):
        ex.run(render("observe", {}), timeout=5)
    elapsed = time.monotonic() - started
    assert elapsed < 5 + 3 + 2 * QUICK["cleanup_grace"] + 2, elapsed


def test_operation_timeout_faults_are_swallowed_while_the_script_runs(
    server: WinRMTestServer,
) -> None:
    server.faults.pipeline_delay = 2.5
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        assert ex.run(render("observe", {}), timeout=30).ok
    # each idle Receive waited its OperationTimeout (1 s) and answered fault 2150858793
    assert server.stats.operation_timeouts >= 2
    assert server.stats.pipelines == 1


def test_a_script_past_its_deadline_is_stopped_and_the_pool_is_not_reused(
    server: WinRMTestServer,
) -> None:
    server.host.faults = Faults(timeout_at=0)  # the host never finishes the first action
    script = render("set_root_auto_update", {"disabled": True})
    started = time.monotonic()
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        with pytest.raises(ScriptTimeout):
            ex.run(script, timeout=3)
        assert time.monotonic() - started < 3 + 3 * QUICK["cleanup_grace"] + 2
        assert server.stats.requests["Signal"] >= 1  # stopped
        assert server.stats.requests["Delete"] == 1  # and the pool closed
        assert ex.run(render("observe", {}), timeout=30).ok
        assert ex.pools_opened == 2
    assert server.stats.pools_opened == 2


def test_a_shell_closed_by_the_server_while_a_script_runs_is_a_connection_failure(
    server: WinRMTestServer,
) -> None:
    server.faults.pipeline_delay = 2
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        ex.run(render("observe", {}), timeout=30)  # open the pool
        server.faults.close_shell_after = 0.5
        with pytest.raises(ConnectionFailed) as info:
            ex.run(render("observe", {}), timeout=30)
    assert "2150858843" in str(info.value) or "shell" in str(info.value)


def test_a_shell_closed_between_scripts_is_reopened_before_anything_runs(
    server: WinRMTestServer,
) -> None:
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        ex.run(render("observe", {}), timeout=30)
        server.close_shells()
        unsafe = dataclasses.replace(render("observe", {}), idempotent=False)
        assert ex.run(unsafe, timeout=30).ok  # the Command was refused: safe to start again
        assert ex.pools_opened == 2
    assert server.stats.pipelines == 2


def test_an_idle_pool_is_checked_with_is_alive_before_reuse(server: WinRMTestServer) -> None:
    with WinRMExecutor(server.settings(idle_check=0, **QUICK)) as ex:
        ex.run(render("observe", {}), timeout=30)
        server.close_shells()
        assert ex.run(render("observe", {}), timeout=30).ok
        assert ex.pools_opened == 2
    assert server.stats.requests["Get"] >= 1
    assert server.stats.requests["Command"] == 2  # no Command was sent to the dead shell


def test_slow_responses_still_complete_and_are_counted(server: WinRMTestServer) -> None:
    server.faults.latency = 0.1
    started = time.monotonic()
    with WinRMExecutor(server.settings(**QUICK)) as ex:
        assert ex.run(render("observe", {}), timeout=30).ok
    elapsed = time.monotonic() - started
    assert elapsed >= 0.1 * server.stats.total_requests
    print(f"\n100 ms per request: {server.stats.summary()} in {elapsed:.2f} s")


# ------------------------------------------------------- a connection lost inside apply_plan


def _fix(ex: WinRMExecutor, host: SimulatedHost) -> tuple[object, object, object]:
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.planner import plan
    from sectigo_chain.state.recipe import sectigo_fix

    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog, root_strategy="remove")
    before = observe(ex)
    return desired, before, plan(desired, before, at=NOW, catalog=host.catalog, target=ex.target)


@pytest.mark.parametrize("fault", ["socket closed mid-Receive", "shell closed mid-script",
                                   "host drops the reply after action 2"])  # fmt: skip
def test_a_connection_lost_inside_apply_plan_rolls_back_from_the_backups_on_disk(
    fault: str, tmp_path: Path
) -> None:
    """The actions of the plan ran (or may have run) on the host, the reply never came: a
    typed ApplyError, the journal on disk holds every backup the plan took (written before
    the pipeline), and the rollback it triggered leaves the host as it was."""
    from sectigo_chain.errors import ApplyError
    from sectigo_chain.run.applier import apply

    faults = Faults(drop_connection_at=1) if fault.startswith("host") else None
    host = SimulatedHost("broken-r46", faults=faults)
    host.tls_chains()  # serving: a warm HTTP.sys cache (the rollback restarts IIS)
    snapshot = host.snapshot()
    with WinRMTestServer(host, at=NOW) as srv, WinRMExecutor(srv.settings(**QUICK)) as ex:
        desired, before, the_plan = _fix(ex, host)
        assert "restart" in [a.template for a in the_plan.actions]  # so never run twice
        if fault == "socket closed mid-Receive":
            srv.faults.drop_receives = 1
        elif fault == "shell closed mid-script":
            srv.faults.pipeline_delay = 2
            srv.faults.close_shell_after = 0.5
        with pytest.raises(ApplyError) as info:
            apply(the_plan, ex, desired=desired, catalog=host.catalog, journal_dir=tmp_path,  # type: ignore[arg-type]
                  at=NOW, before=before, retry=FAST)  # type: ignore[arg-type]  # fmt: skip
        templates = list(srv.stats.templates)
        print(f"\n{fault}: {srv.stats.summary()}; templates {templates}")
    assert "ConnectionFailed" in str(info.value)
    assert "result was lost" in str(info.value)
    assert info.value.rollback_complete, str(info.value)
    assert templates.count("apply_plan") == 1  # never sent twice (it holds a restart)
    # every action ran on the host before the connection was lost
    actions = [a.template for a in the_plan.actions]  # type: ignore[attr-defined]
    assert host.calls[1 : 1 + len(actions)] == actions
    # the journal: every backup the plan took, every step undone, the host as before
    assert info.value.journal is not None
    doc = json.loads(Path(info.value.journal).read_text())
    assert doc["outcome_unknown"] is True
    assert doc["status"] == "rolled_back"
    removal = next(s for s in doc["steps"] if s["template"] == "remove_certificate")
    assert removal["backup"]["der_b64"]
    assert {s["status"] for s in doc["steps"]} == {"rolled_back"}
    assert host.snapshot() == snapshot


class _JournalWitness:
    """An executor that, when apply_plan arrives, reads the journal file from disk (what a
    crash at that instant would leave) before handing the script to the host."""

    def __init__(self, inner: SimulatedHost, folder: Path) -> None:
        self.inner, self.folder = inner, folder
        self.seen: list[dict[str, object]] = []

    @property
    def target(self) -> str:
        return self.inner.target

    def run(self, script: object, *, timeout: float) -> object:
        if getattr(script, "name", "") == "apply_plan":
            (path,) = self.folder.glob("sectigo-chain-journal-*.json")
            self.seen.append(json.loads(path.read_text()))
        return self.inner.run(script, timeout=timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.inner.close()


def test_every_backup_is_on_disk_before_the_pipeline_that_changes_anything(
    tmp_path: Path,
) -> None:
    from sectigo_chain.run.applier import apply, observe
    from sectigo_chain.state.planner import plan
    from sectigo_chain.state.recipe import sectigo_fix

    host = SimulatedHost("misplaced")
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    before = observe(host)
    the_plan = plan(desired, before, at=NOW, catalog=host.catalog)
    witness = _JournalWitness(host, tmp_path)
    result = apply(the_plan, witness, desired=desired, catalog=host.catalog,  # type: ignore[arg-type]
                   journal_dir=tmp_path, at=NOW, before=before)  # fmt: skip
    assert result.after_plan_empty
    (journal,) = witness.seen
    assert journal["status"] == "in_progress"
    assert [s["status"] for s in journal["steps"]] == ["running"] * len(the_plan.actions)
    assert [s["backup"] for s in journal["steps"]] == [
        a.backup.model_dump(mode="json") if a.backup else None for a in the_plan.actions
    ]
    assert any(s["backup"] for s in journal["steps"])
    assert journal["before"] == before.model_dump(mode="json")
