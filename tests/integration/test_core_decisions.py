"""Issue 19: thirteen reproduced bugs in plan, apply, rollback and verify.

Each test is built the way the bugs were found: a scenario of the simulated host (the public
API only), a plan, an apply, a fault where the bug needs one, a rollback. Every one of them
failed before its fix.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from sectigo_chain.errors import ApplyError, InputError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.hosts.sim.model import HostModel, SimBinding, SimSite
from sectigo_chain.hosts.sim.scenarios import build_scenario, scenario_leaf
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import rollback
from sectigo_chain.run.verifier import verify
from sectigo_chain.state.models import DesiredState
from sectigo_chain.state.plan_models import Action, ApplyResult, Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.render import render
from sectigo_chain.testing.lab import LabHierarchy, default_lab, make_certificate, new_key
from sectigo_chain.x509.certs import thumbprint

NOW = dt.datetime.now(dt.timezone.utc)
FAST = RetryPolicy(attempts=2, wait_initial=0)
SITE = "Default Web Site"
PW = "core-decisions-pw"


def _model(name: str) -> HostModel:
    return build_scenario(name, default_lab())[1]


def _plan(host: SimulatedHost, desired: DesiredState) -> Plan:
    return plan(desired, observe(host), at=NOW, catalog=host.catalog, target=host.target)


def _apply(host: SimulatedHost, p: Plan, desired: DesiredState, tmp: Path) -> ApplyResult:
    return apply(
        p, host, desired=desired, catalog=host.catalog, journal_dir=tmp, retry=FAST, at=NOW
    )


def _fix(host: SimulatedHost, **kw: Any) -> DesiredState:
    return sectigo_fix(site=kw.pop("site", SITE), catalog=host.catalog, **kw)


def _kinds(p: Plan) -> list[str]:
    return [a.kind for a in p.actions]


def _lm_my(host: SimulatedHost, tp: str) -> list[dict[str, Any]]:
    return [
        c
        for c in host.snapshot()["certificates"]
        if c["thumbprint"] == tp and c["store_location"] == "LocalMachine"
        and c["store_name"] == "My"
    ]  # fmt: skip


def _every_fault_restores(model: HostModel, desired: DesiredState, tmp: Path) -> Plan:
    """Fail every action of the plan in turn: rollback must restore the host exactly."""
    probe = SimulatedHost(_copy(model))
    p = _plan(probe, desired)
    for index in range(len(p.actions)):
        host = SimulatedHost(_copy(model), faults=Faults(fail_action=index))
        host.tls_chains()  # serving: a warm HTTP.sys cache (rollback may restart IIS)
        before = host.snapshot()
        with pytest.raises(ApplyError) as info:
            _apply(host, p, desired, tmp)
        assert info.value.rollback_complete, str(info.value)
        assert host.snapshot() == before, f"not restored after a failure at action {index}"
    return p


def _copy(model: HostModel) -> HostModel:
    import copy

    return copy.deepcopy(model)


# ------------------------------------------------------------------ 1 + 13: move_leaf


def test_bug1_move_never_deletes_the_only_copy_with_the_key(tmp_path: Path) -> None:
    """user-key plus a keyless copy of the leaf in LocalMachine\\My (someone imported the
    .cer): the move would skip the copy and delete the CurrentUser copy that holds the key."""
    model = _model("user-key")
    leaf = scenario_leaf(default_lab(), "RSA")
    model.add("LocalMachine", "My", leaf.cert)
    host = SimulatedHost(model)
    tp = thumbprint(leaf.cert)
    desired = _fix(host)
    p = _plan(host, desired)
    assert "move_leaf" not in _kinds(p)
    assert any("only copy with the key" in w and "--pfx" in w for w in p.warnings), p.warnings
    _apply(host, p, desired, tmp_path)
    user = [
        c for c in host.snapshot()["certificates"]
        if c["thumbprint"] == tp and c["store_location"] == "CurrentUser"
    ]  # fmt: skip
    assert [c["has_private_key"] for c in user] == [True]


def test_bug13_a_plain_store_add_keeps_the_user_key_in_the_user_key_set() -> None:
    """X509Store.Add carries only the key link: the sim must not report a machine key."""
    host = SimulatedHost("user-key")
    tp = thumbprint(scenario_leaf(host.lab, "RSA").cert)
    params = {"thumbprint": tp, "from_location": "CurrentUser", "from_store": "My",
              "to_location": "LocalMachine", "to_store": "My", "remove_source": False}  # fmt: skip
    result = host.run(render("move_certificate", params))
    assert result.ok
    (copy,) = _lm_my(host, tp)
    assert copy["key_storage"] == "user"
    # ... so SChannel still cannot use it: binding fails as on Windows (0x80070520)
    bind = {"site": SITE, "ip": "*", "port": 443, "host": "", "thumbprint": tp,
            "store_name": "My", "ssl_flags_set": 0, "ssl_flags_clear": 0}  # fmt: skip
    assert not host.run(render("set_binding", bind)).ok


def test_bug13_the_planned_move_carries_the_key_into_the_machine_key_set(
    tmp_path: Path,
) -> None:
    host = SimulatedHost("user-key")
    tp = thumbprint(scenario_leaf(host.lab, "RSA").cert)
    before = observe(host)
    desired = _fix(host)
    p = _plan(host, desired)
    (move,) = [a for a in p.actions if a.kind == "move_leaf"]
    assert move.params["with_key"] is True
    result = _apply(host, p, desired, tmp_path)
    assert result.after_plan_empty
    (copy,) = _lm_my(host, tp)
    assert copy["key_storage"] == "machine"
    assert len(host.served_chain(SITE)) == 3
    assert result.journal is not None
    assert rollback(result.journal, host, retry=FAST).complete
    assert observe(host) == before


def test_bug13_a_key_that_cannot_be_exported_is_not_moved() -> None:
    model = _model("user-key")
    for sc in model.logical("CurrentUser", "My"):
        sc.key_exportable = False
    host = SimulatedHost(model)
    p = _plan(host, _fix(host))
    assert "move_leaf" not in _kinds(p)
    assert any("not marked exportable" in w for w in p.warnings), p.warnings


# ------------------------------------------------------------------ 2: shared HTTP.sys entry


def test_bug2_rollback_of_a_new_binding_on_a_shared_ip_port_restores_the_other_site(
    tmp_path: Path,
) -> None:
    model = _model("broken-r46")
    model.app_pools["ShopAppPool"] = "Started"
    model.sites["Shop"] = SimSite("Shop", 2, app_pool="ShopAppPool",
                                  bindings=[SimBinding("http", "*", 8080, "")])  # fmt: skip
    lab = default_lab()
    new = lab.issue_leaf(["shop.example.test"])
    host = SimulatedHost(_copy(model))
    desired = _fix(host, site="Shop", pfx=new.pfx(PW), pfx_password=PW)
    p = _plan(host, desired)
    assert _kinds(p)[-3:] == ["import_pfx", "set_binding", "restart"]
    (bind,) = [a for a in p.actions if a.kind == "set_binding"]
    assert bind.shared_binding is not None
    assert bind.shared_binding.site == SITE
    # the restart fails: rollback must give Default Web Site its certificate back
    host = SimulatedHost(_copy(model), faults=Faults(fail_action=len(p.actions) - 1))
    host.tls_chains()  # serving: a warm HTTP.sys cache (rollback may restart IIS)
    before = host.snapshot()
    with pytest.raises(ApplyError) as info:
        _apply(host, p, desired, tmp_path)
    assert info.value.rollback_complete
    assert host.snapshot() == before
    assert host.model.leaf_for("0.0.0.0:443") is not None
    assert len(host.served_chain(SITE)) == 2
    _every_fault_restores(model, desired, tmp_path)


# ------------------------------------------------------------------ 3: import_pfx undo


def test_bug3_rollback_of_import_pfx_puts_back_the_keyless_copy_it_replaced(
    tmp_path: Path,
) -> None:
    model = _model("broken-r46")
    new = default_lab().issue_leaf(["new.example.test"])
    model.add("LocalMachine", "My", new.cert, friendly_name="keyless copy")
    host = SimulatedHost(_copy(model))
    desired = _fix(host, pfx=new.pfx(PW), pfx_password=PW)
    p = _plan(host, desired)
    (imp,) = [a for a in p.actions if a.kind == "import_pfx"]
    assert imp.backup is not None
    assert not imp.backup.has_private_key
    index = p.actions.index(imp)
    host = SimulatedHost(_copy(model), faults=Faults(fail_action=index))
    host.tls_chains()  # serving: a warm HTTP.sys cache (rollback may restart IIS)
    before = host.snapshot()
    with pytest.raises(ApplyError) as info:
        _apply(host, p, desired, tmp_path)
    assert info.value.rollback_complete
    assert [c["friendly_name"] for c in _lm_my(host, thumbprint(new.cert))] == ["keyless copy"]
    assert host.snapshot() == before
    _every_fault_restores(model, desired, tmp_path)
    # and without a fault the import gives the copy its machine key, then converges
    host = SimulatedHost(_copy(model))
    result = _apply(host, p, desired, tmp_path)
    assert result.after_plan_empty
    assert [c["key_storage"] for c in _lm_my(host, thumbprint(new.cert))] == ["machine"]


# ------------------------------------------------------------------ 4: verify never climbs


def _cross_only_in_root() -> HostModel:
    model = _model("fixed")
    lab = default_lab()
    model.discard(("LocalMachine", "CA", ".Default"), thumbprint(lab.r46_cross))
    model.add("LocalMachine", "Root", lab.r46_cross)
    return model


def test_bug4_verify_does_not_restart_a_host_whose_plan_is_not_empty() -> None:
    """Self-signed R46 gone, cross-sign only in LocalMachine\\Root: Windows anchors at the
    cross-sign and does not send it; the re-plan is not empty, so nothing is restarted."""
    host = SimulatedHost(_cross_only_in_root())
    desired = _fix(host)
    with host.start_tls() as listener:
        host.calls.clear()
        report = verify(host, desired, endpoint=listener.address_for(SITE), settle=0.0, retry=FAST)
    assert report.verdict == "fail"
    assert not report.plan_empty
    assert report.rungs == ()
    assert not report.reboot_required
    assert host.model.iisreset_count == 0
    assert "restart" not in host.calls
    assert "set_binding" not in host.calls
    # the expected served chain follows the prediction: the anchor (the cross-sign) is not sent
    assert report.host_chain is not None
    assert thumbprint(host.lab.r46_cross) not in report.host_chain.expected_served
    assert report.served is not None
    assert list(report.host_chain.expected_served) == [
        c.thumbprint for c in report.served.served_chain
    ]


# ------------------------------------------------------------------ 5: a guessed root


def _old_hierarchy_leaf(lab: LabHierarchy) -> tuple[x509.Certificate, Any]:
    """A leaf of the old hierarchy: issued by 'Sectigo RSA Organization Validation Secure
    Server CA' (under USERTrust/AAA), whose certificate is not on the host."""
    ov_key = new_key("RSA")
    ov_name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sectigo Limited"),
        x509.NameAttribute(NameOID.COMMON_NAME,
                           "Sectigo RSA Organization Validation Secure Server CA"),
    ])  # fmt: skip
    key = new_key("RSA")
    leaf = make_certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old.example.test")]),
        public_key=key.public_key(),
        issuer=ov_name,
        issuer_key=ov_key,
        not_before=NOW - dt.timedelta(days=1),
        not_after=NOW + dt.timedelta(days=90),
        ca=False,
        dns_names=["old.example.test"],
    )
    return leaf, key


