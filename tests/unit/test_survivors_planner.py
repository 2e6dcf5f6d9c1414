"""Tests that kill mutants of state/planner.py that the rest of the suite let live (issue 20):
Plan.root, a PFX without password, which PFX bytes an old build gets."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from pydantic import SecretBytes, SecretStr

from sectigo_chain.state.models import DesiredState, ObservedState
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.x509.load import to_legacy_pfx

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "plans"
PASSWORD = "golden"


def _case(name: str) -> tuple[DesiredState, ObservedState, dt.datetime, dict[str, Any]]:
    case = json.loads((GOLDEN / f"{name}.json").read_text())
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    return desired, observed, dt.datetime.fromisoformat(case["at"]), case


def _plan(name: str, **kw: Any) -> Plan:
    desired, observed, at, _ = _case(name)
    return plan(desired, observed, at=at, **kw)


def test_plan_root_names_the_root_the_leaf_chains_to() -> None:
    assert _plan("broken-r46").root == "R46"
    assert _plan("broken-e46").root == "E46"
    assert _plan("fixed").root == "R46"


def test_plan_root_is_none_when_no_leaf_is_known() -> None:
    desired, observed, at, _ = _case("broken-r46")
    bindings = tuple(b.model_copy(update={"leaf_der_b64": None}) for b in desired.bindings)
    desired = desired.model_copy(update={"bindings": bindings})
    # The site's binding names a certificate the host does not have.
    sites = []
    for site in observed.sites:
        rebound = tuple(
            b.model_copy(update={"certificate_hash": "00" * 20}) if b.certificate_hash else b
            for b in site.bindings
        )
        sites.append(site.model_copy(update={"bindings": rebound}))
    observed = observed.model_copy(update={"sites": tuple(sites)})
    result = plan(desired, observed, at=at)
    assert result.root is None
    assert "could not tell which root the bound certificate chains to" in result.warnings


def _pfx_desired(
    name: str, *, password: str | None, aes: bool
) -> tuple[DesiredState, bytes, bytes]:
    desired, _, _, case = _case(name)
    (binding,) = desired.bindings
    assert binding.leaf_der_b64 is not None
    cert = x509.load_der_x509_certificate(base64.b64decode(binding.leaf_der_b64))
    key = ec.derive_private_key(case["pfx"]["seed"], ec.SECP256R1())
    legacy = to_legacy_pfx(key, cert, PASSWORD)
    modern = pkcs12.serialize_key_and_certificates(
        None, key, cert, None, BestAvailableEncryption(PASSWORD.encode())
    )
    update: dict[str, Any] = {
        "pfx_password": SecretStr(password) if password is not None else None,
        "pfx": SecretBytes(modern if aes else legacy),
        "pfx_protection": "aes" if aes else "legacy",
        "legacy_pfx": SecretBytes(legacy) if aes else None,
    }
    binding = binding.model_copy(update=update)
    return desired.model_copy(update={"bindings": (binding,)}), legacy, modern


def _imported_pfx(result: Plan) -> bytes:
    (action,) = [a for a in result.actions if a.kind == "import_pfx"]
    return base64.b64decode(action.render_params()["pfx_b64"])


def test_a_pfx_without_password_is_not_imported() -> None:
    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password=None, aes=False)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    result = plan(desired, observed, at=at)
    assert "import_pfx" not in [a.kind for a in result.actions]
    with_password, _, _ = _pfx_desired("pfx-new-sni-binding", password=PASSWORD, aes=False)
    result = plan(with_password, observed, at=at)
    assert "import_pfx" in [a.kind for a in result.actions]
    (action,) = [a for a in result.actions if a.kind == "import_pfx"]
    assert action.render_params()["password"] == PASSWORD
    assert action.params["exportable"] is False


def test_an_old_build_gets_the_legacy_pfx_and_a_new_one_the_aes_pfx() -> None:
    desired, legacy, modern = _pfx_desired("pfx-aes-old-build", password=PASSWORD, aes=True)
    _, observed, at, _ = _case("pfx-aes-old-build")
    assert observed.os.build == 14393
    old = plan(desired, observed, at=at)
    assert _imported_pfx(old) == legacy
    assert "re-encoded with 3DES/SHA-1: build 14393" in old.actions[0].reason
    new_os = observed.os.model_copy(update={"build": 17763})
    new = plan(desired, observed.model_copy(update={"os": new_os}), at=at)
    assert _imported_pfx(new) == modern
    assert "re-encoded" not in new.actions[0].reason
    # A legacy-protected PFX is sent as it is, whatever the build.
    legacy_desired, legacy_bytes, _ = _pfx_desired(
        "pfx-aes-old-build", password=PASSWORD, aes=False
    )
    assert _imported_pfx(plan(legacy_desired, observed, at=at)) == legacy_bytes


def test_refusal_message_says_why_and_how_to_go_on() -> None:
    import pytest

    from sectigo_chain.errors import PlanRefused

    desired, observed, at, _ = _case("gpo-root")
    with pytest.raises(PlanRefused) as info:
        plan(desired, observed, at=at)
    assert str(info.value).startswith(
        "refusing to plan: a root pushed by Group Policy or Active Directory cannot be "
        "removed locally"
    )
    assert any("--allow-group-policy" in line for line in info.value.guidance)
    assert plan(desired, observed, at=at, allow_group_policy_override=True).actions


# --- a new binding on its own IP:port, a PFX whose leaf is unknown, an empty PFX, served chains


def test_a_new_binding_on_an_unused_ip_port_shares_nothing_and_keeps_its_ip() -> None:
    # Both sites are bound to *:443 (the same HTTP.sys entry). A new non-SNI binding on
    # 10.0.0.5:443 is its own entry: it takes over no other binding's certificate and shares
    # its IP:port with no other site.
    desired, observed, at, _ = _case("shared-ip")
    (spec,) = desired.bindings
    (bound,) = [b for b in observed.sites[0].bindings if b.protocol == "https"]
    assert bound.certificate_hash is not None
    spec = spec.model_copy(update={"ip": "10.0.0.5", "thumbprint": bound.certificate_hash})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    (action,) = [a for a in result.actions if a.kind == "set_binding"]
    assert action.params["ip"] == "10.0.0.5"
    assert "new binding" in action.reason
    assert action.previous_binding is None
    assert action.shared_binding is None
    assert action.rollback == "remove the new binding"
    assert not any("shares its IP:port" in w for w in result.warnings), result.warnings
    # Control: the same new binding on *:443 would take over Shop's entry, and says so.
    on_star = spec.model_copy(update={"ip": "*", "host": "", "port": 443})
    observed_no_own = observed.model_copy(
        update={"sites": (observed.sites[0].model_copy(update={"bindings": ()}),
                          *observed.sites[1:])}
    )  # fmt: skip
    shared = plan(desired.model_copy(update={"bindings": (on_star,)}), observed_no_own, at=at)
    (action,) = [a for a in shared.actions if a.kind == "set_binding"]
    assert action.shared_binding is not None
    assert action.shared_binding.site == "Shop"
    assert any("shares its IP:port with Shop" in w for w in shared.warnings), shared.warnings


def test_a_pfx_whose_leaf_is_unknown_is_imported_without_a_friendly_name() -> None:
    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password=PASSWORD, aes=False)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    (spec,) = desired.bindings
    known = plan(desired, observed, at=at)
    (action,) = [a for a in known.actions if a.kind == "import_pfx"]
    assert action.params["friendly_name"]  # the leaf's common name
    tp = action.params["thumbprint"]
    # Only the thumbprint: the planner cannot tell the leaf's name (nor its root).
    blind = spec.model_copy(update={"leaf_der_b64": None, "thumbprint": tp})
    result = plan(desired.model_copy(update={"bindings": (blind,)}), observed, at=at)
    (action,) = [a for a in result.actions if a.kind == "import_pfx"]
    assert action.params["friendly_name"] is None
    assert action.params["thumbprint"] == tp
    assert any("is in no store the host reported" in w for w in result.warnings)


def test_an_empty_pfx_is_planned_as_empty_and_refused_when_rendered() -> None:
    import pytest

    from sectigo_chain.errors import TemplateError

    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password=PASSWORD, aes=False)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    (spec,) = desired.bindings
    empty = spec.model_copy(update={"pfx": SecretBytes(b"")})
    result = plan(desired.model_copy(update={"bindings": (empty,)}), observed, at=at)
    (action,) = [a for a in result.actions if a.kind == "import_pfx"]
    assert action.render_params()["pfx_b64"] == ""  # no bytes made up
    from sectigo_chain.templates.render import render

    with pytest.raises(TemplateError, match="pfx_b64"):
        render(action.template, action.render_params())


def test_a_served_chain_is_not_judged_when_no_cross_sign_is_wanted() -> None:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.models import ObservedServed
    from sectigo_chain.state.recipe import sectigo_fix
    from sectigo_chain.x509.certs import thumbprint

    site = "Default Web Site"
    host = SimulatedHost("stale-cache")
    chain = host.served_chain(site)
    at = chain[0].not_valid_before_utc + dt.timedelta(days=1)
    seen = ObservedServed(site=site, thumbprints=tuple(thumbprint(c) for c in chain))
    observed = observe(host).model_copy(update={"served": (seen,)})
    desired = sectigo_fix(site=site, catalog=host.catalog)
    stale = plan(desired, observed, at=at, catalog=host.catalog)
    assert [a.kind for a in stale.actions] == ["restart"]  # control: the stale chain is seen
    no_cross = tuple(s for s in desired.certificates if s.role != "cross_sign")
    assert len(no_cross) < len(desired.certificates)
    result = plan(desired.model_copy(update={"certificates": no_cross}), observed, at=at,
                  catalog=host.catalog)  # fmt: skip
    assert "restart" not in [a.kind for a in result.actions]
    assert not any("stale chain" in w for w in result.warnings)


# --- round 2 (seed-7 sample): messages the operator acts on ------------------------------------


def test_recycle_says_it_may_not_be_enough_and_needs_an_app_pool() -> None:
    import pytest

    from sectigo_chain.errors import InputError

    (restart,) = [a for a in _plan("recycle").actions if a.kind == "restart"]
    assert restart.reason == (
        "recycle app pool(s) DefaultAppPool (reports differ on whether a recycle refreshes "
        "HTTP.sys's cached chain; verify, and escalate to iisreset if needed)"
    )
    desired, observed, at, _ = _case("recycle")
    no_pool = tuple(s.model_copy(update={"app_pool": None}) for s in observed.sites)
    with pytest.raises(InputError) as info:
        plan(desired, observed.model_copy(update={"sites": no_pool}), at=at)
    assert str(info.value) == (
        "restart 'recycle' needs an app pool, and the site's root application has none: "
        "use --restart iisreset"
    )


def test_a_user_key_leaf_is_moved_in_memory_and_the_reason_says_so() -> None:
    (move,) = [a for a in _plan("user-key").actions if a.kind == "move_leaf"]
    assert move.reason.endswith(
        "and its private key sit only in CurrentUser\\My: SChannel cannot use a user key "
        "(binding error 0x80070520); move it into LocalMachine\\My and its key into the machine "
        "key set (exported and imported in memory on the host, no file)"
    )


def test_a_leaf_of_an_unknown_sectigo_ca_gets_no_trust_store_change_and_a_warning() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec as _ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from sectigo_chain.x509.certs import thumbprint

    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sectigo Limited"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Sectigo Some Future CA"),
        ]
    )
    key = _ec.derive_private_key(777, _ec.SECP256R1())
    at = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.test")]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(777)
        .not_valid_before(at - dt.timedelta(days=30))
        .not_valid_after(at + dt.timedelta(days=300))
        .sign(_ec.derive_private_key(778, _ec.SECP256R1()), hashes.SHA256())
    )
    desired, observed, _, _ = _case("broken-r46")
    (spec,) = desired.bindings
    spec = spec.model_copy(update={
        "thumbprint": thumbprint(leaf),
        "leaf_der_b64": base64.b64encode(leaf.public_bytes(Encoding.DER)).decode(),
    })  # fmt: skip
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    assert result.root is None
    assert "could not tell which root the bound certificate chains to" in result.warnings
    (warning,) = [w for w in result.warnings if "only a guess" in w]
    assert warning == (
        f"certificate {thumbprint(leaf)} of 'Default Web Site': its issuer (Sectigo Some Future "
        "CA) is not on the host and not a CA this tool knows, so which root it chains to is "
        "only a guess (E46 from its key type): no root or cross-sign change is planned for it; "
        "import its issuing CA into LocalMachine\\CA (or pass the PFX with its chain) and plan "
        "again"
    )
    assert not [
        a for a in result.actions if a.kind in ("import_cross_sign", "remove_self_signed_root")
    ]


def _shop_under_an_unknown_ca(store: str) -> tuple[Any, ObservedState, dt.datetime]:
    """broken-r46 plus a site Shop (https, port 8443) whose ECC leaf is issued by "Lab Other
    CA", a CA the catalog does not know, signed by the lab's R46 key and observed in
    LocalMachine\\``store``: (the simulated host, the observed state, the instant to plan at)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.models import ObservedBinding, ObservedCertificate, ObservedSite
    from sectigo_chain.testing.lab import make_certificate, new_key
    from sectigo_chain.x509.certs import thumbprint

    host = SimulatedHost("broken-r46")
    lab = host.lab
    observed = observe(host)
    at = lab.r36.cert.not_valid_before_utc + dt.timedelta(days=30)
    r46 = lab.self_signed_root("RSA")
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Lab Other CA")])
    ica_key = new_key("ECC")
    ica = make_certificate(subject=name, public_key=ica_key.public_key(), issuer=r46.cert.subject,
                           issuer_key=r46.key, not_before=at - dt.timedelta(days=10),
                           not_after=at + dt.timedelta(days=900), ca=True)  # fmt: skip
    leaf_name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "shop.example.test")])
    leaf = make_certificate(subject=leaf_name, public_key=new_key("ECC").public_key(),
                            issuer=name, issuer_key=ica_key, not_before=at - dt.timedelta(days=5),
                            not_after=at + dt.timedelta(days=300), ca=False)  # fmt: skip

    def entry(cert: x509.Certificate, store: str, key: bool) -> ObservedCertificate:
        return ObservedCertificate(
            store_location="LocalMachine", store_name=store, physical_store=".Default",
            thumbprint=thumbprint(cert), has_private_key=key,
            key_storage="machine" if key else None,
            der_b64=base64.b64encode(cert.public_bytes(Encoding.DER)).decode(),
        )  # fmt: skip

    shop = ObservedSite(name="Shop", app_pool="Shop", bindings=(
        ObservedBinding(protocol="https", port=8443, certificate_hash=thumbprint(leaf),
                        certificate_store="My"),))  # fmt: skip
    extra = (entry(ica, store, False), entry(leaf, "My", True))
    observed = observed.model_copy(update={
        "certificates": (*observed.certificates, *extra), "sites": (*observed.sites, shop),
    })  # fmt: skip
    return host, observed, at


