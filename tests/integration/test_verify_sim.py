"""verify() against the simulated host over real TLS on 127.0.0.1 (issue 5's done-when).

The served chain is fetched with the real ``tls`` code from the simulated host's listener and
judged by the real ``profiles`` code; every host interaction goes through rendered templates.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.verifier import VerifyReport, verify
from sectigo_chain.state.models import DesiredState
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.tls.check import check_endpoint

SITE = "Default Web Site"
PROFILES = ("legacy", "modern", "both")
NOW = dt.datetime.now(dt.timezone.utc)
FAST = RetryPolicy(attempts=1)


def _desired(host: SimulatedHost) -> DesiredState:
    return sectigo_fix(site=SITE, catalog=host.catalog)


def _verify(host: SimulatedHost, endpoint: Any, **kw: Any) -> VerifyReport:
    return verify(host, _desired(host), endpoint=endpoint, settle=0.0, retry=FAST, **kw)


@pytest.mark.parametrize(("scenario", "root"), [("broken-r46", "R46"), ("broken-e46", "E46")])
def test_check_fails_legacy_then_apply_makes_all_profiles_pass(
    scenario: str, root: str, tmp_path: Path
) -> None:
    """Issue 5 done-when: check fails for legacy with SHORT_CHAIN_R46; after apply it passes
    for legacy, modern and both."""
    host = SimulatedHost(scenario)
    with host.start_tls() as listener:
        ip, port, name = listener.address_for(SITE)
        before = check_endpoint(ip, port, servername=name, profiles=PROFILES, catalog=host.catalog)
        assert before.verdict == "fail"
        short = [f for f in before.findings if f.code == "SHORT_CHAIN_R46"]
        assert short
        assert root in short[0].detail
        assert not before.profiles["legacy"].valid
        assert before.profiles["modern"].valid

        desired = _desired(host)
        the_plan = plan(desired, observe(host), at=NOW, catalog=host.catalog, target=host.target)
        result = apply(the_plan, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path)
        assert result.after_plan_empty

        after = check_endpoint(ip, port, servername=name, profiles=PROFILES, catalog=host.catalog)
        assert after.verdict == "pass", str(after)
        assert {p: r.valid for p, r in after.profiles.items()} == dict.fromkeys(PROFILES, True)
        assert len(after.served_chain) == 3  # leaf, issuing CA, cross-signed root

        report = _verify(host, (ip, port, name))
    assert report.verdict == "pass", str(report)
    assert report.plan_empty
    assert report.host_chain is not None
    assert report.host_chain.right
    assert report.host_chain.valid
    # the host-built chain ends at USERTrust; what it implies is what was served
    assert report.host_chain.elements[-1].common_name.startswith("USERTrust")
    assert report.served is not None
    assert list(report.host_chain.expected_served) == [
        c.thumbprint for c in report.served.served_chain
    ]
    assert report.rungs == ()
    assert report.fixed_by is None
    assert not report.reboot_required


def test_wrong_host_chain_is_reported_and_never_climbed() -> None:
    host = SimulatedHost("broken-r46")
    with host.start_tls() as listener:
        host.calls.clear()
        report = _verify(host, listener.address_for(SITE))
    assert report.verdict == "fail"
    assert report.host_chain is not None
    assert not report.host_chain.right
    assert report.host_chain.profiles == {"legacy": False, "modern": True, "both": True}
    assert "restarting cannot fix" in (report.host_chain.problem or "")
    assert report.initial_served_verdict == "fail"
    assert report.rungs == ()
    assert not report.reboot_required
    assert not report.plan_empty
    assert any("import_cross_sign" in r for r in report.remaining)
    # read-only templates only: nothing was re-bound or restarted
    assert host.calls == ["observe", "verify_chain"]
    assert host.model.iisreset_count == 0


# served_cache_refresh (the weakest event that refreshes the sim's cache) -> what verify climbs.
# 'recycle' is not on verify's ladder: the binding rung does not reach it, iisreset does.
LADDER_CASES = [
    ("binding", ["binding"], "binding"),
    ("recycle", ["binding", "iisreset"], "iisreset"),
    ("iisreset", ["binding", "iisreset"], "iisreset"),
    ("http_service", ["binding", "iisreset", "http_service"], "http_service"),
]


@pytest.mark.parametrize(("rule", "tried", "fixed_by"), LADDER_CASES)
def test_stale_cache_climbs_the_ladder_to_the_rung_that_fixes_it(
    rule: Any, tried: list[str], fixed_by: str
) -> None:
    host = SimulatedHost("stale-cache", served_cache_refresh=rule)
    with host.start_tls() as listener:
        endpoint = listener.address_for(SITE)
        host.calls.clear()
        report = _verify(host, endpoint)
        # the listener now serves the refreshed chain to anyone
        again = check_endpoint(*endpoint[:2], servername=endpoint[2], catalog=host.catalog)
    assert report.initial_served_verdict == "fail"
    assert report.host_chain is not None
    assert report.host_chain.right
    assert report.rungs_tried == tried
    assert report.fixed_by == fixed_by
    assert [r.fixed for r in report.rungs] == [False] * (len(tried) - 1) + [True]
    assert all(r.ok and r.error is None for r in report.rungs)
    assert not report.reboot_required
    assert report.verdict == "pass"
    assert report.served is not None
    assert report.served.verdict == "pass"
    assert again.verdict == "pass"
    # the rungs went through the real template names
    expected = {"binding": "set_binding", "iisreset": "restart", "http_service": "restart"}
    assert host.calls == ["observe", "verify_chain", *[expected[t] for t in tried]]
    assert host.model.iisreset_count == (1 if "iisreset" in tried else 0)


def test_reboot_required_when_no_rung_refreshes_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose cache only a reboot refreshes (the model's events all do nothing)."""
    host = SimulatedHost("stale-cache")
    monkeypatch.setattr(host.model, "refresh_served", lambda *_a, **_k: None)
    with host.start_tls() as listener:
        report = _verify(host, listener.address_for(SITE))
    assert report.rungs_tried == ["binding", "iisreset", "http_service"]
    assert all(r.ok and r.served_verdict == "fail" for r in report.rungs)
    assert report.fixed_by is None
    assert report.reboot_required
    assert report.verdict == "fail"
    assert "REBOOT REQUIRED" in str(report)


