"""Issue 17 (4): after a distrust action, a self-test of the host's own outbound TLS.

The simulated host validates a remote server's chain with its own stores
(``HostModel.client_chain``): the same chain engine, roots and Disallowed as for its own
certificates. The remote server here is an ACME-like endpoint whose certificate chains through
CA DV R36 to R46 and which sends leaf + R36 only, as many Sectigo sites do. With the self-signed
R46 removed, the host can still validate it through the cross-sign, but only when USERTrust RSA
is in its Root store: without it, distrusting R46 breaks the host's own clients (win-acme
#1943), and the apply is rolled back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.errors import ApplyError, InputError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.outbound import check_outbound_url
from sectigo_chain.state.models import DesiredState
from sectigo_chain.state.outbound import OutboundCheck, judge, outcome_of
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.x509.certs import thumbprint

FAST = RetryPolicy(attempts=2, wait_initial=0)
URL = "https://acme.example.test/directory"


def _host(*, usertrust_in_root: bool = True, scenario: str = "broken-r46") -> SimulatedHost:
    host = SimulatedHost(scenario)
    leaf = host.lab.issue_leaf(["acme.example.test"])
    host.model.outbound[URL] = [leaf.cert, leaf.issuer.cert]  # leaf + R36: no cross-sign sent
    if not usertrust_in_root:
        # the root is fetched on demand on a real host; here it never was, and Windows Update
        # is out of reach (the scenario's default), so Automatic Root Update cannot add it
        tp = thumbprint(host.lab.usertrust_rsa.cert)
        host.model.discard(("LocalMachine", "Root", ".AuthRoot"), tp)
    return host


def _plan(host: SimulatedHost, url: str | None = URL) -> tuple[DesiredState, Plan]:
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    desired = desired.model_copy(update={"outbound_url": url})
    return desired, plan(desired, observe(host), at=host.clock(), catalog=host.catalog)


def test_the_self_test_runs_before_and_after_and_is_journaled(tmp_path: Path) -> None:
    host = _host()
    desired, p = _plan(host)
    assert p.outbound_url == URL
    assert any("self-test" in line for line in p.summary_lines())
    result = apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                   retry=FAST)  # fmt: skip
    assert host.calls.count("outbound_tls_test") == 2
    first = host.calls.index("outbound_tls_test")
    assert host.calls[first + 1 :].count("outbound_tls_test") == 1  # one before, one after
    assert result.outbound is not None
    assert result.outbound.verdict == "ok"
    assert result.outbound.before is not None
    assert (result.outbound.before.outcome, result.outbound.after.outcome) == (  # type: ignore[union-attr]
        "trusted", "trusted"
    )  # fmt: skip
    assert result.journal is not None
    doc = json.loads(Path(result.journal).read_text())
    assert doc["outbound"]["verdict"] == "ok"
    assert doc["outbound"]["after"]["outcome"] == "trusted"
    assert result.to_document()["outbound"]["verdict"] == "ok"


def test_a_distrust_that_breaks_the_hosts_own_clients_is_rolled_back(tmp_path: Path) -> None:
    host = _host(usertrust_in_root=False)
    r46 = thumbprint(host.lab.r46_root.cert)
    assert host.model.copies(r46, "LocalMachine", "Root")
    desired, p = _plan(host)
    with pytest.raises(ApplyError) as caught:
        apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path, retry=FAST)
    err = caught.value
    assert "outbound self-test failed" in str(err)
    assert "win-acme #1943" in str(err)
    assert err.rollback_complete
    assert host.model.copies(r46, "LocalMachine", "Root")  # the self-signed R46 is back
    assert err.journal is not None
    doc = json.loads(Path(err.journal).read_text())
    assert doc["outbound"]["verdict"] == "fail"
    assert doc["outbound"]["before"]["outcome"] == "trusted"
    assert doc["outbound"]["after"]["outcome"] == "untrusted"
    assert doc["status"] == "rolled_back"


def test_an_unreachable_url_is_a_warning_not_a_rollback(tmp_path: Path) -> None:
    host = _host(usertrust_in_root=False)
    desired, p = _plan(host, "https://unknown.example.test/")
    result = apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                   retry=FAST)  # fmt: skip
    assert result.outbound is not None
    assert result.outbound.verdict == "warn"
    assert result.outbound.after is not None
    assert result.outbound.after.outcome == "unreachable"
    assert result.changed


def test_no_distrust_action_no_self_test(tmp_path: Path) -> None:
    host = _host(scenario="expiring-intermediate")
    desired, p = _plan(host)
    assert {a.kind for a in p.actions} == {"remove_expired_intermediate", "restart"}
    assert p.outbound_url is None
    apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path, retry=FAST)
    assert "outbound_tls_test" not in host.calls


def test_automatic_root_update_fetches_the_missing_root_for_the_self_test(tmp_path: Path) -> None:
    host = _host(usertrust_in_root=False)
    host.model.windows_update_reachable = True  # the drift's condition: roots come on demand
    desired, p = _plan(host)
    result = apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                   retry=FAST)  # fmt: skip
    assert result.outbound is not None
    assert result.outbound.verdict == "ok"
    usertrust = thumbprint(host.lab.usertrust_rsa.cert)
    assert host.model.copies(usertrust, "LocalMachine", "Root")


def test_outcomes_and_verdicts() -> None:
    assert outcome_of("Success") == "trusted"
    assert outcome_of("ProtocolError") == "trusted"  # an HTTP error after a valid handshake
    assert outcome_of("TrustFailure") == "untrusted"
    assert outcome_of("NameResolutionFailure") == "unreachable"
    assert outcome_of("SecureChannelFailure") == "tls_error"
    assert outcome_of("SomethingNew") == "error"

    def check(outcome: str) -> OutboundCheck:
        return OutboundCheck(url=URL, outcome=outcome)  # type: ignore[arg-type]

    assert judge(URL, check("trusted"), check("untrusted")).verdict == "fail"
    assert judge(URL, check("untrusted"), check("untrusted")).verdict == "warn"  # not ours
    assert judge(URL, None, check("untrusted")).verdict == "warn"
    assert judge(URL, check("trusted"), check("unreachable")).verdict == "warn"
    assert judge(URL, check("unreachable"), check("trusted")).verdict == "ok"


def test_bad_urls_are_refused_clearly() -> None:
    assert check_outbound_url(None) is None
    assert check_outbound_url(URL) == URL
    for bad in ("http://acme.example.test/", "https://exa mple/", "ftp://x", "https://"):
        with pytest.raises(InputError, match="https://"):
            check_outbound_url(bad)


def test_cli_apply_reports_the_self_test(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["--journal-dir", str(tmp_path), "--outbound-url", "https://unknown.example/"]
    code = main(["apply", "--target", "sim://broken-r46", "--yes", "--no-served", "--json", *args])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["outbound"]["verdict"] == "warn"  # the simulated host resolves no such name
    assert doc["plan"]["outbound_url"] == "https://unknown.example/"
    code = main(["plan", "--target", "sim://broken-r46", "--no-served",
                 "--outbound-url", "http://plain.example/"])  # fmt: skip
    assert code != 0
    assert "https://" in capsys.readouterr().err


def test_fleet_rows_carry_the_self_test_and_a_breaking_host_is_rolled_back(
    tmp_path: Path,
) -> None:
    from sectigo_chain.fleet.inventory import HostSecrets, Inventory, ResolvedHost
    from sectigo_chain.fleet.rollout import run_fleet
    from sectigo_chain.hosts.base import Executor

    made: dict[str, SimulatedHost] = {}

    def factory(host: ResolvedHost, secrets: HostSecrets) -> Executor:
        made[host.name] = _host(usertrust_in_root=host.name != "breaks")
        return made[host.name]

    inv = Inventory.model_validate({
        "defaults": {"outbound_url": URL},
        "hosts": [{"name": "fine", "target": "sim://broken-r46"},
                  {"name": "breaks", "target": "sim://broken-r46"}],
    })  # fmt: skip
    report = run_fleet(inv, "apply", executor_factory=factory, journal_dir=tmp_path, retry=FAST,
                       canary=False, stop_on_failure=False, concurrency=1)  # fmt: skip
    fine, breaks = report.host("fine"), report.host("breaks")
    assert fine.status == "applied"
    assert fine.outbound is not None
    assert fine.outbound.startswith("ok: ")
    assert breaks.status == "rolled_back"
    assert breaks.error is not None
    assert "outbound self-test failed" in breaks.error.message
    assert made["breaks"].model.copies(thumbprint(made["breaks"].lab.r46_root.cert),
                                       "LocalMachine", "Root")  # fmt: skip
    assert "outbound self-test" in report.to_html()