def test_an_issuer_found_only_in_the_root_store_still_decides_the_root() -> None:
    # A site's leaf is issued by a CA the catalog does not know, which sits (misplaced) in
    # LocalMachine\Root and is signed by the R46 key: Root and CA both feed the chain search,
    # for the bound leaf and for the other sites the fix affects.
    host, observed, at = _shop_under_an_unknown_ca("Root")
    from sectigo_chain.state.recipe import sectigo_fix

    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    result = plan(desired, observed, at=at, catalog=host.catalog)
    (changes,) = [w for w in result.warnings if w.startswith("the served chain changes")]
    assert changes.endswith(": Default Web Site, Shop")
    # The Shop leaf alone: its root is R46, found through the copy in Root.
    shop_only = sectigo_fix(site="Shop", port=8443, catalog=host.catalog)
    result = plan(shop_only, observed, at=at, catalog=host.catalog)
    assert result.root == "R46"
    assert "import_cross_sign" in [a.kind for a in result.actions]


# --- round 3 (seed-11 sample) -----------------------------------------------------------------


def test_a_binding_that_already_uses_the_certificate_is_a_no_op_that_names_it() -> None:
    result = _plan("fixed")
    _desired, observed, _, _ = _case("fixed")
    (b,) = [b for b in observed.sites[0].bindings if b.protocol == "https"]
    assert (
        f"binding 'Default Web Site' https *:443 already uses thumbprint {b.certificate_hash}: "
        "not rebinding"
    ) in result.noop_reasons


