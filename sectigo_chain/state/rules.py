"""Context and certificate rules of :func:`sectigo_chain.state.planner.plan` (pure; see planner.py).

The cross-sign must be present in ``LocalMachine\\CA`` and only there (misplaced copies and
duplicates are removed); the self-signed root must be absent from ``LocalMachine\\Root``,
handled per root strategy; roots from Group Policy/Enterprise are never deleted.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from sectigo_chain.errors import InputError
from sectigo_chain.state.models import (
    BindingSpec,
    CertificateSpec,
    DesiredState,
    ObservedBinding,
    ObservedCertificate,
    ObservedSite,
    ObservedState,
    parse_der_b64,
)
from sectigo_chain.state.plan_models import Action, CertBackup
from sectigo_chain.x509.catalog import Catalog, CatalogEntry
from sectigo_chain.x509.certs import common_name

__all__ = [
    "CHAIN_KINDS",
    "PHASES",
    "Ctx",
    "Leaf",
    "absent",
    "backup_of",
    "inherited_view",
    "present",
]

PHASES = ("import", "misplaced", "policy", "root", "leaf", "binding")
_LOCKED = (".GroupPolicy", ".Enterprise")
CHAIN_KINDS = {"import_cross_sign", "remove_misplaced", "remove_duplicate", "disallow_root",
                "remove_self_signed_root", "remove_expired_intermediate"}  # fmt: skip


# (binding spec, site, its matching https binding, thumbprint to serve, that certificate)
Leaf = tuple[BindingSpec, ObservedSite, ObservedBinding | None, str, x509.Certificate | None]


@dataclass
class Ctx:
    desired: DesiredState
    observed: ObservedState
    at: dt.datetime
    catalog: Catalog
    allow_gpo: bool
    phases: dict[str, list[Action]] = field(default_factory=lambda: {p: [] for p in PHASES})
    noops: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    roots: set[str] = field(default_factory=set)
    # a bound certificate whose root could not be decided (not found, or only guessed)
    undecided: bool = False
    leaves: list[Leaf] = field(default_factory=list)
    rebinds: list[ObservedBinding] = field(default_factory=list)


@functools.lru_cache(maxsize=1024)
def _identify(catalog: Catalog, cert: x509.Certificate) -> CatalogEntry | None:
    """``catalog.identify``, memoised (a catalog does not change; entries are frozen)."""
    return catalog.identify(cert)


def _name(ctx: Ctx, cert: x509.Certificate, fallback: str | None = None) -> str:
    entry = _identify(ctx.catalog, cert)
    return entry.name if entry else (fallback or common_name(cert.subject))


def backup_of(c: ObservedCertificate) -> CertBackup:
    return CertBackup(
        der_b64=c.der_b64,
        thumbprint=c.thumbprint,
        store_location=c.store_location,
        store_name=c.store_name,
        physical_store=c.physical_store,
        friendly_name=c.friendly_name,
        has_private_key=c.has_private_key,
    )


def inherited_view(c: ObservedCertificate) -> bool:
    """A CurrentUser entry that is the machine's certificate seen through the user's logical
    store (every CurrentUser store but My includes the LocalMachine one; observe reports no
    physical store for it): not a copy, and not removable from CurrentUser."""
    return c.store_location == "CurrentUser" and c.physical_store is None and c.store_name != "My"


def _remove(kind: Any, c: ObservedCertificate, reason: str) -> Action:
    return Action(
        kind=kind,
        reason=reason,
        template="remove_certificate",
        params={
            "thumbprint": c.thumbprint,
            "store_location": c.store_location,
            "store_name": c.store_name,
            "physical_store": c.physical_store,
        },
        backup=backup_of(c),
        rollback=f"re-import the backed-up certificate into {c.where}",
    )


def _why_misplaced(c: ObservedCertificate) -> str:
    if c.store_location == "CurrentUser":
        return "SChannel runs as SYSTEM and never reads Current User stores"
    if c.store_name in ("Root", "AuthRoot"):
        return "in Root it becomes a trust anchor and Windows serves the short chain again"
    if c.store_name == "Disallowed":
        return "in Disallowed it distrusts the cross-sign itself"
    return "the Intermediate store is the only place it belongs"


# ---------------------------------------------------------------------------- certificates


def present(ctx: Ctx, spec: CertificateSpec) -> None:
    obs = ctx.observed
    here = obs.find(spec.thumbprint, spec.store_location, spec.store_name)
    cert = parse_der_b64(spec.der_b64) if spec.der_b64 else None
    label = (
        _name(ctx, cert, spec.friendly_name) if cert else (spec.friendly_name or spec.thumbprint)
    )
    if here:
        ctx.noops.append(f"{label} already in {spec.store}")
    elif spec.der_b64 is None:
        raise InputError(f"{label} must be imported but the desired state has no DER for it")
    else:
        ctx.phases["import"].append(
            Action(
                kind="import_cross_sign",
                reason=f"import {label} ({spec.thumbprint}) into {spec.store}: {spec.reason}",
                template="import_certificate",
                params={
                    "der_b64": spec.der_b64,
                    "thumbprint": spec.thumbprint,
                    "store_location": spec.store_location,
                    "store_name": spec.store_name,
                    "friendly_name": spec.friendly_name,
                },
                rollback=f"remove {spec.thumbprint} from {spec.store}",
            )
        )
    if not spec.exclusive:
        return
    misplaced = [c for c in obs.find(spec.thumbprint) if c not in here and not inherited_view(c)]
    for c in misplaced:
        if c.store_location == "SYSTEM" and c.store_name == "CA":
            # SChannel runs as SYSTEM and reads SYSTEM's CA store too: a copy there does what
            # the one in LocalMachine\CA does (issue 19, bug 11).
            ctx.noops.append(
                f"a copy of {label} is also in SYSTEM's CA store, which SChannel reads: left"
            )
            continue
        if c.store_location == "SYSTEM":
            ctx.warnings.append(
                f"a copy of {label} is in SYSTEM's {c.store_name} store (HKU\\S-1-5-18): the "
                "templates cannot change SYSTEM's stores; remove it by hand (PsExec -s certmgr)"
            )
            continue
        if c.physical_store in _LOCKED:
            _locked(ctx, c, label)
            continue
        ctx.phases["misplaced"].append(
            _remove(
                "remove_misplaced",
                c,
                f"remove the copy of {label} from {c.where}: it belongs only in {spec.store} "
                f"({_why_misplaced(c)})",
            )
        )
    if not misplaced:
        ctx.noops.append(f"no misplaced copy of {label} (Root, Current User, My)")
    if cert is None:
        return
    dups = []
    for c in obs.certificates:
        other = c.certificate
        if c.thumbprint == spec.thumbprint or c.store_name != "CA" or other.subject != cert.subject:
            continue
        if inherited_view(c):
            continue
        if other.public_key() != cert.public_key():
            continue
        expired = other.not_valid_after_utc < ctx.at
        selfsigned = other.issuer == other.subject
        name = common_name(other.subject)
        if expired:
            why = "expired"
        elif selfsigned:
            why = "a self-signed root copy in an intermediate store"
        else:
            # Another valid certificate with the same name and key: Windows picks between the
            # two by its own rule (reported: the newer NotBefore wins), so which one is served
            # is not up to this tool; only one belongs there (issue 19, bug 12).
            why = (
                f"another valid {name} issued by {common_name(other.issuer)}, expiring "
                f"{other.not_valid_after_utc:%Y-%m-%d}"
            )
            ctx.warnings.append(
                f"{c.where} holds a second valid {name} ({c.thumbprint}, {why}) beside "
                f"{spec.thumbprint}: Windows chooses between them by its own rule (reported: "
                "the newer NotBefore), so the served chain may use either"
            )
        if c.store_location == "SYSTEM" or c.physical_store in _LOCKED:
            where = (
                "SYSTEM's CA store (HKU\\S-1-5-18): the templates cannot change SYSTEM's stores"
                if c.store_location == "SYSTEM"
                else f"{c.where}, which policy manages"
            )
            ctx.warnings.append(
                f"a duplicate {name} ({c.thumbprint}, {why}) is in {where}; remove it by hand "
                "(PsExec -s certmgr, or at its source)"
            )
            continue
        dups.append(c)
        ctx.phases["misplaced"].append(
            _remove(
                "remove_duplicate",
                c,
                f"remove duplicate {name} ({c.thumbprint}, {why}) from {c.where}: only "
                f"{spec.thumbprint} should be there",
            )
        )
    if not dups:
        ctx.noops.append(f"no duplicate of {label} in an intermediate store")


def _locked(ctx: Ctx, c: ObservedCertificate, label: str) -> None:
    source = "Group Policy" if c.physical_store == ".GroupPolicy" else "Active Directory"
    line = (
        f"{label} ({c.thumbprint}) is in {c.store}'s {c.physical_store} physical store: it "
        f"comes from {source} and cannot be deleted locally (it would come back)"
    )
    if ctx.allow_gpo:
        ctx.warnings.append(line + "; left in place (override given): the short chain stays")
    else:
        ctx.refusals.append(line)


def absent(ctx: Ctx, spec: CertificateSpec) -> None:
    obs = ctx.observed
    strategy = ctx.desired.root_strategy
    cert = parse_der_b64(spec.der_b64) if spec.der_b64 else None
    label = (
        _name(ctx, cert, spec.friendly_name) if cert else (spec.friendly_name or spec.thumbprint)
    )
    copies = obs.find(spec.thumbprint, spec.store_location, spec.store_name)
    if spec.role == "self_signed_root" and spec.store_location == "LocalMachine":
        _root_policy(ctx, spec, label)
    if not copies:
        ctx.noops.append(f"{label} not in {spec.store}")
        return
    if strategy == "keep":
        ctx.warnings.append(
            f"root strategy 'keep': {label} stays in {spec.store}, so Windows keeps serving "
            "the short chain (leaf, issuing CA) for every site under it"
        )
        return
    for c in copies:
        if c.physical_store in _LOCKED:
            _locked(ctx, c, label)
            continue
        ctx.phases["root"].append(
            _remove(
                "remove_self_signed_root",
                c,
                f"remove {label} ({c.thumbprint}, the copy that issued itself) from {c.where}: "
                f"{spec.reason}",
            )
        )
        if (
            strategy == "remove"
            and obs.auto_root_update_on
            and spec.store_location == "LocalMachine"
        ):
            ctx.warnings.append(
                f"Automatic Root Update is on (no DisableRootAutoUpdate policy) and the "
                f"strategy is 'remove': Windows can re-add {label} the next time it builds a "
                "chain (drift); consider --strategy disable_auto_update or remove_and_disallow"
            )


def _root_policy(ctx: Ctx, spec: CertificateSpec, label: str) -> None:
    obs, strategy = ctx.observed, ctx.desired.root_strategy
    if strategy == "remove_and_disallow" and spec.der_b64 is not None:
        if obs.find(spec.thumbprint, "LocalMachine", "Disallowed"):
            ctx.noops.append(f"{label} already in LocalMachine\\Disallowed")
        else:
            ctx.phases["policy"].append(
                Action(
                    kind="disallow_root",
                    reason=(
                        f"put {label} ({spec.thumbprint}) into LocalMachine\\Disallowed so "
                        "Windows never trusts the self-signed copy again (the cross-sign has "
                        "another thumbprint and stays valid)"
                    ),
                    template="disallow_certificate",
                    params={"der_b64": spec.der_b64, "thumbprint": spec.thumbprint},
                    rollback=f"remove {spec.thumbprint} from LocalMachine\\Disallowed",
                )
            )
    if strategy == "disable_auto_update":
        if obs.disable_root_auto_update is True:
            ctx.noops.append("Automatic Root Update already disabled by policy")
        elif not any(a.kind == "disable_root_auto_update" for a in ctx.phases["policy"]):
            ctx.phases["policy"].append(
                Action(
                    kind="disable_root_auto_update",
                    reason=(
                        "set HKLM\\Software\\Policies\\Microsoft\\SystemCertificates\\AuthRoot"
                        "\\DisableRootAutoUpdate=1 so Windows Update cannot re-add the removed "
                        "root (this also stops new roots arriving automatically)"
                    ),
                    template="set_root_auto_update",
                    params={"disabled": True},
                    previous_value=obs.disable_root_auto_update,
                    rollback=f"restore DisableRootAutoUpdate to {obs.disable_root_auto_update}",
                )
            )
