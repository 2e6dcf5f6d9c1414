"""Issue 17 (3): the tie-break trap, and expired or expiring intermediates.

The Windows prediction states its tie rule and where it comes from; the plan warns when a path
of the same length competes (decided only by that rule) or takes over when a certificate
expires, and removes intermediates that are expired or expire within N days from
LocalMachine\\CA (SYSTEM's CA store: reported for removal by hand). The scenarios
``competing-cross`` and ``expiring-intermediate`` date their extra certificates from the wall
clock like their leaf, so every test judges at the instant the host was built (NOW, taken after).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509

from sectigo_chain.cli.main import main
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.hosts.sim.model import SimBinding, SimSite, SslCertEntry
from sectigo_chain.hosts.sim.scenarios import scenario_leaf
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.state.models import DesiredState
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.testing.lab import LabHierarchy, make_certificate, new_key
from sectigo_chain.x509.certs import thumbprint
from sectigo_chain.x509.paths import WINDOWS_TIE_RULE, competing_paths, predict_windows_chain

FAST = RetryPolicy(attempts=3, wait_initial=0)


def _desired(host: SimulatedHost) -> DesiredState:
    return sectigo_fix(site="Default Web Site", catalog=host.catalog)


def _plan(host: SimulatedHost, at: dt.datetime, **kw: int) -> Plan:
    return plan(_desired(host), observe(host), at=at, catalog=host.catalog, **kw)  # type: ignore[arg-type]


def _extra(host: SimulatedHost, location: str) -> list[str]:
    """Thumbprints in ``location``'s CA store other than the R36 and the R46 cross-sign."""
    keep = {thumbprint(host.lab.r36.cert), thumbprint(host.lab.r46_cross)}
    return [tp for (loc, name, _), certs in host.model.stores.items()
            if (loc, name) == (location, "CA") for tp in certs if tp not in keep]  # fmt: skip


def _served(host: SimulatedHost, at: dt.datetime) -> list[str]:
    leaf = scenario_leaf(host.lab, "RSA")
    return [thumbprint(c) for c in host.model.build_chain(leaf.cert, at).served]


# ------------------------------------------------------------------------- the prediction


def test_the_prediction_states_its_tie_rule_and_its_sources() -> None:
    lab = LabHierarchy.create()
    at = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    leaf = lab.issue_leaf(at=at)
    pred = predict_windows_chain(
        leaf.cert, root=[lab.usertrust_rsa.cert], ca=[lab.r36.cert, lab.r46_cross], at=at
    )
    assert pred.tie_rule == WINDOWS_TIE_RULE
    for source in ("KB 2831004", "newer notBefore", "reported by users", "win-acme #1918",
                   "Posh-ACME #383", "DST Root CA X3", "not documented by Microsoft"):  # fmt: skip
        assert source in pred.tie_rule
    # a swapped-in policy states no rule of ours
    other = predict_windows_chain(
        leaf.cert, root=[lab.usertrust_rsa.cert], ca=[lab.r36.cert, lab.r46_cross], at=at,
        policy=lambda paths: paths[-1] if paths else None,
    )  # fmt: skip
    assert other.tie_rule == ""


def test_competing_paths_finds_the_tie_and_the_switch_at_expiry() -> None:
    lab = LabHierarchy.create()
    at = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    leaf = lab.issue_leaf(at=at)
    newer = make_certificate(
        subject=lab.r46_root.cert.subject, public_key=lab.r46_root.key.public_key(),
        issuer=lab.usertrust_rsa.cert.subject, issuer_key=lab.usertrust_rsa.key,
        not_before=at - dt.timedelta(days=2), not_after=at + dt.timedelta(days=20), ca=True,
    )  # fmt: skip
    stores = {"root": [lab.usertrust_rsa.cert], "ca": [lab.r36.cert, lab.r46_cross, newer]}
    pred = predict_windows_chain(leaf.cert, at=at, **stores)
    assert newer in pred.served  # newer NotBefore wins the tie
    assert "tie rule" in pred.reason
    comps = competing_paths(leaf.cert, at=at, **stores)
    assert [c.kind for c in comps] == ["tie", "after_expiry"]
    assert comps[0].differing == (lab.r46_cross,)
    assert comps[1].expiring == newer
    assert comps[1].when == newer.not_valid_after_utc + dt.timedelta(seconds=1)
    assert lab.r46_cross in comps[1].path.certificates
    # without the twin: nothing competes (the served chain is decided by length alone)
    alone = {"root": [lab.usertrust_rsa.cert], "ca": [lab.r36.cert, lab.r46_cross]}
    assert competing_paths(leaf.cert, at=at, **alone) == []
    # an expiry after the leaf's own does not count
    assert competing_paths(leaf.cert, at=at, until=at + dt.timedelta(days=10), **stores)[1:] == []


# ------------------------------------------------------------------------- competing cross-sign


def test_competing_cross_sign_in_system_ca_wins_on_the_tie_rule_and_the_plan_warns() -> None:
    host = SimulatedHost("competing-cross")
    now = dt.datetime.now(dt.timezone.utc)
    (twin,) = _extra(host, "SYSTEM")
    assert twin in _served(host, now)  # the newer NotBefore wins in the model
    assert thumbprint(host.lab.r46_cross) not in _served(host, now)
    p = _plan(host, now)
    trap = [w for w in p.warnings if w.startswith("tie-break trap") and "(after this plan)" in w]
    assert len(trap) == 1, p.warnings
    assert twin in trap[0].split("Windows builds through", 1)[1].split(";")[0]
    assert "only the tie rule decides" in trap[0]
    assert "reported by users, not documented by Microsoft" in trap[0]
    assert "the path through the cross-sign this fix installs loses" in trap[0]
    # SYSTEM's store is not written by the templates: reported for manual removal, not planned
    assert any("SYSTEM's CA store" in w and "by hand" in w for w in p.warnings)
    assert not any(a.params.get("store_location") == "SYSTEM" for a in p.actions)