def _with_copy(name: str, **update: Any) -> tuple[DesiredState, ObservedState, dt.datetime, str]:
    """The case with a LocalMachine\\My copy of the bound certificate (``update`` applied)."""
    desired, observed, at, _ = _case(name)
    (b,) = [b for s in observed.sites for b in s.bindings if b.protocol == "https"]
    assert b.certificate_hash is not None
    (user,) = [c for c in observed.certificates if c.thumbprint == b.certificate_hash]
    copy = user.model_copy(update={"store_location": "LocalMachine", "store_name": "My",
                                   "physical_store": ".Default", **update})  # fmt: skip
    observed = observed.model_copy(update={"certificates": (*observed.certificates, copy)})
    return desired, observed, at, b.certificate_hash


def test_a_machine_store_copy_with_a_user_key_set_is_warned_and_the_binding_kept() -> None:
    desired, observed, at, tp = _with_copy("user-key", has_private_key=True, key_storage="user")
    result = plan(desired, observed, at=at)
    assert not [a for a in result.actions if a.kind in ("move_leaf", "import_pfx")]
    (warning,) = [w for w in result.warnings if "user key set" in w]
    assert warning.endswith(
        "is in LocalMachine\\My but its private key is in a user key set, which SChannel "
        "cannot use (0x80070520) and an import does not replace: delete that copy by hand "
        f"(certutil -delstore My {tp}), then plan again with the PFX (--pfx)"
    )
    # Already bound to that certificate: nothing to rebind, and no "not binding" warning.
    assert any(
        n.endswith(f"already uses thumbprint {tp}: not rebinding") for n in result.noop_reasons
    )
    assert not any(w.startswith("not binding") for w in result.warnings)


def test_a_keyless_machine_copy_beside_a_user_key_is_not_moved_and_says_how_to_export() -> None:
    desired, observed, at, tp = _with_copy("user-key", has_private_key=False, key_storage=None)
    result = plan(desired, observed, at=at)
    assert "move_leaf" not in [a.kind for a in result.actions]
    (warning,) = [w for w in result.warnings if "without its private key" in w]
    assert warning.endswith(
        "not moving it (that would delete the only copy with the key); export it with its key "
        f"from CurrentUser\\My (certutil -user -exportPFX My {tp} leaf.pfx) and plan again with "
        "--pfx"
    )


def test_a_certificate_bound_from_webhosting_is_looked_for_there() -> None:
    desired, observed, at, _ = _case("fixed")
    (b,) = [b for b in observed.sites[0].bindings if b.protocol == "https"]
    tp = b.certificate_hash
    certs = tuple(
        c.model_copy(update={"store_name": "WebHosting"}) if c.thumbprint == tp else c
        for c in observed.certificates
    )
    site = observed.sites[0]
    rebound = tuple(x.model_copy(update={"certificate_store": "WebHosting"}) if x is b else x
                    for x in site.bindings)  # fmt: skip
    observed = observed.model_copy(update={
        "certificates": certs, "sites": (site.model_copy(update={"bindings": rebound}),),
    })  # fmt: skip
    result = plan(desired, observed, at=at)
    assert any("already in LocalMachine\\WebHosting with a machine key" in n
               for n in result.noop_reasons), result.noop_reasons  # fmt: skip
    assert not [a for a in result.actions if a.kind in ("move_leaf", "import_pfx")]


def test_a_stale_chain_reason_says_what_the_served_chain_lacks() -> None:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.models import ObservedServed
    from sectigo_chain.state.recipe import sectigo_fix
    from sectigo_chain.x509.certs import thumbprint

    site = "Default Web Site"
    host = SimulatedHost("stale-cache")
    chain = host.served_chain(site)
    at = chain[0].not_valid_before_utc + dt.timedelta(days=1)
    seen = ObservedServed(site=site, thumbprints=tuple(thumbprint(c) for c in chain))
    observed = observe(host).model_copy(update={"served": (seen,)})
    result = plan(sectigo_fix(site=site, catalog=host.catalog), observed, at=at,
                  catalog=host.catalog)  # fmt: skip
    (restart,) = result.actions
    assert restart.reason.startswith(
        f"site 'Default Web Site' still serves a stale chain ({len(chain)} certificate(s), "
        "without the cross-sign although the stores are right): HTTP.sys serves the chain it "
        "cached; "
    )


# --- round 4 (seed-3 sample, planner) ---------------------------------------------------------


def test_a_rebind_says_what_it_replaces_and_how_it_is_undone() -> None:
    desired, _, _ = _pfx_desired("pfx-certificate-changed", password=PASSWORD, aes=False)
    _, observed, at, _ = _case("pfx-certificate-changed")
    result = plan(desired, observed, at=at)
    (bind,) = [a for a in result.actions if a.kind == "set_binding"]
    assert bind.previous_binding is not None
    old = bind.previous_binding.certificate_hash
    assert bind.reason.endswith(f"; replacing {old})")
    assert bind.rollback == "restore the previous binding"
    # A new binding says so.
    desired, observed, at, _ = _case("shared-ip")
    (spec,) = desired.bindings
    (bound,) = [b for b in observed.sites[0].bindings if b.protocol == "https"]
    spec = spec.model_copy(update={"ip": "10.0.0.5", "thumbprint": bound.certificate_hash})
    new = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    (bind,) = [a for a in new.actions if a.kind == "set_binding"]
    assert bind.reason.endswith("(SNI off; new binding)")


