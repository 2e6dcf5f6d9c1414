"""The whole remote stack on loopback: WinRMExecutor -> pypsrp -> HTTPS -> WSMan -> PSRP ->
SimulatedHost (sectigo_chain.testing.winrm). Real, unmodified pypsrp on the client side."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from sectigo_chain.errors import ConnectionFailed, ScriptFailed
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.hosts.winrm import WinRMExecutor
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import rollback
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.render import render, template_text
from sectigo_chain.testing.winrm import WinRMTestServer

pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")

NOW = dt.datetime.now(dt.timezone.utc)
FAST = RetryPolicy(attempts=3, wait_initial=0)
SITE = "Default Web Site"


@pytest.fixture
def server() -> Iterator[WinRMTestServer]:
    with WinRMTestServer(SimulatedHost("broken-r46"), at=NOW) as srv:
        yield srv


@pytest.fixture
def executor(server: WinRMTestServer) -> Iterator[WinRMExecutor]:
    with WinRMExecutor(server.settings()) as ex:
        yield ex


def test_observe_over_winrm_returns_what_the_host_returns(
    server: WinRMTestServer, executor: WinRMExecutor
) -> None:
    remote = executor.run(render("observe", {}), timeout=30)
    direct = SimulatedHost("broken-r46", lab=server.host.lab).run(render("observe", {}))
    assert remote.ok
    assert remote.data == direct.data
    assert [r.template for r in server.received] == ["observe"]
    assert server.received[0].script == template_text("observe")
    assert server.received[0].parameters == {"Payload": render("observe", {}).payload}
    assert server.stats.pools_opened == 1
    assert server.stats.pipelines == 1


def test_wrong_password_is_refused_like_windows(server: WinRMTestServer) -> None:
    settings = server.settings(password=SecretStr("not-the-password"))
    with WinRMExecutor(settings) as ex, pytest.raises(ConnectionFailed) as info:
        ex.run(render("observe", {}), timeout=30)
    assert "not-the-password" not in str(info.value)
    assert "AuthenticationError" in str(info.value)
    assert server.stats.requests["401"] >= 1
    assert server.stats.pipelines == 0


def test_an_unknown_script_gets_a_powershell_error_record(
    server: WinRMTestServer, executor: WinRMExecutor
) -> None:
    script = dataclasses.replace(render("observe", {}), text="Get-Process")
    with pytest.raises(ScriptFailed) as info:
        executor.run(script, timeout=30)
    assert info.value.records == ["this loopback endpoint only runs the sectigo_chain templates"]
    assert server.received[0].template is None


def test_a_script_that_throws_comes_back_as_error_records_not_text(tmp_path: Path) -> None:
    host = SimulatedHost("broken-r46", faults=Faults(fail_action=0))
    with WinRMTestServer(host, at=NOW) as srv, WinRMExecutor(srv.settings()) as ex:
        script = render("set_root_auto_update", {"disabled": True})
        with pytest.raises(ScriptFailed) as info:
            ex.run(script, timeout=30)
    assert info.value.records == ["injected failure in set_root_auto_update"]
    assert "returned no result document" in str(info.value)


def test_the_pool_is_reused_for_every_script(
    server: WinRMTestServer, executor: WinRMExecutor
) -> None:
    for _ in range(3):
        executor.run(render("observe", {}), timeout=30)
    assert server.stats.pools_opened == 1
    assert server.stats.pipelines == 3
    assert executor.pools_opened == 1


def test_plan_apply_verify_rollback_over_winrm(
    server: WinRMTestServer, executor: WinRMExecutor, tmp_path: Path
) -> None:
    host = server.host
    before = host.snapshot()
    desired = sectigo_fix(site=SITE, catalog=host.catalog, root_strategy="remove")
    first = plan(desired, observe(executor), at=NOW, catalog=host.catalog, target=executor.target)
    assert first.actions
    result = apply(
        first, executor, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
        retry=FAST, at=NOW,
    )  # fmt: skip
    assert result.after_plan_empty
    assert host.snapshot() != before
    # The fix is what the simulated host says it is, seen through WinRM.
    again = plan(desired, observe(executor), at=NOW, catalog=host.catalog, target=executor.target)
    assert again.empty
    assert result.journal is not None
    undone = rollback(result.journal, executor, retry=FAST)
    assert undone.complete, undone
    after = host.snapshot()
    after.pop("_sim", None)
    expected = dict(before)
    expected.pop("_sim", None)
    assert after == expected
    print(f"\nplan+apply+rollback over WinRM: {server.stats.summary()}")
    assert server.stats.pools_opened == 1


HOSTILE = [
    "'\u2018\u2019\u201a\u201b",  # the five PowerShell single-quote characters
    '"\u201c\u201d\u201e',  # and the double quotes
    "$(Remove-Item C:\\ -Recurse)",
    "`n`0`$ backtick",
    "line1\nline2\r\nline3",
    "nul\x00inside",
    "\U0001f512 non-BMP \U00010348",
    "_x0041_ _X000A_ _x00_",  # what CLIXML's own escapes look like
    "x" * 65536,
]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:20]))
def test_hostile_parameter_values_arrive_byte_for_byte(
    server: WinRMTestServer, executor: WinRMExecutor, value: str
) -> None:
    # The parameter itself (not only the base64 payload) crosses CLIXML unchanged.
    script = dataclasses.replace(render("observe", {}), payload=value)
    with pytest.raises(ScriptFailed):
        executor.run(script, timeout=60)  # not base64: the "template" refuses it
    assert server.received[-1].parameters == {"Payload": value}


def test_hostile_values_inside_a_payload_reach_the_host_unchanged(
    server: WinRMTestServer, executor: WinRMExecutor
) -> None:
    site = "".join(HOSTILE[:7])
    script = render("remove_binding", {"site": site, "ip": "*", "port": 443, "host": ""})
    with pytest.raises(ScriptFailed):  # no such site on the host
        executor.run(script, timeout=30)
    received = server.received[-1]
    assert received.template == "remove_binding"
    assert received.parameters["Payload"] == script.payload
    assert script.decoded_params()["site"] == site


@pytest.mark.load
def test_a_hundred_hosts_at_once() -> None:
    servers = [WinRMTestServer(SimulatedHost("broken-r46"), at=NOW).start() for _ in range(100)]
    try:

        def one(srv: WinRMTestServer) -> bool:
            with WinRMExecutor(srv.settings()) as ex:
                return ex.run(render("observe", {}), timeout=60).ok

        with ThreadPoolExecutor(max_workers=100) as pool:
            results = list(pool.map(one, servers))
    finally:
        for srv in servers:
            srv.stop()
    assert results == [True] * 100
    assert all(s.stats.pipelines == 1 and s.stats.pools_opened == 1 for s in servers)


def test_a_full_fix_round_trips_are_counted_and_printed(tmp_path: Path) -> None:
    """observe, plan, apply (every action), verify on the host: at most 3 pipelines on one
    runspace pool (issue 12, point 3), counted per host and printed."""
    from sectigo_chain.run.verifier import verify

    host = SimulatedHost("broken-r46")
    listener = host.start_tls()
    endpoint = listener.address_for(SITE)
    with WinRMTestServer(host, at=NOW) as srv, WinRMExecutor(srv.settings()) as ex:
        desired = sectigo_fix(site=SITE, catalog=host.catalog, root_strategy="remove")
        before = observe(ex)
        the_plan = plan(desired, before, at=NOW, catalog=host.catalog, target=ex.target)
        result = apply(
            the_plan, ex, desired=desired, catalog=host.catalog, journal_dir=tmp_path, at=NOW,
            before=before,
        )  # fmt: skip
        report = verify(ex, desired, endpoint=endpoint, catalog=host.catalog)
        stats = srv.stats
    host.close()
    assert result.after_plan_empty
    assert report.ok
    assert len(the_plan.actions) >= 3  # import the cross-sign, remove the root, iisreset
    # observe; every action and the re-observe in one apply_plan; verify_host
    assert stats.templates == ["observe", "apply_plan", "verify_host"]
    assert stats.pipelines == 3
    assert stats.pools_opened == 1
    assert host.invocations == stats.templates
    # the host ran every action, observed again, and built the bound certificate's chain
    assert host.calls == [
        "observe", *[a.template for a in the_plan.actions], "observe", "observe", "verify_chain",
    ]  # fmt: skip
    # per pipeline: Command, Receive(s) until the state is Completed, Signal (Terminate)
    assert stats.requests["Command"] == stats.requests["Signal"] == stats.pipelines
    assert stats.requests["Receive"] >= stats.pipelines
    print(
        f"\nfull fix of one host over WinRM ({len(the_plan.actions)} plan actions): "
        f"{stats.summary()}; templates {stats.templates}"
    )


def test_hostile_values_inside_an_apply_plan_reach_the_host_unchanged(
    server: WinRMTestServer, executor: WinRMExecutor
) -> None:
    """Each action's own payload travels inside the one apply_plan payload, through CLIXML,
    and reaches the host's handler byte for byte (here: a site that does not exist)."""
    from sectigo_chain.hosts.base import entry_result
    from sectigo_chain.templates.render import render_plan

    site = "".join(HOSTILE[:8])
    inner = render("remove_binding", {"site": site, "ip": "*", "port": 443, "host": ""})
    script = render_plan([inner, render("set_root_auto_update", {"disabled": True})])
    with pytest.raises(ScriptFailed, match="action 1 of 2 failed") as info:
        executor.run(script, timeout=30)
    received = server.received[-1]
    assert received.template == "apply_plan"
    assert received.parameters["Payload"] == script.payload
    assert script.decoded_params()["actions"][0]["payload"] == inner.payload
    result = info.value.result  # the document, every action's result in it
    assert result is not None
    assert result.ok is False
    first, second = result.data["results"]
    assert first["status"] == "failed"
    assert second["status"] == "not_run"
    assert entry_result(first).error["message"] == f"Cannot find site '{site}'."  # type: ignore[index]
    assert server.host.calls[-1] == "remove_binding"