def test_bug5_a_guessed_root_never_drives_a_destructive_action() -> None:
    lab = default_lab()
    leaf, key = _old_hierarchy_leaf(lab)
    model = _model("broken-r46")
    for sc in list(model.logical("LocalMachine", "My")):
        model.discard(("LocalMachine", "My", ".Default"), sc.thumbprint)
    model.add("LocalMachine", "My", leaf, key=key, key_storage="machine", key_exportable=False)
    model.sslcert["0.0.0.0:443"].certificate_hash = thumbprint(leaf)
    host = SimulatedHost(model)
    p = _plan(host, _fix(host))
    assert p.empty, _kinds(p)
    assert any("only a guess" in w for w in p.warnings), p.warnings


def test_bug5_a_pfx_whose_root_is_only_guessed_is_refused() -> None:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    lab = default_lab()
    leaf, key = _old_hierarchy_leaf(lab)
    pfx = pkcs12.serialize_key_and_certificates(
        None, key, leaf, None, BestAvailableEncryption(PW.encode())
    )
    with pytest.raises(InputError, match="cannot tell which root"):
        sectigo_fix(site=SITE, pfx=pfx, pfx_password=PW, catalog=lab.catalog)


# ------------------------------------------------------------------ 6: inherited views


def test_bug6_current_user_views_of_machine_stores_are_not_copies(tmp_path: Path) -> None:
    host = SimulatedHost("fixed")
    cross = thumbprint(host.lab.r46_cross)
    views = [
        c for c in observe(host).find(cross)
        if c.store_location == "CurrentUser"
    ]  # fmt: skip
    assert [(c.store_name, c.physical_store) for c in views] == [("CA", None)]
    assert _plan(host, _fix(host)).empty
    # removing it through the user's store finds no user copy (the template removes only from
    # a user physical store, issue 11 defect 3): nothing is removed, the machine copy stays
    params = {"thumbprint": cross, "store_location": "CurrentUser", "store_name": "CA"}
    result = host.run(render("remove_certificate", params))
    assert result.ok
    assert result.data["removed"] is False
    assert observe(host).find(cross, "LocalMachine", "CA")
    # the misplaced scenario settles after one apply (the cross-sign shows in CurrentUser\CA
    # through LocalMachine\CA afterwards)
    host = SimulatedHost("misplaced")
    desired = _fix(host)
    assert _apply(host, _plan(host, desired), desired, tmp_path).after_plan_empty