def test_a_pfx_import_over_a_keyless_copy_backs_that_copy_up() -> None:
    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password=PASSWORD, aes=False)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    (spec,) = desired.bindings
    assert spec.leaf_der_b64 is not None
    from sectigo_chain.state.models import ObservedCertificate
    from sectigo_chain.x509.certs import thumbprint

    leaf = x509.load_der_x509_certificate(base64.b64decode(spec.leaf_der_b64))
    keyless = ObservedCertificate(store_location="LocalMachine", store_name=spec.store_name,
                                  physical_store=".Default", thumbprint=thumbprint(leaf),
                                  der_b64=spec.leaf_der_b64, friendly_name="old copy")  # fmt: skip
    with_copy = observed.model_copy(update={"certificates": (*observed.certificates, keyless)})
    result = plan(desired, with_copy, at=at)
    (imp,) = [a for a in result.actions if a.kind == "import_pfx"]
    assert imp.backup is not None
    assert (imp.backup.thumbprint, imp.backup.friendly_name) == (thumbprint(leaf), "old copy")
    assert imp.reason.endswith(" (a copy without its key is there)")
    assert imp.rollback.endswith(", then put the keyless copy back")
    (plain,) = [a for a in plan(desired, observed, at=at).actions if a.kind == "import_pfx"]
    assert plain.backup is None


def test_the_served_chains_are_judged_one_by_one() -> None:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.models import ObservedServed
    from sectigo_chain.state.recipe import sectigo_fix
    from sectigo_chain.x509.certs import thumbprint

    site = "Default Web Site"
    host = SimulatedHost("stale-cache")
    stale = tuple(thumbprint(c) for c in host.served_chain(site))
    at = host.served_chain(site)[0].not_valid_before_utc + dt.timedelta(days=1)
    desired = sectigo_fix(site=site, catalog=host.catalog)
    observed = observe(host)
    first = plan(desired, observed, at=at, catalog=host.catalog)
    roots = {first.root}
    cross = next(s.thumbprint for s in desired.certificates
                 if s.role == "cross_sign" and s.when_root in roots)  # fmt: skip
    self_signed = next(s.thumbprint for s in desired.certificates
                       if s.role == "self_signed_root" and s.when_root in roots)  # fmt: skip
    served = (
        ObservedServed(site=site, endpoint="a:443", error="connection refused"),
        ObservedServed(site="Another Site", thumbprints=stale),
        ObservedServed(site=site, endpoint="b:443", thumbprints=(*stale, cross)),  # fresh
        ObservedServed(site=site, endpoint="c:443", thumbprints=(*stale, cross, self_signed)),
    )
    result = plan(desired, observed.model_copy(update={"served": served}), at=at,
                  catalog=host.catalog)  # fmt: skip
    (restart,) = [a for a in result.actions if a.kind == "restart"]
    assert restart.reason.startswith(
        f"site 'Default Web Site' still serves a stale chain ({len(stale) + 2} certificate(s), "
        "with the self-signed root although the stores are right)"
    )


def test_a_ccs_binding_without_a_pfx_is_refused_with_what_to_do() -> None:
    import pytest

    from sectigo_chain.errors import InputError

    desired, observed, at, _ = _case("fixed")
    site = observed.sites[0]
    ccs = tuple(b.model_copy(update={"ssl_flags": 2}) if b.protocol == "https" else b
                for b in site.bindings)  # fmt: skip
    observed = observed.model_copy(update={"sites": (site.model_copy(update={"bindings": ccs}),)})
    with pytest.raises(InputError) as info:
        plan(desired, observed, at=at)
    assert str(info.value) == (
        "site 'Default Web Site' serves its certificate from the Central Certificate Store "
        "(sslFlags bit 2): the bound thumbprint is not used; fix the PFX in the CCS share (with "
        "its chain), or pass --pfx to bind a certificate from the machine store"
    )


def test_iisreset_is_the_restart_that_rebuilds_the_cached_chain() -> None:
    (restart,) = [a for a in _plan("broken-r46").actions if a.kind == "restart"]
    assert restart.params["mode"] == "iisreset"
    assert restart.reason == "iisreset /restart so HTTP.sys rebuilds the chain it caches and serves"


def test_the_outbound_self_test_is_planned_only_after_a_distrust() -> None:
    desired, observed, at, _ = _case("broken-r46")
    url = "https://example.com/"
    distrust = plan(desired.model_copy(update={"outbound_url": url}), observed, at=at)
    assert "remove_self_signed_root" in [a.kind for a in distrust.actions]
    assert distrust.outbound_url == url
    desired, observed, at, _ = _case("fixed")
    nothing = plan(desired.model_copy(update={"outbound_url": url}), observed, at=at)
    assert nothing.outbound_url is None


def test_a_negative_expiry_window_is_refused_with_its_rule() -> None:
    import pytest

    from sectigo_chain.errors import InputError

    desired, observed, at, _ = _case("fixed")
    with pytest.raises(InputError) as info:
        plan(desired, observed, at=at, expiring_within_days=-1)
    assert str(info.value) == "expiring_within_days must be 0 or more"


# --- round 5 (seed-5 sample) ------------------------------------------------------------------


def test_a_new_binding_reason_names_the_site_and_endpoint() -> None:
    desired, observed, at, _ = _case("shared-ip")
    (spec,) = desired.bindings
    (bound,) = [b for b in observed.sites[0].bindings if b.protocol == "https"]
    tp = bound.certificate_hash
    spec = spec.model_copy(update={"ip": "10.0.0.5", "thumbprint": tp})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    (bind,) = [a for a in result.actions if a.kind == "set_binding"]
    assert (
        bind.reason == f"bind {tp} to 'Default Web Site' https 10.0.0.5:443 (SNI off; new binding)"
    )


def test_fixing_the_bound_certificate_does_not_rebind_for_the_sni_flag() -> None:
    # No thumbprint asked for: the certificate already bound stays bound as it is, even when
    # the desired SNI flag differs (only a new certificate is bound with the asked flags).
    desired, observed, at, _ = _case("fixed")
    (spec,) = desired.bindings
    assert spec.thumbprint is None
    sni = spec.model_copy(update={"sni": True, "host": "www.example.test"})
    result = plan(desired.model_copy(update={"bindings": (sni,)}), observed, at=at)
    assert "set_binding" not in [a.kind for a in result.actions]


def test_sites_sharing_an_ip_port_are_told_they_serve_one_certificate() -> None:
    result = _plan("shared-ip")
    (warning,) = [w for w in result.warnings if "shares its IP:port" in w]
    assert warning.endswith(
        "HTTP.sys holds one certificate per IP:port, so they all serve the same certificate and "
        "chain"
    )


def test_an_unobserved_served_chain_without_an_endpoint_says_so() -> None:
    from sectigo_chain.state.models import ObservedServed

    desired, observed, at, _ = _case("fixed")
    seen = ObservedServed(site="Default Web Site", error="connection refused")
    result = plan(desired, observed.model_copy(update={"served": (seen,)}), at=at)
    assert any(
        "serves could not be observed (no endpoint: connection refused)" in w
        for w in result.warnings
    )


# --- round 6 (the full run of planner.py) -----------------------------------------------------