def test_a_failing_action_over_winrm_is_journaled_per_action_and_rolled_back(
    tmp_path: Path,
) -> None:
    """Action 2 fails on the host: apply_plan stops there; the journal records action 1 done,
    action 2 failed with its error, the rest not run; the rollback undoes action 1."""
    from sectigo_chain.errors import ApplyError

    host = SimulatedHost("broken-r46", faults=Faults(fail_action=1))
    host.tls_chains()
    snapshot = host.snapshot()
    with WinRMTestServer(host, at=NOW) as srv, WinRMExecutor(srv.settings()) as ex:
        desired = sectigo_fix(site=SITE, catalog=host.catalog, root_strategy="remove")
        before = observe(ex)
        the_plan = plan(desired, before, at=NOW, catalog=host.catalog, target=ex.target)
        with pytest.raises(ApplyError, match="step 2/3") as info:
            apply(the_plan, ex, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                  at=NOW, before=before, retry=FAST)  # fmt: skip
        templates = list(srv.stats.templates)
    assert templates.count("apply_plan") == 1
    assert info.value.rollback_complete, str(info.value)
    assert "injected failure" in str(info.value)
    assert info.value.journal is not None
    doc = json.loads(Path(info.value.journal).read_text())
    assert "outcome_unknown" not in doc
    statuses = [s["status"] for s in doc["steps"]]
    assert statuses == ["rolled_back", "rolled_back", "not_run"]  # done, failed, not run
    assert "injected failure" in doc["steps"][1]["error"]
    # the plan's restart never ran and only store changes were undone: nothing restarted
    assert "restart" not in host.calls
    assert host.snapshot() == snapshot
