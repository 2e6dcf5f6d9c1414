"""Transport faults on the loopback WinRM endpoint, one per test: a typed error, retry only for
templates that are safe to repeat, the runspace pool dropped and re-created, the deadline held
(issue 11.7: pypsrp's own retries bounded, session dropped after a timeout, is_alive() before
reuse, a closed shell is a connection failure)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import time
from collections.abc import Iterator

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