def test_an_old_build_gets_the_legacy_pfx_for_mixed_or_unknown_protection_too() -> None:
    desired, legacy, _ = _pfx_desired("pfx-aes-old-build", password=PASSWORD, aes=True)
    _, observed, at, _ = _case("pfx-aes-old-build")
    for protection in ("mixed", "unknown"):
        (spec,) = desired.bindings
        spec = spec.model_copy(update={"pfx_protection": protection})
        result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
        assert _imported_pfx(result) == legacy, protection
        assert "re-encoded with 3DES/SHA-1" in result.actions[0].reason


def test_a_pfx_import_on_a_new_build_says_only_what_it_does_and_how_it_is_undone() -> None:
    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password=PASSWORD, aes=True)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    (imp,) = [a for a in plan(desired, observed, at=at).actions if a.kind == "import_pfx"]
    tp = imp.params["thumbprint"]
    cn = imp.params["friendly_name"]
    assert (
        imp.reason == f"import the PFX {cn} ({tp}) into LocalMachine\\My with the machine key set"
    )
    assert imp.rollback == f"remove {tp} and its key from LocalMachine\\My"


def _bound_elsewhere(name: str, *, machine_copy: dict[str, Any] | None = None) -> tuple[Plan, str]:
    """The case's bound certificate asked for by thumbprint while the site is bound to another
    certificate (one the host does not have): binding it is a change. ``machine_copy``: add a
    LocalMachine\\My copy of it with these fields."""
    desired, observed, at, _ = _case(name)
    site = observed.sites[0]
    (b,) = [b for b in site.bindings if b.protocol == "https"]
    tp = b.certificate_hash
    assert tp is not None
    certs = list(observed.certificates)
    if machine_copy is not None:
        (src,) = [c for c in certs if c.thumbprint == tp][:1]
        certs = [
            c for c in certs if not (c.thumbprint == tp and c.store_location == "LocalMachine")
        ]
        where = {"store_location": "LocalMachine", "store_name": "My", "physical_store": ".Default"}
        certs.append(src.model_copy(update={**where, **machine_copy}))
    other = tuple(x.model_copy(update={"certificate_hash": "AB" * 20}) if x is b else x
                  for x in site.bindings)  # fmt: skip
    observed = observed.model_copy(update={
        "certificates": tuple(certs),
        "sites": (site.model_copy(update={"bindings": other}), *observed.sites[1:]),
    })  # fmt: skip
    (spec,) = desired.bindings
    spec = spec.model_copy(update={"thumbprint": tp})
    return plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at), tp


def _not_bound(result: Plan, tp: str) -> None:
    assert "set_binding" not in [a.kind for a in result.actions]
    label = f"{_cn(result, tp)} ({tp})"
    assert (
        f"not binding {label} to 'Default Web Site': it has no usable machine key"
        in result.warnings
    ), result.warnings


def _cn(result: Plan, tp: str) -> str:
    """The common name of the case's leaf (every golden case binds the same one or two)."""
    from sectigo_chain.x509.certs import common_name

    for name in ("fixed", "pfx-certificate-changed"):
        _, observed, _, _ = _case(name)
        for c in observed.certificates:
            if c.thumbprint == tp:
                return common_name(c.certificate.subject)
    raise AssertionError(tp)


def test_a_certificate_without_any_private_key_is_not_bound() -> None:
    result, tp = _bound_elsewhere("fixed", machine_copy={"has_private_key": False,
                                                        "key_storage": None})  # fmt: skip
    _not_bound(result, tp)
    (warning,) = [w for w in result.warnings if "has no private key" in w]
    assert warning.endswith(
        f"({tp}) has no private key in LocalMachine\\My or CurrentUser\\My: re-import it from a "
        "PFX (--pfx)"
    )


def test_a_leaf_the_host_does_not_have_gets_no_private_key_advice() -> None:
    # Nothing is known of the certificate: the warning says it is in no store, not that its
    # key is missing.
    desired, observed, at, _ = _case("fixed")
    (spec,) = desired.bindings
    spec = spec.model_copy(update={"thumbprint": "CD" * 20})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    assert any("is in no store the host reported" in w for w in result.warnings)
    assert not any("has no private key" in w for w in result.warnings)
    assert "set_binding" not in [a.kind for a in result.actions]


def test_a_keyless_machine_copy_beside_a_user_key_is_not_bound() -> None:
    result, tp = _bound_elsewhere("user-key", machine_copy={"has_private_key": False,
                                                           "key_storage": None})  # fmt: skip
    assert "move_leaf" not in [a.kind for a in result.actions]
    _not_bound(result, tp)


def test_a_non_exportable_user_key_is_not_moved_nor_bound_and_says_to_re_import() -> None:
    result, tp = _bound_elsewhere("user-key-not-exportable")
    assert "move_leaf" not in [a.kind for a in result.actions]
    _not_bound(result, tp)
    (warning,) = [w for w in result.warnings if "not marked exportable" in w]
    assert warning == (
        f"{_cn(result, tp)} ({tp}) and its private key sit only in CurrentUser\\My and the key "
        "is not marked exportable: it cannot be moved into the machine key set; re-import it "
        "from the original PFX (--pfx)"
    )


def test_a_moved_leaf_is_bound_and_its_user_copy_journaled() -> None:
    result, tp = _bound_elsewhere("user-key")
    kinds = [a.kind for a in result.actions]
    assert kinds.index("move_leaf") < kinds.index("set_binding")
    (move,) = [a for a in result.actions if a.kind == "move_leaf"]
    assert move.rollback == "move it and its key back into CurrentUser\\My"
    assert move.backup is not None
    assert (move.backup.thumbprint, move.backup.store_location, move.backup.store_name) == (
        tp, "CurrentUser", "My",
    )  # fmt: skip
    (bind,) = [a for a in result.actions if a.kind == "set_binding"]
    assert bind.params["thumbprint"] == tp


def test_only_a_key_in_current_users_personal_store_is_moved() -> None:
    # The key sits in SYSTEM\My and in CurrentUser\CA: neither is the CurrentUser\My copy the
    # move template takes; nothing is moved.
    desired, observed, at, _ = _case("user-key")
    (user,) = [c for c in observed.certificates if c.store_location == "CurrentUser"]
    elsewhere = (user.model_copy(update={"store_location": "SYSTEM"}),
                 user.model_copy(update={"store_name": "CA"}))  # fmt: skip
    certs = (*[c for c in observed.certificates if c is not user], *elsewhere)
    result = plan(desired, observed.model_copy(update={"certificates": certs}), at=at)
    assert "move_leaf" not in [a.kind for a in result.actions]
    assert any(
        w.endswith("has no private key in LocalMachine\\My or CurrentUser\\My: re-import it "
                   "from a PFX (--pfx)")
        for w in result.warnings
    ), result.warnings  # fmt: skip


def _stale(**update: Any) -> tuple[Any, Any, dt.datetime, Any, tuple[str, ...]]:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.recipe import sectigo_fix
    from sectigo_chain.x509.certs import thumbprint

    site = "Default Web Site"
    host = SimulatedHost("stale-cache")
    chain = host.served_chain(site)
    at = chain[0].not_valid_before_utc + dt.timedelta(days=1)
    desired = sectigo_fix(site=site, catalog=host.catalog)
    return host, desired, at, observe(host), tuple(thumbprint(c) for c in chain)


