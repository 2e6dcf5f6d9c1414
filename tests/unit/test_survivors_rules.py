"""Tests that kill mutants of state/rules.py that the rest of the suite let live (issue 20): a
stray cross-sign in a policy store, copies in SYSTEM's stores, why a copy is misplaced, the
Disallowed and Automatic Root Update policy actions."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.errors import PlanRefused
from sectigo_chain.state.models import DesiredState, ObservedState
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.x509.catalog import default_catalog
from sectigo_chain.x509.certs import thumbprint

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "plans"
CROSS = default_catalog().certificate("r46-cross-usertrust-rsa")
ROOT = default_catalog().certificate("r46-root-selfsigned")


def _cert(loc: str, store: str, cert: Any, phys: str | None = ".Default") -> dict[str, Any]:
    return {
        "store_location": loc, "store_name": store, "physical_store": phys,
        "thumbprint": thumbprint(cert),
        "der_b64": base64.b64encode(cert.public_bytes(Encoding.DER)).decode(),
        "friendly_name": "", "has_private_key": False, "key_storage": None,
        "key_exportable": None,
    }  # fmt: skip


def _plan(name: str, extra: list[dict[str, Any]] = (), **kw: Any) -> Plan:  # type: ignore[assignment]
    case = json.loads((GOLDEN / f"{name}.json").read_text())
    case["observed"]["certificates"] = [*extra, *case["observed"]["certificates"]]
    desired = DesiredState.model_validate(case["desired"])
    if "strategy" in kw:
        desired = desired.model_copy(update={"root_strategy": kw.pop("strategy")})
    if "policy" in kw:
        case["observed"]["disable_root_auto_update"] = kw.pop("policy")
    observed = ObservedState.model_validate(case["observed"])
    return plan(desired, observed, at=dt.datetime.fromisoformat(case["at"]), **kw)


def test_a_stray_cross_sign_in_a_group_policy_store_is_refused_or_warned() -> None:
    stray = [_cert("LocalMachine", "Root", CROSS, ".GroupPolicy")]
    with pytest.raises(PlanRefused) as info:
        _plan("fixed", stray)
    text = " ".join(info.value.guidance)
    assert f"({thumbprint(CROSS)}) is in LocalMachine\\Root's .GroupPolicy physical store" in text
    assert "comes from Group Policy and cannot be deleted locally" in text
    result = _plan("fixed", stray, allow_group_policy_override=True)
    assert [a.kind for a in result.actions] == []
    assert any(
        thumbprint(CROSS) in w and "left in place (override given)" in w for w in result.warnings
    )


def test_a_copy_in_systems_store_is_warned_and_the_next_copy_still_removed() -> None:
    copies = [_cert("SYSTEM", "Root", CROSS), _cert("LocalMachine", "Root", CROSS)]
    result = _plan("fixed", copies)
    assert any("is in SYSTEM's Root store (HKU\\S-1-5-18)" in w for w in result.warnings)
    removals = [a for a in result.actions if a.kind == "remove_misplaced"]
    assert len(removals) == 1
    assert removals[0].params["store_location"] == "LocalMachine"
    assert removals[0].params["store_name"] == "Root"
    assert (
        "(in Root it becomes a trust anchor and Windows serves the short chain again)"
        in removals[0].reason
    )


def test_each_misplaced_store_gets_its_own_reason() -> None:
    reasons = {
        ("LocalMachine", "Disallowed"): "in Disallowed it distrusts the cross-sign itself",
        ("CurrentUser", "CA"): "SChannel runs as SYSTEM and never reads Current User stores",
        ("LocalMachine", "My"): "the Intermediate store is the only place it belongs",
    }
    for (loc, store), why in reasons.items():
        result = _plan("fixed", [_cert(loc, store, CROSS)])
        (removal,) = [a for a in result.actions if a.kind == "remove_misplaced"]
        assert (removal.params["store_location"], removal.params["store_name"]) == (loc, store)
        assert f"({why})" in removal.reason, (loc, store, removal.reason)


def test_remove_and_disallow_puts_the_root_into_disallowed_once() -> None:
    result = _plan("broken-r46", strategy="remove_and_disallow")
    (disallow,) = [a for a in result.actions if a.kind == "disallow_root"]
    assert disallow.reason.endswith(
        "into LocalMachine\\Disallowed so Windows never trusts the self-signed copy again (the "
        "cross-sign has another thumbprint and stays valid)"
    )
    assert disallow.params["thumbprint"] == thumbprint(ROOT)
    already = _plan(
        "broken-r46", [_cert("LocalMachine", "Disallowed", ROOT)], strategy="remove_and_disallow"
    )
    assert "disallow_root" not in [a.kind for a in already.actions]
    assert any(n.endswith("already in LocalMachine\\Disallowed") for n in already.noop_reasons)


def test_disable_auto_update_names_the_policy_value() -> None:
    result = _plan("broken-r46", strategy="disable_auto_update", policy=None)
    (policy,) = [a for a in result.actions if a.kind == "disable_root_auto_update"]
    assert policy.reason == (
        "set HKLM\\Software\\Policies\\Microsoft\\SystemCertificates\\AuthRoot"
        "\\DisableRootAutoUpdate=1 so Windows Update cannot re-add the removed root (this also "
        "stops new roots arriving automatically)"
    )
    assert policy.params == {"disabled": True}
    assert policy.previous_value is None
    done = _plan("broken-r46", strategy="disable_auto_update", policy=True)
    assert "disable_root_auto_update" not in [a.kind for a in done.actions]
    assert "Automatic Root Update already disabled by policy" in done.noop_reasons


def test_disable_auto_update_records_the_value_it_replaces() -> None:
    # previous_value is what rollback puts back: an explicit False (policy set to 0) is not
    # "no policy" (None).
    result = _plan("broken-r46", strategy="disable_auto_update", policy=False)
    (policy,) = [a for a in result.actions if a.kind == "disable_root_auto_update"]
    assert policy.previous_value is False
    assert policy.rollback == "restore DisableRootAutoUpdate to False"


def test_disable_auto_update_is_planned_once_for_two_roots() -> None:
    # Both roots' self-signed copies are to go (no when_root): one policy action, not two.
    case = json.loads((GOLDEN / "broken-r46.json").read_text())
    for spec in case["desired"]["certificates"]:
        spec["when_root"] = None
    desired = DesiredState.model_validate(case["desired"])
    desired = desired.model_copy(update={"root_strategy": "disable_auto_update"})
    observed = ObservedState.model_validate(case["observed"])
    roots = [s for s in desired.certificates if s.role == "self_signed_root"]
    assert len(roots) == 2
    result = plan(desired, observed, at=dt.datetime.fromisoformat(case["at"]))
    kinds = [a.kind for a in result.actions]
    assert kinds.count("disable_root_auto_update") == 1, kinds


def _duplicates(at_offset: dt.timedelta, move_to_system: bool = False) -> tuple[Plan, str]:
    case = json.loads((GOLDEN / "duplicates.json").read_text())
    observed = ObservedState.model_validate(case["observed"])
    cross = next(s for s in DesiredState.model_validate(case["desired"]).certificates
                 if s.role == "cross_sign" and s.when_root == "R46")  # fmt: skip
    cross_cert = next(c for c in observed.certificates if c.thumbprint == cross.thumbprint)
    (dup,) = [
        c
        for c in observed.certificates
        if c.store_name == "CA"
        and c.thumbprint != cross.thumbprint
        and c.certificate.subject == cross_cert.certificate.subject
        and c.certificate.issuer != c.certificate.subject
    ]
    if move_to_system:
        for entry in case["observed"]["certificates"]:
            if entry["thumbprint"] == dup.thumbprint:
                entry["store_location"] = "SYSTEM"
        observed = ObservedState.model_validate(case["observed"])
    desired = DesiredState.model_validate(case["desired"])
    at = dup.certificate.not_valid_after_utc + at_offset
    return plan(desired, observed, at=at, expiring_within_days=0), dup.thumbprint


def test_a_duplicate_is_still_valid_at_its_not_after_instant() -> None:
    # X.509 validity includes notAfter itself: at that instant the copy is a second valid
    # certificate (a warning), one second later it is expired.
    on_time, dup = _duplicates(dt.timedelta(0))
    (removal,) = [a for a in on_time.actions if a.params.get("thumbprint") == dup]
    assert "another valid" in removal.reason
    assert "expired" not in removal.reason
    assert any(dup in w and "second valid" in w for w in on_time.warnings)
    late, _ = _duplicates(dt.timedelta(seconds=1))
    (removal,) = [a for a in late.actions if a.params.get("thumbprint") == dup]
    assert f"({dup}, expired)" in removal.reason
    assert not any("second valid" in w for w in late.warnings)


def test_a_duplicate_in_systems_ca_store_is_left_with_a_warning_that_says_why() -> None:
    result, dup = _duplicates(dt.timedelta(days=1), move_to_system=True)
    assert dup not in [a.params.get("thumbprint") for a in result.actions]
    # The next duplicate (the self-signed R46 copy in LocalMachine\CA) is still removed.
    removed = [a.params["thumbprint"] for a in result.actions if a.kind == "remove_duplicate"]
    assert removed == [thumbprint(ROOT)]
    (warning,) = [w for w in result.warnings if w.startswith("a duplicate ") and dup in w]
    assert warning.endswith(
        f"({dup}, expired) is in SYSTEM's CA store (HKU\\S-1-5-18): the templates cannot "
        "change SYSTEM's stores; remove it by hand (PsExec -s certmgr, or at its source)"
    )


def test_a_cross_sign_copy_in_systems_root_store_says_how_to_remove_it() -> None:
    result = _plan("fixed", [_cert("SYSTEM", "Root", CROSS)])
    (warning,) = [w for w in result.warnings if "SYSTEM's Root store" in w]
    assert warning.endswith(
        "is in SYSTEM's Root store (HKU\\S-1-5-18): the templates cannot change SYSTEM's "
        "stores; remove it by hand (PsExec -s certmgr)"
    )


# --- round 2 (seed-7 sample) ------------------------------------------------------------------


def test_disallow_root_says_how_it_is_undone() -> None:
    result = _plan("broken-r46", strategy="remove_and_disallow")
    (disallow,) = [a for a in result.actions if a.kind == "disallow_root"]
    assert disallow.rollback == f"remove {thumbprint(ROOT)} from LocalMachine\\Disallowed"


def test_a_cross_sign_in_the_authroot_store_is_misplaced_as_a_root() -> None:
    result = _plan("fixed", [_cert("LocalMachine", "AuthRoot", CROSS)])
    (removal,) = [a for a in result.actions if a.kind == "remove_misplaced"]
    assert removal.params["store_name"] == "AuthRoot"
    assert removal.reason.endswith(
        "(in Root it becomes a trust anchor and Windows serves the short chain again)"
    )


def test_a_cross_sign_copy_in_systems_ca_store_is_left_as_a_no_op() -> None:
    result = _plan("fixed", [_cert("SYSTEM", "CA", CROSS)])
    assert "remove_misplaced" not in [a.kind for a in result.actions]
    assert not any("SYSTEM" in w for w in result.warnings)
    assert any(
        n.endswith("is also in SYSTEM's CA store, which SChannel reads: left")
        for n in result.noop_reasons
    )


def test_specs_without_der_are_named_by_friendly_name_or_thumbprint() -> None:
    from sectigo_chain.state.models import CertificateSpec

    case = json.loads((GOLDEN / "fixed.json").read_text())
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    at = dt.datetime.fromisoformat(case["at"])
    tp = thumbprint(CROSS)
    present = CertificateSpec(role="other", thumbprint=tp, ensure="present",
                              store_name="CA")  # fmt: skip
    absent = CertificateSpec(role="other", thumbprint="AB" * 20, ensure="absent",
                             store_name="Root", friendly_name="Old Root")  # fmt: skip
    result = plan(desired.model_copy(update={"certificates": (present, absent)}), observed, at=at)
    assert f"{tp} already in LocalMachine\\CA" in result.noop_reasons
    assert any(n.startswith("Old Root ") for n in result.noop_reasons), result.noop_reasons


def test_a_backup_records_whether_the_copy_had_a_private_key() -> None:
    from sectigo_chain.state.models import ObservedCertificate
    from sectigo_chain.state.rules import backup_of

    entry = _cert("LocalMachine", "My", CROSS)
    with_key = ObservedCertificate.model_validate({**entry, "has_private_key": True})
    assert backup_of(with_key).has_private_key is True
    assert backup_of(ObservedCertificate.model_validate(entry)).has_private_key is False


def test_duplicate_reasons_name_a_self_signed_copy_and_the_tie_windows_breaks() -> None:
    on_time, dup = _duplicates(dt.timedelta(0))
    (warning,) = [w for w in on_time.warnings if dup in w and "second valid" in w]
    assert warning.endswith(
        "Windows chooses between them by its own rule (reported: the newer NotBefore), so the "
        "served chain may use either"
    )
    root_copy = [a for a in on_time.actions if a.params.get("thumbprint") == thumbprint(ROOT)]
    (removal,) = root_copy
    assert f"({thumbprint(ROOT)}, a self-signed root copy in an intermediate store)" in (
        removal.reason
    )


# --- round 3 (seed-11 sample) -----------------------------------------------------------------


def test_an_override_says_the_short_chain_stays() -> None:
    stray = [_cert("LocalMachine", "Root", CROSS, ".GroupPolicy")]
    result = _plan("fixed", stray, allow_group_policy_override=True)
    (warning,) = [w for w in result.warnings if thumbprint(CROSS) in w]
    assert warning.endswith("; left in place (override given): the short chain stays")


def test_keep_says_the_short_chain_stays_for_every_site() -> None:
    result = _plan("broken-r46", strategy="keep")
    (warning,) = [w for w in result.warnings if w.startswith("root strategy 'keep'")]
    assert warning == (
        "root strategy 'keep': Sectigo R46 (self-signed root) stays in LocalMachine\\Root, so "
        "Windows keeps serving the short chain (leaf, issuing CA) for every site under it"
    )


def test_a_root_spec_without_a_friendly_name_is_named_from_the_catalog() -> None:
    case = json.loads((GOLDEN / "broken-r46.json").read_text())
    for spec in case["desired"]["certificates"]:
        spec["friendly_name"] = None
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    result = plan(desired, observed, at=dt.datetime.fromisoformat(case["at"]))
    (removal,) = [a for a in result.actions if a.kind == "remove_self_signed_root"]
    name = default_catalog().identify(ROOT).name  # type: ignore[union-attr]
    assert removal.reason.startswith(f"remove {name} ({thumbprint(ROOT)}, ")


def _foreign_spec(friendly: str | None) -> tuple[Plan, str]:
    from sectigo_chain.state.models import CertificateSpec
    from sectigo_chain.testing.lab import make_certificate, new_key

    key = new_key("ECC")
    name = x509_name("Foreign Intermediate")
    utc = dt.timezone.utc
    cert = make_certificate(
        subject=name,
        public_key=key.public_key(),
        issuer=name,
        issuer_key=key,
        not_before=dt.datetime(2025, 1, 1, tzinfo=utc),
        not_after=dt.datetime(2035, 1, 1, tzinfo=utc),
        ca=True,
    )
    der = base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
    spec = CertificateSpec(role="other", thumbprint=thumbprint(cert), ensure="present",
                           store_name="CA", friendly_name=friendly, der_b64=der)  # fmt: skip
    case = json.loads((GOLDEN / "fixed.json").read_text())
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    result = plan(desired.model_copy(update={"certificates": (spec,)}), observed,
                  at=dt.datetime.fromisoformat(case["at"]))  # fmt: skip
    return result, thumbprint(cert)


def x509_name(cn: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def test_a_certificate_the_catalog_does_not_know_is_named_by_its_friendly_name_or_cn() -> None:
    named, tp = _foreign_spec("Partner Cross")
    (imp,) = [a for a in named.actions if a.kind == "import_cross_sign"]
    assert imp.reason.startswith(f"import Partner Cross ({tp}) into LocalMachine\\CA")
    unnamed, tp = _foreign_spec(None)
    (imp,) = [a for a in unnamed.actions if a.kind == "import_cross_sign"]
    assert imp.reason.startswith(f"import Foreign Intermediate ({tp}) into LocalMachine\\CA")


def test_the_machine_copy_seen_through_a_user_store_does_not_stop_the_duplicate_search() -> None:
    case = json.loads((GOLDEN / "duplicates.json").read_text())
    (dup,) = [c for c in case["observed"]["certificates"]
              if c["thumbprint"] == "B615B29D3C12155DFC5A418632444FF9B895B53E"]  # fmt: skip
    # What observe reports for CurrentUser\CA: the machine's copy, no physical store. Listed
    # first, it is skipped (not a copy of its own), and the real duplicates are still found.
    seen = {**dup, "store_location": "CurrentUser", "physical_store": None}
    case["observed"]["certificates"] = [seen, *case["observed"]["certificates"]]
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    result = plan(desired, observed, at=dt.datetime.fromisoformat(case["at"]))
    removed = [(a.params["store_location"], a.params["thumbprint"])
               for a in result.actions if a.kind == "remove_duplicate"]  # fmt: skip
    assert removed == [("LocalMachine", dup["thumbprint"]), ("LocalMachine", thumbprint(ROOT))]


def test_a_foreign_certificate_to_remove_is_named_by_its_friendly_name() -> None:
    from sectigo_chain.state.models import CertificateSpec
    from sectigo_chain.testing.lab import make_certificate, new_key

    key = new_key("ECC")
    name = x509_name("Foreign Root")
    utc = dt.timezone.utc
    cert = make_certificate(subject=name, public_key=key.public_key(), issuer=name,
                            issuer_key=key, not_before=dt.datetime(2025, 1, 1, tzinfo=utc),
                            not_after=dt.datetime(2035, 1, 1, tzinfo=utc), ca=True)  # fmt: skip
    der = base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
    spec = CertificateSpec(role="other", thumbprint=thumbprint(cert), ensure="absent",
                           store_name="Root", friendly_name="Old Partner Root",
                           der_b64=der)  # fmt: skip
    case = json.loads((GOLDEN / "fixed.json").read_text())
    case["observed"]["certificates"].append(_cert("LocalMachine", "Root", cert))
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    result = plan(desired.model_copy(update={"certificates": (spec,)}), observed,
                  at=dt.datetime.fromisoformat(case["at"]))  # fmt: skip
    (removal,) = [a for a in result.actions if a.params.get("thumbprint") == thumbprint(cert)]
    assert removal.reason.startswith(f"remove Old Partner Root ({thumbprint(cert)}, ")


def test_a_same_name_copy_with_another_key_is_passed_over_not_a_stop() -> None:
    from sectigo_chain.testing.lab import make_certificate, new_key

    key = new_key("ECC")
    other = make_certificate(subject=CROSS.subject, public_key=key.public_key(),
                             issuer=CROSS.issuer, issuer_key=key,
                             not_before=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
                             not_after=dt.datetime(2035, 1, 1, tzinfo=dt.timezone.utc),
                             ca=True)  # fmt: skip
    case = json.loads((GOLDEN / "duplicates.json").read_text())
    case["observed"]["certificates"].insert(0, _cert("LocalMachine", "CA", other))
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    result = plan(desired, observed, at=dt.datetime.fromisoformat(case["at"]))
    removed = [a.params["thumbprint"] for a in result.actions if a.kind == "remove_duplicate"]
    assert thumbprint(other) not in removed  # another key: not a duplicate
    assert len(removed) == 2


def test_no_misplaced_copy_is_a_no_op_only_when_there_is_none() -> None:
    clean = _plan("fixed")
    assert any(n.startswith("no misplaced copy of ") for n in clean.noop_reasons)
    moved = _plan("fixed", [_cert("LocalMachine", "Root", CROSS)])
    assert not any(n.startswith("no misplaced copy of ") for n in moved.noop_reasons)


def test_only_a_self_signed_root_spec_brings_the_root_policy() -> None:
    from sectigo_chain.state.models import CertificateSpec

    case = json.loads((GOLDEN / "fixed.json").read_text())
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    der = base64.b64encode(CROSS.public_bytes(Encoding.DER)).decode()
    other = CertificateSpec(role="other", thumbprint=thumbprint(CROSS), ensure="absent",
                            store_name="Root", der_b64=der)  # fmt: skip
    for strategy in ("remove_and_disallow", "disable_auto_update"):
        d = desired.model_copy(update={"certificates": (other,), "root_strategy": strategy})
        result = plan(d, observed, at=dt.datetime.fromisoformat(case["at"]))
        kinds = [a.kind for a in result.actions]
        assert "disallow_root" not in kinds
        assert "disable_root_auto_update" not in kinds


# --- round 4 (the full run of rules.py, 439 mutants) ------------------------------------------

R46_NAME = "Sectigo R46 (self-signed root)"
CROSS_NAME = "Sectigo R46 cross-signed by USERTrust RSA"


def test_removals_and_imports_say_how_rollback_undoes_them() -> None:
    moved = _plan("fixed", [_cert("LocalMachine", "Root", CROSS)])
    (removal,) = [a for a in moved.actions if a.kind == "remove_misplaced"]
    assert removal.rollback == "re-import the backed-up certificate into LocalMachine\\Root"
    case = json.loads((GOLDEN / "broken-r46.json").read_text())
    case["observed"]["certificates"] = [
        c for c in case["observed"]["certificates"] if c["thumbprint"] != thumbprint(CROSS)
    ]
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    result = plan(desired, observed, at=dt.datetime.fromisoformat(case["at"]))
    (imp,) = [a for a in result.actions if a.kind == "import_cross_sign"]
    assert imp.rollback == f"remove {thumbprint(CROSS)} from LocalMachine\\CA"


def test_a_root_in_a_user_disallowed_store_does_not_count_as_distrusted() -> None:
    # Only LocalMachine\Disallowed distrusts a root for SChannel (which runs as SYSTEM): a copy
    # in CurrentUser\Disallowed leaves the machine-wide step to do.
    user_copy = [_cert("CurrentUser", "Disallowed", ROOT)]
    result = _plan("broken-r46", user_copy, strategy="remove_and_disallow")
    (disallow,) = [a for a in result.actions if a.kind == "disallow_root"]
    assert disallow.reason.startswith(f"put {R46_NAME} ({thumbprint(ROOT)}) into ")
    assert not any("already in LocalMachine\\Disallowed" in n for n in result.noop_reasons)
    done = _plan(
        "broken-r46", [_cert("LocalMachine", "Disallowed", ROOT)], strategy="remove_and_disallow"
    )
    assert f"{R46_NAME} already in LocalMachine\\Disallowed" in done.noop_reasons


def test_a_group_policy_root_refusal_names_the_root() -> None:
    gpo = [_cert("LocalMachine", "Root", ROOT, ".GroupPolicy")]
    with pytest.raises(PlanRefused) as info:
        _plan("broken-r46", gpo)
    assert info.value.guidance[0].startswith(
        f"{R46_NAME} ({thumbprint(ROOT)}) is in LocalMachine\\Root's .GroupPolicy physical "
        "store: it comes from Group Policy"
    )


def test_a_root_copy_policy_keeps_does_not_stop_the_removal_of_the_next_copy() -> None:
    # The root is in Root twice: pushed by Group Policy (left, with the override) and in the
    # default physical store, which is still removed.
    gpo = [_cert("LocalMachine", "Root", ROOT, ".GroupPolicy")]
    result = _plan("broken-r46", gpo, allow_group_policy_override=True)
    removals = [a for a in result.actions if a.kind == "remove_self_signed_root"]
    assert [(a.params["thumbprint"], a.params["physical_store"]) for a in removals] == [
        (thumbprint(ROOT), ".AuthRoot")
    ]
    assert any(w.startswith(f"{R46_NAME} ({thumbprint(ROOT)}) is in ") for w in result.warnings)


def test_remove_with_auto_root_update_on_names_the_strategies_that_prevent_drift() -> None:
    result = _plan("broken-r46", strategy="remove", policy=None)
    (warning,) = [w for w in result.warnings if w.startswith("Automatic Root Update is on")]
    assert warning == (
        "Automatic Root Update is on (no DisableRootAutoUpdate policy) and the strategy is "
        f"'remove': Windows can re-add {R46_NAME} the next time it builds a chain (drift); "
        "consider --strategy disable_auto_update or remove_and_disallow"
    )


def test_a_cross_sign_in_the_users_personal_store_is_a_copy_even_without_a_physical_store() -> None:
    # CurrentUser\My does not show the machine's certificates: an entry there is the user's
    # own copy (misplaced), whatever observe reports as its physical store.
    result = _plan("fixed", [_cert("CurrentUser", "My", CROSS, None)])
    (removal,) = [a for a in result.actions if a.kind == "remove_misplaced"]
    assert (removal.params["store_location"], removal.params["store_name"]) == (
        "CurrentUser",
        "My",
    )
    seen = _plan("fixed", [_cert("CurrentUser", "CA", CROSS, None)])
    assert "remove_misplaced" not in [a.kind for a in seen.actions]


def _duplicates_case(physical: str = ".Default") -> tuple[Plan, str]:
    case = json.loads((GOLDEN / "duplicates.json").read_text())
    dup = "B615B29D3C12155DFC5A418632444FF9B895B53E"
    for entry in case["observed"]["certificates"]:
        if entry["thumbprint"] == dup:
            entry["physical_store"] = physical
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    return plan(desired, observed, at=dt.datetime.fromisoformat(case["at"])), dup


def test_a_duplicate_is_named_by_its_common_name() -> None:
    result, dup = _duplicates_case()
    (removal,) = [a for a in result.actions if a.params.get("thumbprint") == dup]
    cn = "Sectigo Public Server Authentication Root R46"
    assert removal.reason == (
        f"remove duplicate {cn} ({dup}, expired) from LocalMachine\\CA: only "
        f"{thumbprint(CROSS)} should be there"
    )
    assert not any(n.startswith("no duplicate of ") for n in result.noop_reasons)
    clean = _plan("fixed")
    assert f"no duplicate of {CROSS_NAME} in an intermediate store" in clean.noop_reasons


def test_a_duplicate_pushed_by_policy_is_left_with_a_warning_naming_its_store() -> None:
    result, dup = _duplicates_case(".GroupPolicy")
    assert dup not in [a.params.get("thumbprint") for a in result.actions]
    (warning,) = [w for w in result.warnings if w.startswith("a duplicate ") and dup in w]
    assert warning == (
        f"a duplicate Sectigo Public Server Authentication Root R46 ({dup}, expired) is in "
        "LocalMachine\\CA (.GroupPolicy), which policy manages; remove it by hand (PsExec -s "
        "certmgr, or at its source)"
    )


def test_a_cross_sign_to_import_without_der_is_an_input_error_naming_it() -> None:
    from sectigo_chain.errors import InputError
    from sectigo_chain.state.models import CertificateSpec

    case = json.loads((GOLDEN / "fixed.json").read_text())
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    spec = CertificateSpec(role="other", thumbprint="AB" * 20, ensure="present",
                           store_name="CA", friendly_name="Partner Cross")  # fmt: skip
    with pytest.raises(InputError) as info:
        plan(desired.model_copy(update={"certificates": (spec,)}), observed,
             at=dt.datetime.fromisoformat(case["at"]))  # fmt: skip
    assert str(info.value) == (
        "Partner Cross must be imported but the desired state has no DER for it"
    )


def test_a_copy_in_systems_ca_store_does_not_stop_the_removal_of_the_next_copy() -> None:
    copies = [_cert("SYSTEM", "CA", CROSS), _cert("LocalMachine", "Root", CROSS)]
    result = _plan("fixed", copies)
    (removal,) = [a for a in result.actions if a.kind == "remove_misplaced"]
    assert (removal.params["store_location"], removal.params["store_name"]) == (
        "LocalMachine",
        "Root",
    )


def test_a_policy_copy_of_the_cross_sign_is_named_and_the_next_copy_still_removed() -> None:
    copies = [_cert("LocalMachine", "Root", CROSS, ".GroupPolicy"),
              _cert("LocalMachine", "My", CROSS)]  # fmt: skip
    result = _plan("fixed", copies, allow_group_policy_override=True)
    (removal,) = [a for a in result.actions if a.kind == "remove_misplaced"]
    assert (removal.params["store_location"], removal.params["store_name"]) == (
        "LocalMachine",
        "My",
    )
    assert any(
        w.startswith(f"{CROSS_NAME} ({thumbprint(CROSS)}) is in LocalMachine\\Root's ")
        for w in result.warnings
    )
