"""Named scenarios for the simulated host (``sim://NAME`` targets).

Every scenario uses the lab hierarchy from :mod:`sectigo_chain.testing.lab` (real keys, so a TLS
listener can serve the modelled chain). The base host: Windows Server 2019 (build 17763), IIS
with ``Default Web Site`` (http ``*:80``, https ``*:443`` without SNI, app pool
``DefaultAppPool``), USERTrust RSA/ECC and AAA in ``LocalMachine\\Root`` (``.AuthRoot``), the
issuing CA (CA DV R36 or E36) in ``LocalMachine\\CA``, the leaf with a machine key in
``LocalMachine\\My``, no ``DisableRootAutoUpdate`` policy, Windows Update unreachable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.sim.model import HostModel, SimBinding, SimSite, SslCertEntry
from sectigo_chain.testing.lab import Family, LabHierarchy, LabLeaf, make_certificate, new_key
from sectigo_chain.x509.certs import common_name, thumbprint

__all__ = ["SCENARIOS", "Scenario", "build_scenario", "scenario_leaf"]

_LEAVES: dict[tuple[int, str, tuple[str, ...]], LabLeaf] = {}


def scenario_leaf(
    lab: LabHierarchy, family: Family = "RSA", names: tuple[str, ...] = ("www.example.test",)
) -> LabLeaf:
    """The leaf a scenario binds (one per lab, family and names: keys are expensive)."""
    key = (id(lab), family, names)
    if key not in _LEAVES:
        _LEAVES[key] = lab.issue_leaf(list(names), family=family)
    return _LEAVES[key]


@dataclass(frozen=True)
class Scenario:
    """A named starting state for a simulated host."""

    name: str
    description: str
    build: Callable[[LabHierarchy], HostModel]
    family: Family = "RSA"


def _base(
    lab: LabHierarchy,
    family: Family,
    *,
    names: tuple[str, ...] = ("www.example.test",),
    self_signed_physical: str | None = ".AuthRoot",
    cross_in_ca: bool = False,
) -> HostModel:
    host = HostModel()
    for ca in (lab.usertrust_rsa, lab.usertrust_ecc, lab.aaa):
        host.add("LocalMachine", "Root", ca.cert, ".AuthRoot", friendly_name=_cn(ca.cert))
    for root in (lab.r46_root, lab.e46_root, lab.usertrust_rsa, lab.usertrust_ecc, lab.aaa):
        host.ctl[thumbprint(root.cert)] = root.cert
    issuing = lab.issuing_ca(family)
    host.add("LocalMachine", "CA", issuing.cert, friendly_name=_cn(issuing.cert))
    if self_signed_physical is not None:
        ss = lab.self_signed_root(family).cert
        host.add("LocalMachine", "Root", ss, self_signed_physical, friendly_name=_cn(ss))
    if cross_in_ca:
        host.add("LocalMachine", "CA", lab.cross(family))
    leaf = scenario_leaf(lab, family, names)
    host.add(
        "LocalMachine",
        "My",
        leaf.cert,
        friendly_name=names[0],
        key=leaf.key,
        key_storage="machine",
        key_exportable=False,
    )
    host.app_pools["DefaultAppPool"] = "Started"
    host.sites["Default Web Site"] = SimSite(
        "Default Web Site",
        1,
        bindings=[SimBinding("http", "*", 80, ""), SimBinding("https", "*", 443, "")],
    )
    host.sslcert["0.0.0.0:443"] = SslCertEntry("0.0.0.0:443", "ipport", thumbprint(leaf.cert))
    return host


def _cn(cert: x509.Certificate) -> str:
    return common_name(cert.subject)


def _misplaced(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA")
    host.add("CurrentUser", "CA", lab.r46_cross)
    host.add("LocalMachine", "Root", lab.r46_cross)
    return host


def _gpo_root(lab: LabHierarchy) -> HostModel:
    return _base(lab, "RSA", self_signed_physical=".GroupPolicy")


def _drift(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA")
    host.windows_update_reachable = True
    return host


def _shared_ip(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA", names=("www.example.test", "shop.example.test"))
    host.app_pools["ShopAppPool"] = "Started"
    host.sites["Shop"] = SimSite(
        "Shop",
        2,
        app_pool="ShopAppPool",
        bindings=[SimBinding("http", "*", 8080, ""), SimBinding("https", "*", 443, "")],
    )
    return host


def _user_key(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA")
    leaf = scenario_leaf(lab, "RSA")
    sc = host.discard(("LocalMachine", "My", ".Default"), thumbprint(leaf.cert))
    assert sc is not None
    host.add(
        "CurrentUser",
        "My",
        leaf.cert,
        friendly_name=sc.friendly_name,
        key=leaf.key,
        key_storage="user",
        key_exportable=True,
    )
    return host


def _stale_cache(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA", self_signed_physical=None, cross_in_ca=True)
    leaf = scenario_leaf(lab, "RSA")
    host.served_cache["0.0.0.0:443"] = [leaf.cert, leaf.issuer.cert]
    return host


_EXTRA: dict[tuple[int, str], x509.Certificate] = {}


def _twin(lab: LabHierarchy, what: str) -> x509.Certificate:
    """Issue-17 certificates, made once per lab, dated from the wall clock like the leaf.

    ``r46-cross-newer``: R46 (same name and key) cross-signed again by USERTrust RSA, issued two
    days ago (newer NotBefore than the 2021 cross-sign), valid 400 days. ``r36-expiring``: CA DV
    R36 (same name and key) re-issued by R46 yesterday, expiring in 10 days. ``old-expired``:
    an unrelated intermediate under USERTrust RSA that expired 5 days ago.
    """
    key = (id(lab), what)
    if key not in _EXTRA:
        now = dt.datetime.now(dt.timezone.utc)
        day = dt.timedelta(days=1)
        if what == "r46-cross-newer":
            cert = make_certificate(
                subject=lab.r46_root.cert.subject, public_key=lab.r46_root.key.public_key(),
                issuer=lab.usertrust_rsa.cert.subject, issuer_key=lab.usertrust_rsa.key,
                not_before=now - 2 * day, not_after=now + 400 * day, ca=True,
            )  # fmt: skip
        elif what == "r36-expiring":
            cert = make_certificate(
                subject=lab.r36.cert.subject, public_key=lab.r36.key.public_key(),
                issuer=lab.r46_root.cert.subject, issuer_key=lab.r46_root.key,
                not_before=now - day, not_after=now + 10 * day, ca=True, path_length=0,
            )  # fmt: skip
        else:
            name = x509.Name.from_rfc4514_string(
                "CN=Sectigo RSA Domain Validation Secure Server CA (lab),O=Sectigo Limited,C=GB"
            )
            cert = make_certificate(
                subject=name, public_key=new_key("RSA").public_key(),
                issuer=lab.usertrust_rsa.cert.subject, issuer_key=lab.usertrust_rsa.key,
                not_before=now - 400 * day, not_after=now - 5 * day, ca=True, path_length=0,
            )  # fmt: skip
        _EXTRA[key] = cert
    return _EXTRA[key]


def _competing_cross(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA", self_signed_physical=None, cross_in_ca=True)
    host.add("SYSTEM", "CA", _twin(lab, "r46-cross-newer"))
    return host


def _expiring_intermediate(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA", self_signed_physical=None, cross_in_ca=True)
    host.add("LocalMachine", "CA", _twin(lab, "r36-expiring"))
    host.add("LocalMachine", "CA", _twin(lab, "old-expired"))
    host.add("SYSTEM", "CA", _twin(lab, "old-expired"))
    return host


def _multi_binding(lab: LabHierarchy) -> HostModel:
    names = ("www.example.test", "shop.example.test")
    host = _base(lab, "RSA", names=names, self_signed_physical=None, cross_in_ca=True)
    leaf = scenario_leaf(lab, "RSA", names)
    site = host.sites["Default Web Site"]
    site.bindings += [
        SimBinding("https", "*", 443, "shop.example.test", 1),
        SimBinding("https", "*", 8443, "ccs.example.test", 3),
    ]
    tp = thumbprint(leaf.cert)
    shop = "shop.example.test:443"
    host.sslcert[shop] = SslCertEntry(shop, "hostnameport", tp)
    host.sslcert["ccs:8443"] = SslCertEntry("ccs:8443", "ccs", "")
    # only the SNI entry still serves the chain it cached before the fix (leaf, R36)
    host.served_cache[shop] = [leaf.cert, leaf.issuer.cert]
    return host


CCS_LAB_PASSWORD = "ccs-lab-pfx"  # noqa: S105 (the lab PFX's password: lab data)
CCS_LOCATION = "\\\\files01\\ccs"


def _ccs_pfx(lab: LabHierarchy) -> HostModel:
    host = _base(lab, "RSA", self_signed_physical=None, cross_in_ca=True)
    leaf = scenario_leaf(lab, "RSA", ("ccs.example.test",))
    site = host.sites["Default Web Site"]
    site.bindings.append(SimBinding("https", "*", 8443, "ccs.example.test", 3))
    host.sslcert["ccs:8443"] = SslCertEntry("ccs:8443", "ccs", "")
    host.ccs_enabled = True
    host.ccs_location = CCS_LOCATION
    host.ccs_key_password = CCS_LAB_PASSWORD
    # what win-acme wrote before #1347 was fixed: the certificate and its key, no chain
    host.ccs_files["ccs.example.test.pfx"] = leaf.pfx(CCS_LAB_PASSWORD)
    return host


_ALL = (
    Scenario(
        "broken-r46",
        "RSA leaf bound to 'Default Web Site' (*:443, no SNI); self-signed R46 in "
        "LocalMachine\\Root (.AuthRoot); no R46 cross-sign in LocalMachine\\CA: IIS serves "
        "leaf + R36 only",
        lambda lab: _base(lab, "RSA"),
    ),
    Scenario(
        "broken-e46",
        "ECC leaf bound to 'Default Web Site'; self-signed E46 in LocalMachine\\Root; no E46 "
        "cross-sign in LocalMachine\\CA",
        lambda lab: _base(lab, "ECC"),
        "ECC",
    ),
    Scenario(
        "fixed",
        "already right: R46 cross-sign in LocalMachine\\CA, no self-signed R46 in Root",
        lambda lab: _base(lab, "RSA", self_signed_physical=None, cross_in_ca=True),
    ),
    Scenario(
        "misplaced",
        "the R46 cross-sign was imported into CurrentUser\\CA and LocalMachine\\Root instead "
        "of LocalMachine\\CA; the self-signed R46 is still in Root",
        _misplaced,
    ),
    Scenario(
        "gpo-root",
        "the self-signed R46 lives in Root's .GroupPolicy physical store (pushed by a GPO): "
        "it cannot be deleted locally",
        _gpo_root,
    ),
    Scenario(
        "drift",
        "like broken-r46, but Automatic Root Update is on and Windows Update is reachable: a "
        "removed R46 comes back the next time a chain is built",
        _drift,
    ),
    Scenario(
        "shared-ip",
        "like broken-r46, plus a second site 'Shop' whose non-SNI binding shares *:443 (one "
        "HTTP.sys certificate for both)",
        _shared_ip,
    ),
    Scenario(
        "user-key",
        "like broken-r46, but the bound leaf and its key sit only in CurrentUser\\My (user key "
        "set): binding fails with 0x80070520 until it is moved to LocalMachine\\My",
        _user_key,
    ),
    Scenario(
        "stale-cache",
        "stores already fixed, but HTTP.sys still serves the cached short chain until a "
        "restart (iisreset) refreshes it",
        _stale_cache,
    ),
    Scenario(
        "multi-binding",
        "stores fixed; 'Default Web Site' has an IP binding (*:443, no SNI), an SNI binding "
        "(shop.example.test:443) and a Central Certificate Store binding "
        "(ccs.example.test:8443, sslFlags 3, the share not modelled); only the SNI entry "
        "still serves its cached short chain",
        _multi_binding,
    ),
    Scenario(
        "competing-cross",
        "stores fixed, but SYSTEM's CA store also holds a second R46 cross-signed by USERTrust "
        "RSA with a newer NotBefore: the same path length, so only the tie rule decides which "
        "one Windows serves (the templates cannot remove it from SYSTEM's store)",
        _competing_cross,
    ),
    Scenario(
        "expiring-intermediate",
        "stores fixed, plus a re-issued CA DV R36 (newer NotBefore, expiring in 10 days) in "
        "LocalMachine\\CA, which Windows serves until it expires, and an expired old "
        "intermediate in LocalMachine\\CA and in SYSTEM's CA store",
        _expiring_intermediate,
    ),
    Scenario(
        "ccs-pfx",
        "stores fixed; 'Default Web Site' also has a Central Certificate Store binding "
        "(ccs.example.test:8443, sslFlags 3); the CCS share \\\\files01\\ccs holds "
        "ccs.example.test.pfx with the certificate and its key but no intermediate (win-acme "
        f"#1347; password {CCS_LAB_PASSWORD!r})",
        _ccs_pfx,
    ),
)

_BY_NAME = {s.name: s for s in _ALL}
SCENARIOS: dict[str, str] = {s.name: s.description for s in _ALL}


def build_scenario(name: str, lab: LabHierarchy) -> tuple[Scenario, HostModel]:
    """The scenario and a fresh host model for it; :class:`InputError` for an unknown name."""
    try:
        scenario = _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME))
        raise InputError(f"unknown simulated scenario {name!r}; known: {known}") from None
    return scenario, scenario.build(lab)