# ------------------------------------------------------------------ 7: SYSTEM duplicate


def _expired_r46_duplicate(lab: LabHierarchy) -> x509.Certificate:
    ut = lab.usertrust_rsa
    return make_certificate(
        subject=lab.r46_cross.subject,
        public_key=lab.r46_root.key.public_key(),
        issuer=ut.cert.subject,
        issuer_key=ut.key,
        not_before=NOW - dt.timedelta(days=800),
        not_after=NOW - dt.timedelta(days=30),
        ca=True,
    )


def test_bug7_an_expired_duplicate_in_system_ca_does_not_block_the_fix(tmp_path: Path) -> None:
    model = _model("broken-r46")
    model.add("SYSTEM", "CA", _expired_r46_duplicate(default_lab()))
    host = SimulatedHost(model)
    desired = _fix(host)
    p = _plan(host, desired)
    assert not any(a.params.get("store_location") == "SYSTEM" for a in p.actions)
    assert any("SYSTEM's CA store" in w for w in p.warnings), p.warnings
    assert _apply(host, p, desired, tmp_path).after_plan_empty


def test_bug7_rollback_never_undoes_a_step_that_did_not_run(tmp_path: Path) -> None:
    """A step whose payload the template rejects never reaches the host: apply rolls back
    the rest completely, and a later rollback from the journal does not repeat the error."""
    lab = default_lab()
    dup = _expired_r46_duplicate(lab)
    host = SimulatedHost("broken-r46")
    good = _plan(host, _fix(host))
    bad = Action(
        kind="remove_duplicate",
        reason="remove an expired duplicate from SYSTEM\\CA",
        template="remove_certificate",
        params={"thumbprint": thumbprint(dup), "store_location": "SYSTEM", "store_name": "CA",
                "physical_store": ".Default"},
    )  # fmt: skip
    p = good.model_copy(update={"actions": (good.actions[0], bad, *good.actions[1:])})
    host.tls_chains()  # serving: a warm HTTP.sys cache (rollback may restart IIS)
    before = host.snapshot()
    with pytest.raises(ApplyError) as info:
        apply(p, host, journal_dir=tmp_path, retry=FAST)
    assert info.value.rollback_complete, str(info.value)
    assert host.snapshot() == before
    assert info.value.journal is not None
    again = rollback(info.value.journal, host, retry=FAST)
    assert again.complete, again.errors