def test_a_served_endpoint_that_sent_no_certificate_is_not_judged_stale() -> None:
    from sectigo_chain.state.models import ObservedServed

    host, desired, at, observed, _ = _stale()
    empty = ObservedServed(site="Default Web Site", endpoint="a:443")
    result = plan(desired, observed.model_copy(update={"served": (empty,)}), at=at,
                  catalog=host.catalog)  # fmt: skip
    assert "restart" not in [a.kind for a in result.actions]
    assert "nothing changed: no restart needed" in result.noop_reasons


def test_a_stale_chain_is_judged_against_specs_that_apply_to_every_root() -> None:
    # The desired state names its cross-sign and root without a when_root: they apply to any
    # root, and the stale chain (no cross-sign) still brings the refresh.
    from sectigo_chain.state.models import ObservedServed

    host, desired, at, observed, stale = _stale()
    root = plan(desired, observed, at=at, catalog=host.catalog).root
    mine = tuple(s.model_copy(update={"when_root": None})
                 for s in desired.certificates if s.when_root == root)  # fmt: skip
    desired = desired.model_copy(update={"certificates": mine})
    seen = ObservedServed(site="Default Web Site", thumbprints=stale)
    result = plan(desired, observed.model_copy(update={"served": (seen,)}), at=at,
                  catalog=host.catalog)  # fmt: skip
    assert [a.kind for a in result.actions] == ["restart"]


def test_a_served_intermediate_the_state_wants_present_is_not_a_cross_sign() -> None:
    # Another certificate the desired state wants present (the issuing CA) is served: that
    # says nothing about the cross-sign, whose absence still makes the chain stale.
    from sectigo_chain.state.models import CertificateSpec, ObservedServed

    host, desired, at, observed, stale = _stale()
    seen = ObservedServed(site="Default Web Site", thumbprints=stale)
    issuing = next(c for c in observed.certificates
                   if c.store_name == "CA" and c.thumbprint in stale)  # fmt: skip
    extra = CertificateSpec(role="other", thumbprint=issuing.thumbprint, ensure="present",
                            store_name="CA", der_b64=issuing.der_b64)  # fmt: skip
    desired = desired.model_copy(update={"certificates": (*desired.certificates, extra)})
    result = plan(desired, observed.model_copy(update={"served": (seen,)}), at=at,
                  catalog=host.catalog)  # fmt: skip
    assert [a.kind for a in result.actions] == ["restart"]


def test_recycle_names_every_app_pool_and_a_restart_needs_no_undo() -> None:
    desired, observed, at, _ = _case("shared-ip")
    (spec,) = desired.bindings
    shop = spec.model_copy(update={"site": "Shop"})
    desired = desired.model_copy(update={"bindings": (spec, shop), "restart": "recycle"})
    result = plan(desired, observed, at=at)
    (restart,) = [a for a in result.actions if a.kind == "restart"]
    assert restart.reason.startswith("recycle app pool(s) DefaultAppPool, ShopPool (")
    assert restart.params["app_pools"] == ["DefaultAppPool", "ShopPool"]
    assert restart.rollback == "none needed (rollback restarts again after restoring)"


def test_a_new_sni_binding_reason_names_its_host_and_the_sni_flag() -> None:
    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password=PASSWORD, aes=False)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    (bind,) = [a for a in plan(desired, observed, at=at).actions if a.kind == "set_binding"]
    tp = bind.params["thumbprint"]
    assert bind.reason == (
        f"bind {tp} to 'Default Web Site' https *:443 (host shop.example.test) (SNI on; new "
        "binding)"
    )


def test_a_central_certificate_store_binding_is_rebound_even_to_the_same_thumbprint() -> None:
    # The CCS bit makes HTTP.sys ignore the bound hash: binding the store certificate clears
    # it, even though the hash already names that certificate.
    desired, observed, at, _ = _case("fixed")
    site = observed.sites[0]
    (b,) = [b for b in site.bindings if b.protocol == "https"]
    ccs = tuple(x.model_copy(update={"ssl_flags": 2}) if x is b else x for x in site.bindings)
    observed = observed.model_copy(update={"sites": (site.model_copy(update={"bindings": ccs}),)})
    (spec,) = desired.bindings
    spec = spec.model_copy(update={"thumbprint": b.certificate_hash})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    (bind,) = [a for a in result.actions if a.kind == "set_binding"]
    assert (bind.params["ssl_flags_set"], bind.params["ssl_flags_clear"]) == (0, 3)
    assert bind.reason.endswith(f"(SNI off; replacing {b.certificate_hash})")


def test_an_sni_binding_already_using_the_certificate_is_named_with_its_host() -> None:
    desired, observed, at, _ = _case("fixed")
    site = observed.sites[0]
    (b,) = [b for b in site.bindings if b.protocol == "https"]
    sni = tuple(x.model_copy(update={"ssl_flags": 1, "host": "www.example.test"}) if x is b
                else x for x in site.bindings)  # fmt: skip
    observed = observed.model_copy(update={"sites": (site.model_copy(update={"bindings": sni}),)})
    (spec,) = desired.bindings
    spec = spec.model_copy(update={"sni": True, "host": "www.example.test"})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    assert (
        f"binding 'Default Web Site' https *:443 (host www.example.test) already uses thumbprint "
        f"{b.certificate_hash}: not rebinding"
    ) in result.noop_reasons


def test_a_new_binding_that_takes_over_an_entry_records_it_and_gives_it_back() -> None:
    desired, observed, at, _ = _case("shared-ip")
    (spec,) = desired.bindings
    (shop_binding,) = [b for b in observed.sites[1].bindings if b.protocol == "https"]
    no_own = observed.model_copy(
        update={"sites": (observed.sites[0].model_copy(update={"bindings": ()}),
                          *observed.sites[1:])}
    )  # fmt: skip
    spec = spec.model_copy(update={"thumbprint": shop_binding.certificate_hash})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), no_own, at=at)
    (bind,) = [a for a in result.actions if a.kind == "set_binding"]
    shared = bind.shared_binding
    assert shared is not None
    assert (shared.site, shared.ip, shared.port, shared.certificate_hash) == (
        "Shop", "*", 443, shop_binding.certificate_hash,
    )  # fmt: skip
    assert bind.rollback == (
        f"remove the new binding and rebind {shop_binding.certificate_hash} on 'Shop''s 0.0.0.0:443"
    )


def test_only_non_sni_bindings_are_told_they_share_an_ip_port() -> None:
    # Default Web Site gets a new SNI binding on *:443 (no warning: SNI picks its own
    # certificate), Shop's non-SNI *:443 binding shares its entry with Default Web Site's.
    desired, observed, at, _ = _case("shared-ip")
    (spec,) = desired.bindings
    (bound,) = [b for b in observed.sites[1].bindings if b.protocol == "https"]
    tp = bound.certificate_hash
    sni = spec.model_copy(update={"sni": True, "host": "www.example.test", "thumbprint": tp})
    shop = spec.model_copy(update={"site": "Shop"})
    result = plan(desired.model_copy(update={"bindings": (sni, shop)}), observed, at=at)
    assert "set_binding" in [a.kind for a in result.actions]
    shares = [w for w in result.warnings if "shares its IP:port" in w]
    assert len(shares) == 1, shares
    # The only rebind is the SNI one, which has an entry of its own: Shop's shared entry keeps
    # its certificate, so the warning must not say that rebinding changes it.
    assert shares[0] == (
        "the non-SNI binding 0.0.0.0:443 of 'Shop' shares its IP:port with Default Web Site: "
        "HTTP.sys holds one certificate per IP:port, so they all serve the same certificate "
        "and chain"
    )