def test_reboot_required_when_every_rung_script_fails() -> None:
    """Every action script fails (e.g. http_service refused over WinRM): errors are recorded."""
    host = SimulatedHost("stale-cache", faults=Faults(fail_action=0, persistent=True))
    with host.start_tls() as listener:
        report = _verify(host, listener.address_for(SITE))
    assert report.rungs_tried == ["binding", "iisreset", "http_service"]
    assert all(not r.ok and "injected" in (r.error or "") for r in report.rungs)
    assert report.reboot_required
    assert report.verdict == "fail"


def test_climb_ladder_false_reports_without_restarting() -> None:
    host = SimulatedHost("stale-cache")
    with host.start_tls() as listener:
        report = _verify(host, listener.address_for(SITE), climb_ladder=False)
    assert report.rungs == ()
    assert report.verdict == "fail"
    assert host.model.iisreset_count == 0
    assert any("restart should help" in n for n in report.notes)


def test_without_an_endpoint_the_served_chain_is_not_checked() -> None:
    host = SimulatedHost("fixed")
    report = _verify(host, None)
    assert report.served is None
    assert report.endpoint is None
    assert report.verdict == "pass"
    assert any("not checked" in n for n in report.notes)
    assert "NOT checked" in str(report)


def test_report_json_round_trips() -> None:
    host = SimulatedHost("stale-cache")
    with host.start_tls() as listener:
        report = _verify(host, listener.address_for(SITE))
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["verdict"] == "pass"
    assert doc["rungs_tried"] == ["binding", "iisreset"]
    assert doc["fixed_by"] == "iisreset"
    assert doc["served"]["verdict"] == "pass"
    assert doc["host_chain"]["right"] is True
    assert doc["binding"]["certificate_hash"] == report.host_chain.thumbprint  # type: ignore[union-attr]
    text = str(report)
    assert "fixed by: iisreset /restart" in text
    assert "1. re-apply the https binding" in text


def test_unknown_site_is_an_input_error() -> None:
    host = SimulatedHost("fixed")
    with pytest.raises(InputError, match="not found on the host"):
        verify(host, _desired(host), site="Nope")
