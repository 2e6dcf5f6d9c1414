# ruff: noqa: E501 - one case per statement reads better than wrapped data
"""Write the golden plan cases in tests/golden/plans/ (run by hand; the test reads only JSON).

Each case: ``desired`` (a DesiredState document, no secrets), ``observed`` (an observe
document), ``options`` (root strategy etc. are in desired; here: at, override) and ``expected``
(the action kinds, templates and parameters, no-op and warning substrings, or a refusal).
Inputs use the REAL Sectigo certificates from the package catalog; leaves are stand-ins whose
issuer name and key identifier are those of CA DV R36/E36 (their signatures are not R36's:
the plan recognises the issuer by key identifier, as it would for an unknown leaf). Keys come
from fixed seeds and signatures are deterministic (RFC 6979), so running the script again
rewrites nothing (tests/unit/test_golden_plans.py checks it).
The expectations are written by hand below, from the manual procedure.

    PYTHONPATH=. python tests/golden/make_plan_cases.py
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.x509.catalog import default_catalog
from sectigo_chain.x509.certs import thumbprint

# SECTIGO_PLAN_GOLDEN_OUT writes elsewhere (the test that checks regeneration rewrites nothing).
OUT = Path(os.environ.get("SECTIGO_PLAN_GOLDEN_OUT") or Path(__file__).parent / "plans")
CAT = default_catalog()
R46 = CAT.certificate("r46-root-selfsigned")
R46X = CAT.certificate("r46-cross-usertrust-rsa")
E46 = CAT.certificate("e46-root-selfsigned")
E46X = CAT.certificate("e46-cross-usertrust-ecc")
R36 = CAT.certificate("ca-dv-r36")
E36 = CAT.certificate("ca-dv-e36")
UT_RSA = CAT.certificate("usertrust-rsa-root-selfsigned")
UT_ECC = CAT.certificate("usertrust-ecc-root-selfsigned")
AT = "2026-06-01T00:00:00+00:00"


def der(c: x509.Certificate) -> str:
    return base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()


def leaf(seed: int, issuer: x509.Certificate, name: str) -> x509.Certificate:
    """A stand-in leaf: deterministic key; issuer name and AKI of ``issuer``."""
    key = ec.derive_private_key(seed, ec.SECP256R1())
    signer = ec.derive_private_key(seed + 1, ec.SECP256R1())
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(seed)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        .not_valid_after(dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
        .add_extension(x509.AuthorityKeyIdentifier(ski, None, None), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(signer, hashes.SHA256(), ecdsa_deterministic=True)
    )


def expired_cross_copy() -> x509.Certificate:
    """Same subject and public key as the R46 cross, expired (a duplicate to remove)."""
    signer = ec.derive_private_key(99, ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(R46X.subject)
        .issuer_name(R46X.issuer)
        .public_key(R46X.public_key())
        .serial_number(4646)
        .not_valid_before(dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc))
        .not_valid_after(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, hashes.SHA256(), ecdsa_deterministic=True)
    )


LEAF = leaf(1001, R36, "www.example.test")
LEAF_E = leaf(1002, E36, "www.example.test")
NEW_LEAF = leaf(1003, R36, "shop.example.test")
OLD_LEAF = leaf(1004, R36, "old.example.test")


def cert(
    loc: str, store: str, c: x509.Certificate, phys: str = ".Default", **kw: Any
) -> dict[str, Any]:
    return {
        "store_location": loc, "store_name": store, "physical_store": phys,
        "thumbprint": thumbprint(c), "der_b64": der(c), "friendly_name": kw.get("friendly_name", ""),
        "has_private_key": kw.get("key") is not None, "key_storage": kw.get("key"),
        "key_exportable": kw.get("exportable", False) if kw.get("key") else None,
    }  # fmt: skip


def site(name: str, sid: int, tp: str | None, *, pool: str = "DefaultAppPool", host: str = "",
         flags: int = 0) -> dict[str, Any]:  # fmt: skip
    bindings = [{"protocol": "http", "ip": "*", "port": 80, "host": "", "ssl_flags": 0,
                 "certificate_hash": None, "certificate_store": None}]  # fmt: skip
    if tp:
        bindings.append({"protocol": "https", "ip": "*", "port": 443, "host": host,
                         "ssl_flags": flags, "certificate_hash": tp, "certificate_store": "My"})  # fmt: skip
    return {"name": name, "id": sid, "state": "Started", "app_pool": pool, "bindings": bindings}


def observed(
    certs: list[dict[str, Any]],
    *,
    leaf_cert: x509.Certificate | None = LEAF,
    sites: list[dict[str, Any]] | None = None,
    policy: bool | None = None,
    build: int = 17763,
    ecc: bool = False,
) -> dict[str, Any]:
    base = [
        cert("LocalMachine", "Root", UT_RSA, ".AuthRoot"),
        cert("LocalMachine", "Root", UT_ECC, ".AuthRoot"),
        cert("LocalMachine", "CA", E36 if ecc else R36),
    ]
    if leaf_cert is not None:
        base.append(cert("LocalMachine", "My", leaf_cert, key="machine"))
    return {
        "computer_name": "IIS01",
        "os": {"caption": "Windows Server", "version": f"10.0.{build}", "build": build, "ubr": 1},
        "powershell_version": "5.1",
        "disable_root_auto_update": policy,
        "iis_installed": True,
        "certificates": base + certs,
        "sites": sites if sites is not None else [site("Default Web Site", 1, _tp(leaf_cert))],
        "app_pools": [{"name": "DefaultAppPool", "state": "Started"}],
        "sslcert": [],
    }


def _tp(c: x509.Certificate | None) -> str | None:
    return thumbprint(c) if c is not None else None


def desired(**kw: Any) -> dict[str, Any]:
    kw.setdefault("site", "Default Web Site")
    return sectigo_fix(catalog=CAT, **kw).model_dump(mode="json", exclude_none=False)


def desired_pfx(
    leaf_cert: x509.Certificate, seed: int, **kw: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Desired state for a PFX of ``leaf_cert`` (the test rebuilds the PFX from ``seed``)."""
    from sectigo_chain.x509.load import to_legacy_pfx

    key = ec.derive_private_key(seed, ec.SECP256R1())
    pfx = to_legacy_pfx(key, leaf_cert, "golden")
    d = sectigo_fix(catalog=CAT, site=kw.pop("site", "Default Web Site"), pfx=pfx,
                    pfx_password="golden", **kw).model_dump(mode="json")  # fmt: skip
    for b in d["bindings"]:
        for k in ("pfx", "pfx_password", "legacy_pfx"):
            b[k] = None
    return d, {"seed": seed, "aes": False}