def test_rebinding_a_shared_entry_says_it_changes_every_sites_certificate() -> None:
    result, _ = _bound_elsewhere("shared-ip")
    assert "set_binding" in [a.kind for a in result.actions]
    (warning,) = [w for w in result.warnings if "shares its IP:port" in w]
    assert warning.endswith(
        "with Shop: HTTP.sys holds one certificate per IP:port, so rebinding changes the "
        "certificate of all of them"
    )
    # A third site on the same entry is named too.
    desired, observed, at, _ = _case("shared-ip")
    blog = observed.sites[1].model_copy(update={"name": "Blog", "app_pool": "BlogPool"})
    observed = observed.model_copy(update={"sites": (*observed.sites, blog)})
    result = plan(desired, observed, at=at)
    (warning,) = [w for w in result.warnings if "shares its IP:port" in w]
    assert "shares its IP:port with Blog, Shop: " in warning


def test_a_leaf_left_unbound_on_a_new_endpoint_does_not_break_the_shared_ip_check() -> None:
    # The site has no https binding and the certificate to bind has no key: nothing is bound
    # (no rebind), while the trust-store changes are still planned.
    desired, observed, at, _ = _case("broken-r46")
    site = observed.sites[0]
    (b,) = [b for b in site.bindings if b.protocol == "https"]
    tp = b.certificate_hash
    http_only = tuple(x for x in site.bindings if x is not b)
    certs = tuple(c.model_copy(update={"has_private_key": False, "key_storage": None})
                  if c.thumbprint == tp else c for c in observed.certificates)  # fmt: skip
    observed = observed.model_copy(update={
        "certificates": certs, "sites": (site.model_copy(update={"bindings": http_only}),),
    })  # fmt: skip
    (spec,) = desired.bindings
    spec = spec.model_copy(update={"thumbprint": tp})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    assert "remove_self_signed_root" in [a.kind for a in result.actions]
    _not_bound(result, str(tp))


def test_a_keyed_copy_in_another_machine_store_is_not_the_bound_store_copy() -> None:
    desired, observed, at, _ = _case("fixed")
    (b,) = [b for b in observed.sites[0].bindings if b.protocol == "https"]
    certs = tuple(c.model_copy(update={"store_name": "WebHosting"}) if c.thumbprint ==
                  b.certificate_hash else c for c in observed.certificates)  # fmt: skip
    result = plan(desired, observed.model_copy(update={"certificates": certs}), at=at)
    assert not any("already in LocalMachine\\My with a machine key" in n
                   for n in result.noop_reasons)  # fmt: skip
    assert any(w.endswith("has no private key in LocalMachine\\My or CurrentUser\\My: re-import "
                          "it from a PFX (--pfx)") for w in result.warnings)  # fmt: skip


def test_a_machine_store_copy_is_named_by_its_common_name() -> None:
    result = _plan("fixed")
    _, observed, _, _ = _case("fixed")
    (b,) = [b for b in observed.sites[0].bindings if b.protocol == "https"]
    tp = str(b.certificate_hash)
    assert (
        f"{_cn(result, tp)} ({tp}) already in LocalMachine\\My with a machine key"
        in result.noop_reasons
    )


def test_a_machine_copy_whose_key_is_in_a_user_key_set_is_not_bound() -> None:
    result, tp = _bound_elsewhere("fixed", machine_copy={"has_private_key": True,
                                                        "key_storage": "user"})  # fmt: skip
    _not_bound(result, tp)


def test_a_binding_change_alone_does_not_change_any_sites_chain() -> None:
    # Default Web Site is rebound; Shop (on *:8443) keeps the certificate it serves, which
    # chains to R46 like the new one: no trust-store change, so no site's chain changes.
    from sectigo_chain.state.models import ObservedBinding, ObservedSite

    desired, observed, at, _ = _case("fixed")
    site = observed.sites[0]
    (b,) = [b for b in site.bindings if b.protocol == "https"]
    other = tuple(x.model_copy(update={"certificate_hash": "AB" * 20}) if x is b else x
                  for x in site.bindings)  # fmt: skip
    shop = ObservedSite(name="Shop", app_pool="ShopPool", bindings=(
        ObservedBinding(protocol="https", port=8443, certificate_hash=b.certificate_hash,
                        certificate_store="My"),))  # fmt: skip
    observed = observed.model_copy(
        update={"sites": (site.model_copy(update={"bindings": other}), shop)}
    )
    (spec,) = desired.bindings
    spec = spec.model_copy(update={"thumbprint": b.certificate_hash})
    desired = desired.model_copy(
        update={"bindings": (spec,), "outbound_url": "https://example.com/"}
    )
    result = plan(desired, observed, at=at)
    assert result.root == "R46"
    assert [a.kind for a in result.actions] == ["set_binding", "restart"]
    assert result.outbound_url is None  # no distrust: no outbound self-test
    assert result.affected_sites == ()
    assert not any(w.startswith("the served chain changes") for w in result.warnings)


def test_the_served_chain_change_is_the_first_warning() -> None:
    result = _plan("broken-r46")
    assert len(result.warnings) > 1
    assert result.warnings[0].startswith("the served chain changes for every site whose ")


def _two_roots(bind_both: bool) -> Plan:
    """broken-r46 plus a site 'Shop' on *:8443 bound to broken-e46's ECC leaf (its issuing CA
    and self-signed E46 root are on the host too)."""
    from sectigo_chain.state.models import ObservedBinding, ObservedSite

    desired, observed, at, _ = _case("broken-r46")
    _, e46, _, _ = _case("broken-e46")
    known = {c.thumbprint for c in observed.certificates}
    extra = tuple(c for c in e46.certificates if c.thumbprint not in known)
    (leaf,) = [c for c in extra if c.store_name == "My"]
    shop = ObservedSite(name="Shop", app_pool="ShopPool", bindings=(
        ObservedBinding(protocol="https", port=8443, certificate_hash=leaf.thumbprint,
                        certificate_store="My"),))  # fmt: skip
    observed = observed.model_copy(update={
        "certificates": (*observed.certificates, *extra), "sites": (*observed.sites, shop),
    })  # fmt: skip
    (spec,) = desired.bindings
    specs = (spec, spec.model_copy(update={"site": "Shop", "port": 8443})) if bind_both else (spec,)
    return plan(desired.model_copy(update={"bindings": specs}), observed, at=at)


def test_only_sites_chaining_to_the_changed_root_are_affected() -> None:
    one = _two_roots(bind_both=False)
    assert one.affected_sites == ("Default Web Site",)
    (changes,) = [w for w in one.warnings if w.startswith("the served chain changes")]
    assert "chains to R46 (" in changes
    both = _two_roots(bind_both=True)
    assert set(both.affected_sites) == {"Default Web Site", "Shop"}
    (changes,) = [w for w in both.warnings if w.startswith("the served chain changes")]
    assert "chains to E46/R46 (" in changes