# ------------------------------------------------------------------------- stale intermediates


def test_expired_and_expiring_intermediates_are_removed_and_the_switch_is_warned(
    tmp_path: Path,
) -> None:
    host = SimulatedHost("expiring-intermediate")
    now = dt.datetime.now(dt.timezone.utc)
    extra = _extra(host, "LocalMachine")
    (system_expired,) = _extra(host, "SYSTEM")
    expiring = next(tp for tp in extra if tp != system_expired)
    assert expiring in _served(host, now)  # the re-issued R36 (newer NotBefore) is served now
    p = _plan(host, now)
    removed = [a for a in p.actions if a.kind == "remove_expired_intermediate"]
    assert sorted(a.params["thumbprint"] for a in removed) == sorted(extra)
    assert all(a.params["store_location"] == "LocalMachine" and a.backup for a in removed)
    reasons = {a.params["thumbprint"]: a.reason for a in removed}
    assert "expired on" in reasons[system_expired]
    assert "within 30 days" in reasons[expiring]
    assert any(system_expired in w and "SYSTEM's CA store" in w and "by hand" in w
               for w in p.warnings)  # fmt: skip
    switch = [w for w in p.warnings if "switches on its own" in w]
    assert len(switch) == 1
    assert expiring in switch[0]
    assert "this plan removes what makes it compete" in switch[0]
    result = apply(p, host, desired=_desired(host), catalog=host.catalog, journal_dir=tmp_path,
                   retry=FAST, at=now)  # fmt: skip
    assert result.after_plan_empty, result.after_plan
    assert _extra(host, "LocalMachine") == []
    assert _extra(host, "SYSTEM") == [system_expired]
    assert thumbprint(host.lab.r36.cert) in _served(host, now)


def test_the_horizon_is_a_parameter() -> None:
    host = SimulatedHost("expiring-intermediate")
    now = dt.datetime.now(dt.timezone.utc)
    p = _plan(host, now, expiring_within_days=5)
    removed = {a.params["thumbprint"] for a in p.actions if a.kind == "remove_expired_intermediate"}
    (system_expired,) = _extra(host, "SYSTEM")
    assert removed == {system_expired}  # expired only; the 10-day one stays
    # ... and, staying, it still takes over the served chain now and hands it back on expiry
    assert any("(after this plan)" in w and "switches on its own" in w for w in p.warnings)


def test_an_expiring_intermediate_the_leaf_still_needs_is_only_warned() -> None:
    host = SimulatedHost("expiring-intermediate")
    now = dt.datetime.now(dt.timezone.utc)
    assert host.model.discard(("LocalMachine", "CA", ".Default"), thumbprint(host.lab.r36.cert))
    p = _plan(host, now)
    (system_expired,) = _extra(host, "SYSTEM")
    removed = {a.params["thumbprint"] for a in p.actions if a.kind == "remove_expired_intermediate"}
    assert removed == {system_expired}
    assert any("is the only trusted path for" in w and "not removed" in w for w in p.warnings)


def test_plan_cli_takes_the_horizon(capsys: pytest.CaptureFixture[str]) -> None:
    def removals(*extra: str) -> int:
        code = main(["plan", "--target", "sim://expiring-intermediate", "--json", *extra])
        assert code == 0
        doc = json.loads(capsys.readouterr().out)
        return sum(a["kind"] == "remove_expired_intermediate" for a in doc["plan"]["actions"])

    assert removals() == 2  # the expired one and the one expiring in 10 days
    assert removals("--expiring-days", "5") == 1
    assert main(["plan", "--target", "sim://fixed", "--expiring-days", "-1"]) == 2
    assert "expiring_within_days must be 0 or more" in capsys.readouterr().err


def test_an_expiring_intermediate_another_site_needs_is_not_removed() -> None:
    """A soon-expiring intermediate of another CA that another site's certificate still needs
    (no other path) stays: the plan fixes one site and must not break another one early."""
    host = SimulatedHost("fixed")
    now = dt.datetime.now(dt.timezone.utc)
    day = dt.timedelta(days=1)
    lab = host.lab
    ca_key = new_key("RSA")
    ca_name = x509.Name.from_rfc4514_string("CN=Other Issuing CA (lab),O=Other,C=GB")
    other_ca = make_certificate(
        subject=ca_name, public_key=ca_key.public_key(), issuer=lab.usertrust_rsa.cert.subject,
        issuer_key=lab.usertrust_rsa.key, not_before=now - day, not_after=now + 10 * day,
        ca=True, path_length=0,
    )  # fmt: skip
    leaf_key = new_key("RSA")
    leaf = make_certificate(
        subject=x509.Name.from_rfc4514_string("CN=other.example.test"),
        public_key=leaf_key.public_key(), issuer=ca_name, issuer_key=ca_key,
        not_before=now - day, not_after=now + 5 * day, ca=False,
        dns_names=["other.example.test"],
    )  # fmt: skip
    host.model.add("LocalMachine", "CA", other_ca)
    host.model.add("LocalMachine", "My", leaf, key=leaf_key, key_storage="machine")
    host.model.sites["Other"] = SimSite("Other", 2, bindings=[SimBinding("https", "*", 8443)])
    host.model.sslcert["0.0.0.0:8443"] = SslCertEntry("0.0.0.0:8443", "ipport", thumbprint(leaf))
    p = _plan(host, now)
    assert not [a for a in p.actions if a.kind == "remove_expired_intermediate"]
    assert any(thumbprint(other_ca) in w and "'Other'" in w and "only trusted path" in w
               for w in p.warnings)  # fmt: skip