TP = thumbprint
X = TP(R46X)
S = TP(R46)
L = TP(LEAF)


def act(kind: str, template: str, **params: Any) -> dict[str, Any]:
    return {"kind": kind, "template": template, "params": params}


CROSS = act(
    "import_cross_sign",
    "import_certificate",
    thumbprint=X,
    store_location="LocalMachine",
    store_name="CA",
)
RM_ROOT_AUTH = act("remove_self_signed_root", "remove_certificate", thumbprint=S,
                   store_location="LocalMachine", store_name="Root", physical_store=".AuthRoot")  # fmt: skip
RESTART = act("restart", "restart", mode="iisreset", app_pools=[])
BROKEN = [cert("LocalMachine", "Root", R46, ".AuthRoot")]
FIXED = [cert("LocalMachine", "CA", R46X)]


def case(name: str, doc: str, d: dict[str, Any], o: dict[str, Any], expected: dict[str, Any],
         *, override: bool = False, pfx: dict[str, Any] | None = None) -> None:  # fmt: skip
    data = {"description": doc, "at": AT, "allow_group_policy_override": override,
            "desired": d, "observed": o, "pfx": pfx, "expected": expected}  # fmt: skip
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    drift = "can re-add"
    case("broken-r46", "RSA leaf, self-signed R46 in Root, no cross: import cross into "
         "LocalMachine\\CA, remove only the self-signed R46, iisreset",
         desired(), observed(BROKEN),
         {"actions": [CROSS, RM_ROOT_AUTH, RESTART],
          "noops": ["already in LocalMachine\\My", f"already uses thumbprint {L}: not rebinding"],
          "warnings": ["served chain changes for every site", "Default Web Site", drift]})  # fmt: skip
    case("broken-e46", "ECC leaf: the E46 cross (by USERTrust ECC), never the R46 one",
         desired(), observed([cert("LocalMachine", "Root", E46, ".AuthRoot")], leaf_cert=LEAF_E, ecc=True),
         {"actions": [act("import_cross_sign", "import_certificate", thumbprint=TP(E46X), store_name="CA"),
                      act("remove_self_signed_root", "remove_certificate", thumbprint=TP(E46)),
                      RESTART],
          "warnings": ["chains to E46"]})  # fmt: skip
    case("fixed", "already right: empty plan, every no-op has its reason",
         desired(), observed(FIXED),
         {"actions": [], "noops": ["Sectigo R46 cross-signed by USERTrust RSA already in LocalMachine\\CA",
                                   "Sectigo R46 (self-signed root) not in LocalMachine\\Root",
                                   "not rebinding", "nothing changed: no restart needed"],
          "warnings": []})  # fmt: skip
    case("cross-present-root-still-there", "cross already in CA: only the self-signed root goes",
         desired(), observed([*FIXED, cert("LocalMachine", "Root", R46, ".Default")]),
         {"actions": [act("remove_self_signed_root", "remove_certificate", thumbprint=S,
                          physical_store=".Default"), RESTART],
          "noops": ["already in LocalMachine\\CA"]})  # fmt: skip
    case("misplaced", "cross in CurrentUser\\CA and in Root: import into LocalMachine\\CA, remove "
         "both copies (Local Computer, never Current User; Intermediate, never Root)",
         desired(), observed([*BROKEN, cert("CurrentUser", "CA", R46X), cert("LocalMachine", "Root", R46X)]),
         {"actions": [CROSS,
                      act("remove_misplaced", "remove_certificate", thumbprint=X, store_location="CurrentUser", store_name="CA"),
                      act("remove_misplaced", "remove_certificate", thumbprint=X, store_location="LocalMachine", store_name="Root"),
                      RM_ROOT_AUTH, RESTART]})  # fmt: skip
    case("cross-in-my", "a copy of the cross in LocalMachine\\My is misplaced too",
         desired(), observed([*FIXED, cert("LocalMachine", "My", R46X)]),
         {"actions": [act("remove_misplaced", "remove_certificate", thumbprint=X, store_name="My"), RESTART]})  # fmt: skip
    dup = expired_cross_copy()
    case("duplicates", "an expired copy of the cross and the self-signed R46 sitting in the "
         "Intermediate store are duplicates: removed; the valid cross stays",
         desired(), observed([*FIXED, cert("LocalMachine", "CA", dup), cert("LocalMachine", "CA", R46)]),
         {"actions": [act("remove_duplicate", "remove_certificate", thumbprint=TP(dup), store_name="CA"),
                      act("remove_duplicate", "remove_certificate", thumbprint=S, store_name="CA"),
                      RESTART]})  # fmt: skip
    gpo = [cert("LocalMachine", "Root", R46, ".GroupPolicy")]
    case("gpo-root", "self-signed R46 from Group Policy: refused with guidance, no deletion",
         desired(), observed(gpo),
         {"refused": [".GroupPolicy physical store", "comes from Group Policy", "GPO", "--allow-group-policy"],
          "refused_absent": [".Enterprise", "comes from Active Directory"]})  # fmt: skip
    case("gpo-root-override", "with the override: the cross is imported, the GPO root is left",
         desired(), observed(gpo),
         {"actions": [CROSS, RESTART], "warnings": ["left in place (override given)"]}, override=True)  # fmt: skip
    case("gpo-root-override-disallow", "override + remove_and_disallow: Disallowed wins over Root",
         desired(root_strategy="remove_and_disallow"), observed(gpo),
         {"actions": [CROSS, act("disallow_root", "disallow_certificate", thumbprint=S), RESTART]},
         override=True)  # fmt: skip
    case("enterprise-root", "a root from the Enterprise (AD) store is refused too",
         desired(), observed([cert("LocalMachine", "Root", R46, ".Enterprise")]),
         {"refused": [".Enterprise physical store", "comes from Active Directory"],
          "refused_absent": [".GroupPolicy", "comes from Group Policy"]})  # fmt: skip
    case("drift-disable-auto-update", "strategy disable_auto_update: policy first, then removal",
         desired(root_strategy="disable_auto_update"), observed(BROKEN),
         {"actions": [CROSS, act("disable_root_auto_update", "set_root_auto_update", disabled=True),
                      RM_ROOT_AUTH, RESTART]})  # fmt: skip
    case("drift-policy-already-set", "policy already disables Automatic Root Update: no drift warning",
         desired(root_strategy="disable_auto_update"), observed(BROKEN, policy=True),
         {"actions": [CROSS, RM_ROOT_AUTH, RESTART], "noops": ["already disabled by policy"],
          "no_warnings": [drift]})  # fmt: skip
    case("remove-and-disallow", "strategy remove_and_disallow: Disallowed, then removal",
         desired(root_strategy="remove_and_disallow"), observed(BROKEN),
         {"actions": [CROSS, act("disallow_root", "disallow_certificate", thumbprint=S), RM_ROOT_AUTH, RESTART],
          "no_warnings": [drift]})  # fmt: skip
    case("keep", "strategy keep: nothing removed, a warning says the short chain stays",
         desired(root_strategy="keep"), observed(BROKEN),
         {"actions": [CROSS, RESTART], "warnings": ["root strategy 'keep'"]})  # fmt: skip
    case("shared-ip", "two non-SNI sites on *:443: the warning names the other site",
         desired(), observed(BROKEN, sites=[site("Default Web Site", 1, L), site("Shop", 2, L, pool="ShopPool")]),
         {"actions": [CROSS, RM_ROOT_AUTH, RESTART],
          "warnings": ["Default Web Site, Shop", "shares its IP:port with Shop"]})  # fmt: skip
    d, pfx = desired_pfx(NEW_LEAF, 1003, hostname="shop.example.test")
    case("pfx-new-sni-binding", "PFX into LocalMachine\\My and a new SNI binding (https, IP, port, host)",
         d, observed(FIXED, sites=[site("Default Web Site", 1, None)]),
         {"actions": [act("import_pfx", "import_pfx", thumbprint=TP(NEW_LEAF), store_name="My", exportable=False),
                      act("set_binding", "set_binding", site="Default Web Site", ip="*", port=443,
                          host="shop.example.test", thumbprint=TP(NEW_LEAF), ssl_flags_set=1, ssl_flags_clear=2),
                      RESTART]}, pfx=pfx)  # fmt: skip
    d, pfx = desired_pfx(NEW_LEAF, 1003)
    case("pfx-certificate-changed", "the bound certificate differs: import and rebind (previous recorded)",
         d, observed(FIXED, leaf_cert=OLD_LEAF),
         {"actions": [act("import_pfx", "import_pfx", thumbprint=TP(NEW_LEAF)),
                      act("set_binding", "set_binding", thumbprint=TP(NEW_LEAF), ssl_flags_set=0, ssl_flags_clear=3),
                      RESTART],
          "previous_binding": TP(OLD_LEAF)}, pfx=pfx)  # fmt: skip
    d, pfx = desired_pfx(LEAF, 1001)
    case("pfx-same-certificate", "the PFX is what is bound already: no import, do not rebind",
         d, observed(FIXED),
         {"actions": [], "noops": ["already in LocalMachine\\My with a machine key",
                                   f"already uses thumbprint {L}: not rebinding"]}, pfx=pfx)  # fmt: skip
    d, pfx = desired_pfx(NEW_LEAF, 1003)
    pfx["aes"] = True
    case("pfx-aes-old-build", "AES PFX on build 14393 (Server 2016 before 1709): legacy copy imported",
         d, observed(FIXED, leaf_cert=OLD_LEAF, build=14393),
         {"actions": [act("import_pfx", "import_pfx", thumbprint=TP(NEW_LEAF)),
                      act("set_binding", "set_binding", thumbprint=TP(NEW_LEAF)), RESTART],
          "reason_contains": {"0": "re-encoded with 3DES/SHA-1: build 14393"}}, pfx=pfx)  # fmt: skip
    case("user-key", "leaf and exportable key only in CurrentUser\\My: moved, key into the machine key set, in memory",
         desired(), dict(observed(FIXED, leaf_cert=None, sites=[site("Default Web Site", 1, L)]),
                         certificates=observed(FIXED, leaf_cert=None, sites=[])["certificates"] + [cert("CurrentUser", "My", LEAF, key="user", exportable=True)]),
         {"actions": [act("move_leaf", "move_certificate", thumbprint=L, from_location="CurrentUser",
                          from_store="My", to_location="LocalMachine", to_store="My", remove_source=True,
                          with_key=True),
                      RESTART]})  # fmt: skip
    case("user-key-not-exportable", "leaf and a non-exportable key only in CurrentUser\\My: no move (the key cannot reach the machine key set), a warning",
         desired(), dict(observed(FIXED, leaf_cert=None, sites=[site("Default Web Site", 1, L)]),
                         certificates=observed(FIXED, leaf_cert=None, sites=[])["certificates"] + [cert("CurrentUser", "My", LEAF, key="user")]),
         {"actions": [], "warnings": ["not marked exportable"]})  # fmt: skip
    case("recycle", "restart 'recycle': the site's app pool is recycled instead of iisreset",
         desired(restart="recycle"), observed(BROKEN),
         {"actions": [CROSS, RM_ROOT_AUTH, act("restart", "restart", mode="recycle", app_pools=["DefaultAppPool"])]})  # fmt: skip
    case("restart-none", "restart 'none': no restart action, a warning about the cache",
         desired(restart="none"), observed(BROKEN),
         {"actions": [CROSS, RM_ROOT_AUTH], "warnings": ["cached chain"]})  # fmt: skip


if __name__ == "__main__":
    main()