def test_an_issuer_found_only_in_the_intermediate_store_decides_which_sites_are_affected() -> None:
    # Shop's leaf (ECC key) is issued by a CA the catalog does not know (ECC key too), which
    # sits in LocalMachine\CA and is signed by the lab's R46 key: only that CA links Shop to
    # R46 (its key type alone would say E46), so Shop is among the sites whose chain changes.
    host, observed, at = _shop_under_an_unknown_ca("CA")
    from sectigo_chain.state.recipe import sectigo_fix

    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    result = plan(desired, observed, at=at, catalog=host.catalog)
    assert result.affected_sites == ("Default Web Site", "Shop")
    # Shop's own plan: its root is R46, found through the CA in LocalMachine\CA.
    shop_only = sectigo_fix(site="Shop", port=8443, catalog=host.catalog)
    result = plan(shop_only, observed, at=at, catalog=host.catalog)
    assert result.root == "R46"
    assert not any("only a guess" in w for w in result.warnings)


def test_an_unknown_site_is_an_input_error_listing_the_sites() -> None:
    import pytest

    from sectigo_chain.errors import InputError

    desired, observed, at, _ = _case("shared-ip")
    (spec,) = desired.bindings
    wrong = desired.model_copy(update={"bindings": (spec.model_copy(update={"site": "Blog"}),)})
    with pytest.raises(InputError) as info:
        plan(wrong, observed, at=at)
    assert str(info.value) == "site 'Blog' not found on the host (sites: Default Web Site, Shop)"
    with pytest.raises(InputError) as info:
        plan(wrong, observed.model_copy(update={"sites": ()}), at=at)
    assert str(info.value) == "site 'Blog' not found on the host (sites: none)"


def test_a_site_without_a_bound_certificate_asks_for_the_pfx() -> None:
    import pytest

    from sectigo_chain.errors import InputError

    desired, observed, at, _ = _case("fixed")
    site = observed.sites[0]
    http_only = tuple(b for b in site.bindings if b.protocol != "https")
    observed = observed.model_copy(
        update={"sites": (site.model_copy(update={"bindings": http_only}),)}
    )
    with pytest.raises(InputError) as info:
        plan(desired, observed, at=at)
    assert str(info.value) == (
        "site 'Default Web Site' has no https binding with a certificate: pass the PFX to "
        "import and bind (--pfx)"
    )


def test_host_headers_match_whatever_their_case_on_either_side() -> None:
    desired, observed, at, _ = _case("fixed")
    site = observed.sites[0]
    (b,) = [b for b in site.bindings if b.protocol == "https"]
    mixed = tuple(x.model_copy(update={"ssl_flags": 1, "host": "WWW.Example.test"}) if x is b
                  else x for x in site.bindings)  # fmt: skip
    # Listed first: another SNI binding of the site, with another certificate.
    other = b.model_copy(update={"ssl_flags": 1, "host": "other.example.test",
                                 "certificate_hash": "AB" * 20})  # fmt: skip
    mixed = (other, *mixed)
    observed = observed.model_copy(update={"sites": (site.model_copy(update={"bindings": mixed}),)})
    (spec,) = desired.bindings
    spec = spec.model_copy(update={"sni": True, "host": "www.EXAMPLE.test"})
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    assert "set_binding" not in [a.kind for a in result.actions]
    assert any(n.endswith(f"already uses thumbprint {b.certificate_hash}: not rebinding")
               for n in result.noop_reasons)  # fmt: skip


def test_a_leaf_from_another_ca_says_why_no_cross_sign_applies() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from sectigo_chain.testing.lab import make_certificate, new_key
    from sectigo_chain.x509.catalog import cross_sign_for, default_catalog
    from sectigo_chain.x509.certs import thumbprint

    utc = dt.timezone.utc
    ca_key = new_key("RSA")
    ca_name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Other Vendor CA")])
    leaf_name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "www.example.test")])
    leaf = make_certificate(subject=leaf_name, public_key=new_key("RSA").public_key(),
                            issuer=ca_name, issuer_key=ca_key,
                            not_before=dt.datetime(2026, 1, 1, tzinfo=utc),
                            not_after=dt.datetime(2027, 1, 1, tzinfo=utc), ca=False)  # fmt: skip
    answer = cross_sign_for(leaf, default_catalog())
    assert answer.root is None
    assert not answer.guessed
    desired, observed, at, _ = _case("fixed")
    (spec,) = desired.bindings
    tp = thumbprint(leaf)
    spec = spec.model_copy(update={
        "thumbprint": tp,
        "leaf_der_b64": base64.b64encode(leaf.public_bytes(Encoding.DER)).decode(),
    })  # fmt: skip
    result = plan(desired.model_copy(update={"bindings": (spec,)}), observed, at=at)
    assert f"certificate {tp} of 'Default Web Site': {answer.explanation}" in result.warnings


def test_target_is_what_the_caller_names() -> None:
    assert _plan("fixed").target == ""
    assert _plan("fixed", target="web01").target == "web01"


def test_a_decided_root_is_not_called_undecided_by_another_unknown_leaf() -> None:
    desired, observed, at, _ = _case("fixed")
    (spec,) = desired.bindings
    unknown = spec.model_copy(update={"port": 8443, "thumbprint": "CD" * 20})
    result = plan(desired.model_copy(update={"bindings": (spec, unknown)}), observed, at=at)
    assert result.root == "R46"
    assert any("is in no store the host reported" in w for w in result.warnings)
    assert "could not tell which root the bound certificate chains to" not in result.warnings


def test_an_unknown_build_gets_the_aes_pfx() -> None:
    # Build 0: observe could not tell the Windows build; the PFX is sent as it is.
    desired, _, modern = _pfx_desired("pfx-aes-old-build", password=PASSWORD, aes=True)
    _, observed, at, _ = _case("pfx-aes-old-build")
    unknown = observed.model_copy(update={"os": observed.os.model_copy(update={"build": 0})})
    result = plan(desired, unknown, at=at)
    assert _imported_pfx(result) == modern
    assert "re-encoded" not in result.actions[0].reason


def test_restart_none_warns_that_the_cached_chain_may_stay() -> None:
    result = _plan("restart-none")
    assert "restart" not in [a.kind for a in result.actions]
    assert (
        "restart 'none': IIS may keep serving the cached chain until it restarts" in result.warnings
    )


def test_a_ccs_pfx_rebuild_is_planned_with_a_dated_backup_and_the_hosts_catalog() -> None:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.hosts.sim.scenarios import CCS_LAB_PASSWORD, CCS_LOCATION
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.ccs import backup_path
    from sectigo_chain.state.recipe import sectigo_fix

    host = SimulatedHost("ccs-pfx")
    password = SecretStr(CCS_LAB_PASSWORD)
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    desired = desired.model_copy(update={"rebuild_ccs": True, "ccs_password": password})
    at = host.clock()
    result = plan(desired, observe(host, ccs_password=password), at=at, catalog=host.catalog)
    (rebuild,) = [a for a in result.actions if a.kind == "rebuild_ccs_pfx"]
    path = f"{CCS_LOCATION}\\ccs.example.test.pfx"
    assert rebuild.params["backup_path"] == backup_path(path, at)
    lab = host.lab
    names = [host.catalog.identify(c) for c in (lab.issuing_ca("RSA").cert, lab.r46_cross)]
    lacking = ", ".join(e.name for e in names if e is not None)
    assert f"holds the certificate without {lacking} (win-acme #1347)" in rebuild.reason


def test_a_pfx_with_an_empty_password_is_imported_with_that_empty_password() -> None:
    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password="", aes=False)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    (imp,) = [a for a in plan(desired, observed, at=at).actions if a.kind == "import_pfx"]
    assert imp.render_params()["password"] == ""