# ------------------------------------------------------------------ 11: SYSTEM\CA cross-sign


def test_bug11_a_cross_sign_in_system_ca_is_not_flagged_for_removal() -> None:
    model = _model("fixed")
    model.add("SYSTEM", "CA", default_lab().r46_cross)
    host = SimulatedHost(model)
    p = _plan(host, _fix(host))
    assert p.empty
    assert not any("remove it by hand" in w for w in p.warnings), p.warnings


def test_bug11_no_could_not_tell_after_a_definite_answer() -> None:
    """A leaf that chains to USERTrust directly is a definite answer, not an unknown root."""
    lab = default_lab()
    key = new_key("RSA")
    ut = lab.usertrust_rsa
    leaf = make_certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ut.example.test")]),
        public_key=key.public_key(), issuer=ut.cert.subject, issuer_key=ut.key,
        not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=90),
        ca=False, dns_names=["ut.example.test"],
    )  # fmt: skip
    model = _model("fixed")
    model.add("LocalMachine", "My", leaf, key=key, key_storage="machine", key_exportable=False)
    model.sslcert["0.0.0.0:443"].certificate_hash = thumbprint(leaf)
    host = SimulatedHost(model)
    p = _plan(host, _fix(host))
    assert any("chains to USERTrust RSA" in w for w in p.warnings), p.warnings
    assert not any("could not tell" in w for w in p.warnings), p.warnings


def _der(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


# ------------------------------------------------------------------ 8: user key set in LM\My


def test_bug8_a_user_key_in_localmachine_my_is_not_reimported_every_run(tmp_path: Path) -> None:
    """import_pfx keeps a copy that has a key, whatever key set it is in: planning it is a
    no-op (and an iisreset) on every run. The plan says what to do instead."""
    model = _model("broken-r46")
    leaf = scenario_leaf(default_lab(), "RSA")
    (sc,) = [
        c for c in model.logical("LocalMachine", "My") if c.thumbprint == thumbprint(leaf.cert)
    ]
    sc.key_storage = "user"
    host = SimulatedHost(model)
    desired = _fix(host, pfx=leaf.pfx(PW), pfx_password=PW)
    p = _plan(host, desired)
    assert "import_pfx" not in _kinds(p)
    assert any("user key set" in w and "certutil -delstore" in w for w in p.warnings)
    result = _apply(host, p, desired, tmp_path)
    assert result.after_plan_empty


# ------------------------------------------------------------------ 9: the CCS bit


def _ccs_model() -> HostModel:
    model = _model("fixed")
    (b,) = [b for b in model.sites[SITE].bindings if b.protocol == "https"]
    del model.sslcert[b.endpoint]
    b.host, b.ssl_flags = "www.example.test", 3
    from sectigo_chain.hosts.sim.model import SslCertEntry

    model.sslcert[b.endpoint] = SslCertEntry(b.endpoint, "ccs", "")
    return model


def test_bug9_binding_a_store_certificate_clears_the_ccs_bit(tmp_path: Path) -> None:
    model = _ccs_model()
    new = default_lab().issue_leaf(["www.example.test"])
    host = SimulatedHost(_copy(model))
    assert host.served_chain(SITE) == []  # CCS: the bound hash is not what is served
    desired = _fix(host, hostname="www.example.test", pfx=new.pfx(PW), pfx_password=PW)
    p = _plan(host, desired)
    (bind,) = [a for a in p.actions if a.kind == "set_binding"]
    assert bind.params["ssl_flags_clear"] & 2
    result = _apply(host, p, desired, tmp_path)
    assert result.after_plan_empty
    (b,) = [b for b in observe(host).site(SITE).bindings if b.protocol == "https"]  # type: ignore[union-attr]
    assert b.ssl_flags == 1
    assert host.served_chain(SITE)[0] == new.cert
    _every_fault_restores(model, desired, tmp_path)


def test_bug9_without_a_pfx_a_ccs_binding_is_an_input_error() -> None:
    host = SimulatedHost(_ccs_model())
    with pytest.raises(InputError, match="Central Certificate Store"):
        _plan(host, _fix(host, hostname="www.example.test"))


# ------------------------------------------------------------------ 10: host header case


def _sni_model() -> HostModel:
    model = _model("broken-r46")
    (b,) = [b for b in model.sites[SITE].bindings if b.protocol == "https"]
    entry = model.sslcert.pop(b.endpoint)
    b.host, b.ssl_flags = "www.example.test", 1
    from sectigo_chain.hosts.sim.model import SslCertEntry

    model.sslcert[b.endpoint] = SslCertEntry(b.endpoint, "hostnameport", entry.certificate_hash)
    return model


def test_bug10_a_host_header_that_differs_only_in_case_is_the_same_binding(
    tmp_path: Path,
) -> None:
    model = _sni_model()
    new = default_lab().issue_leaf(["www.example.test"])
    host = SimulatedHost(_copy(model))
    desired = _fix(host, hostname="WWW.example.test", pfx=new.pfx(PW), pfx_password=PW)
    p = _plan(host, desired)
    (bind,) = [a for a in p.actions if a.kind == "set_binding"]
    assert bind.previous_binding is not None
    assert "replacing" in bind.reason
    result = _apply(host, p, desired, tmp_path)
    assert result.after_plan_empty
    https = [b for b in observe(host).site(SITE).bindings if b.protocol == "https"]  # type: ignore[union-attr]
    assert len(https) == 1
    assert https[0].certificate_hash == thumbprint(new.cert)
    # rollback restores the existing binding instead of deleting it
    _every_fault_restores(model, desired, tmp_path)
    assert result.journal is not None
    assert rollback(result.journal, host, retry=FAST).complete
    https = [b for b in observe(host).site(SITE).bindings if b.protocol == "https"]  # type: ignore[union-attr]
    assert [b.host for b in https] == ["www.example.test"]


# ------------------------------------------------------------------ 11: WebHosting


def test_bug11_a_leaf_bound_from_webhosting_gets_no_spurious_key_warning(tmp_path: Path) -> None:
    model = _model("broken-r46")
    leaf = scenario_leaf(default_lab(), "RSA")
    sc = model.discard(("LocalMachine", "My", ".Default"), thumbprint(leaf.cert))
    assert sc is not None
    model.add("LocalMachine", "WebHosting", sc)
    model.sslcert["0.0.0.0:443"].store_name = "WebHosting"
    host = SimulatedHost(model)
    desired = _fix(host)
    p = _plan(host, desired)
    assert not any("no private key" in w for w in p.warnings), p.warnings
    assert any("already in LocalMachine\\WebHosting" in n for n in p.noop_reasons)
    assert _apply(host, p, desired, tmp_path).after_plan_empty


# ------------------------------------------------------------------ 12: a second valid cross-sign


def test_bug12_an_older_valid_duplicate_cross_sign_is_warned_about_and_removed(
    tmp_path: Path,
) -> None:
    lab = default_lab()
    ut = lab.usertrust_rsa
    older = make_certificate(
        subject=lab.r46_cross.subject,
        public_key=lab.r46_root.key.public_key(),
        issuer=ut.cert.subject,
        issuer_key=ut.key,
        not_before=lab.r46_cross.not_valid_before_utc - dt.timedelta(days=365),
        not_after=NOW + dt.timedelta(days=400),
        ca=True,
    )
    model = _model("fixed")
    model.add("LocalMachine", "CA", older)
    host = SimulatedHost(_copy(model))
    # Windows prefers the newer NotBefore (reported): the current cross-sign is served
    assert host.model.build_chain(scenario_leaf(lab, "RSA").cert, NOW).served[2] == lab.r46_cross
    desired = _fix(host)
    p = _plan(host, desired)
    assert any("second valid" in w for w in p.warnings), p.warnings
    (dup,) = [a for a in p.actions if a.kind == "remove_duplicate"]
    assert dup.params["thumbprint"] == thumbprint(older)
    assert _apply(host, p, desired, tmp_path).after_plan_empty
    _every_fault_restores(model, desired, tmp_path)


# ------------------------------------------------------------------ also looked into


def test_recycle_without_an_app_pool_is_refused_at_plan_time_not_at_the_last_step() -> None:
    model = _model("broken-r46")
    model.sites[SITE].app_pool = ""
    host = SimulatedHost(model)
    host.tls_chains()  # serving: a warm HTTP.sys cache (rollback may restart IIS)
    before = host.snapshot()
    with pytest.raises(InputError, match="needs an app pool"):
        _plan(host, _fix(host, restart="recycle"))
    assert host.snapshot() == before
