"""Lifecycle rules of :func:`sectigo_chain.state.planner.plan` (pure; issue 17).

* Stale intermediates: a certificate in ``LocalMachine\\CA`` or SYSTEM's CA store that has
  expired, or expires within ``expiring_within_days``, is planned for removal (backed up) with
  its reason; one that a bound certificate still needs (no other trusted path without it) is
  only warned about, and SYSTEM's store is reported for removal by hand (the templates cannot
  write it; issue 19).
* The tie-break trap: with the stores as the plan leaves them (and as they are now), every path
  of the chosen length that only :data:`~sectigo_chain.x509.paths.WINDOWS_TIE_RULE` keeps out
  (or lets in), and the path that takes over when a certificate on the chosen one expires, is
  a warning.
* Revert dates: every distrust action (removing or disallowing the self-signed root, disabling
  Automatic Root Update) carries the date the fix is due for review: the earlier of the
  cross-sign's and the old clients' anchor's notAfter (after either, the long chain no longer
  serves old clients and the self-signed root may be wanted in Root again).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from sectigo_chain.state.models import ObservedCertificate, parse_der_b64
from sectigo_chain.state.plan_models import Action
from sectigo_chain.state.rules import Ctx, backup_of, inherited_view
from sectigo_chain.x509.catalog import Catalog
from sectigo_chain.x509.certs import common_name
from sectigo_chain.x509.certs import thumbprint as _tp
from sectigo_chain.x509.paths import Competitor, competing_paths, predict_windows_chain

__all__ = [
    "DISTRUST_KINDS",
    "EXPIRING_WITHIN_DAYS",
    "competition_warnings",
    "stale_intermediates",
    "with_revert_date",
]

#: Default horizon of :func:`stale_intermediates` (``plan(..., expiring_within_days=...)``).
EXPIRING_WITHIN_DAYS = 30
DISTRUST_KINDS = ("remove_self_signed_root", "disallow_root", "disable_root_auto_update")
_LOCKED = (".GroupPolicy", ".Enterprise")
_Where = tuple[str, str, str, str | None]  # thumbprint, location, store, physical store


@dataclass
class _Stores:
    root: list[x509.Certificate]
    ca: list[x509.Certificate]
    my: list[x509.Certificate]
    disallowed: list[x509.Certificate]

    def without(self, cert: x509.Certificate) -> _Stores:
        return _Stores(
            [c for c in self.root if c != cert],
            [c for c in self.ca if c != cert],
            [c for c in self.my if c != cert],
            self.disallowed,
        )


def _where(c: ObservedCertificate) -> _Where:
    return (c.thumbprint, c.store_location, c.store_name, c.physical_store)


def _removed(actions: list[Action]) -> set[_Where]:
    out: set[_Where] = set()
    for a in actions:
        if a.template == "remove_certificate":
            p = a.params
            out.add((p["thumbprint"], p["store_location"], p["store_name"], p["physical_store"]))
    return out


def _stores(ctx: Ctx, after_plan: bool) -> _Stores:
    """The stores SChannel (SYSTEM) builds from: now, or as the plan's actions leave them."""
    actions = [a for phase in ctx.phases.values() for a in phase] if after_plan else []
    gone = _removed(actions)
    kept = [c for c in ctx.observed.certificates if _where(c) not in gone]

    def pick(names: tuple[str, ...], locations: tuple[str, ...]) -> list[x509.Certificate]:
        out: list[x509.Certificate] = []
        for c in kept:
            if c.store_name in names and c.store_location in locations:
                cert = c.certificate
                if cert not in out:
                    out.append(cert)
        return out

    machine = ("LocalMachine", "SYSTEM")
    stores = _Stores(
        pick(("Root", "AuthRoot"), machine),
        pick(("CA",), machine),
        pick(("My", "WebHosting"), ("LocalMachine",)),
        pick(("Disallowed",), ("LocalMachine",)),
    )
    for a in actions:
        if a.template in ("import_certificate", "disallow_certificate") and a.params.get("der_b64"):
            cert = parse_der_b64(a.params["der_b64"])
            if a.template == "disallow_certificate":
                stores.disallowed.append(cert)
            elif a.params.get("store_name") == "CA" and cert not in stores.ca:
                stores.ca.append(cert)
    return stores


def _leaves(ctx: Ctx) -> list[tuple[str, x509.Certificate]]:
    out: dict[str, tuple[str, x509.Certificate]] = {}
    for _spec, site, _binding, tp, leaf in ctx.leaves:
        if leaf is not None and tp not in out:
            out[tp] = (f"{common_name(leaf.subject)} ({site.name!r})", leaf)
    return list(out.values())


def _bound(ctx: Ctx) -> list[tuple[str, x509.Certificate]]:
    """Every certificate bound on the host (any site, not only the ones being fixed), and the
    ones being bound: a soon-expiring intermediate another site still needs must stay."""
    out = {_tp(leaf): (who, leaf) for who, leaf in _leaves(ctx)}
    for site in ctx.observed.sites:
        for b in site.bindings:
            tp = (b.certificate_hash or "").upper()
            if b.protocol.lower() != "https" or not tp or tp in out:
                continue
            copies = ctx.observed.find(tp, "LocalMachine")
            if copies:
                cert = copies[0].certificate
                out[tp] = (f"{common_name(cert.subject)} ({site.name!r})", cert)
    return list(out.values())


def _trusted(leaf: x509.Certificate, s: _Stores, at: dt.datetime) -> bool:
    return predict_windows_chain(
        leaf, root=s.root, ca=s.ca, my=s.my, at=at, disallowed=s.disallowed
    ).trusted


# ---------------------------------------------------------------------------- stale


def stale_intermediates(ctx: Ctx, days: int) -> None:
    """Plan the removal of expired or soon-expiring intermediates (see the module docstring)."""
    at = ctx.at
    horizon = at + dt.timedelta(days=days)
    wanted = {s.thumbprint for s in ctx.desired.certificates if s.ensure == "present"}
    planned = _removed([a for phase in ctx.phases.values() for a in phase])
    found = []
    for c in ctx.observed.certificates:
        if c.store_name != "CA" or c.store_location not in ("LocalMachine", "SYSTEM"):
            continue
        if inherited_view(c) or _where(c) in planned:
            continue
        cert = c.certificate
        if cert.subject == cert.issuer:
            continue  # a self-signed root in CA is another rule's business
        if cert.not_valid_after_utc > horizon:
            continue
        found.append(c)
    if not found:
        ctx.noops.append(
            f"no intermediate in LocalMachine\\CA or SYSTEM's CA store expired or expiring "
            f"within {days} days"
        )
        return
    now = _stores(ctx, after_plan=True)
    for c in found:
        cert = c.certificate
        name = common_name(cert.subject)
        end = f"{cert.not_valid_after_utc:%Y-%m-%d}"
        expired = cert.not_valid_after_utc <= at
        what = f"expired on {end}" if expired else f"expires on {end} (within {days} days)"
        label = f"{name} ({c.thumbprint}, issued by {common_name(cert.issuer)}, {what})"
        if c.thumbprint in wanted:
            ctx.warnings.append(
                f"the certificate this fix installs, {label}, is in {c.where}: get its "
                "successor before then"
            )
            continue
        if not expired:
            stuck = [
                who
                for who, leaf in _bound(ctx)
                if _trusted(leaf, now, at) and not _trusted(leaf, now.without(cert), at)
            ]
            if stuck:
                ctx.warnings.append(
                    f"{label} in {c.where} is the only trusted path for {', '.join(stuck)}: "
                    f"not removed; replace it (or the certificate) before {end}"
                )
                continue
        why = (
            "Windows never builds with an expired certificate, and a stale copy beside a "
            "valid one is what operators find serving the wrong chain (win-acme #1162)"
            if expired
            else "when it expires Windows switches to another path on its own; removing it "
            "now makes that switch happen under this plan's verify, not on that day"
        )
        if c.store_location == "SYSTEM" or c.physical_store in _LOCKED:
            where = (
                "SYSTEM's CA store (HKU\\S-1-5-18): the templates cannot change SYSTEM's stores"
                if c.store_location == "SYSTEM"
                else f"{c.where}, which policy manages"
            )
            ctx.warnings.append(
                f"{label} is in {where}; remove it by hand (PsExec -s certmgr.msc, or at its "
                f"source): {why}"
            )
            continue
        ctx.phases["misplaced"].append(
            Action(
                kind="remove_expired_intermediate",
                reason=f"remove {label} from {c.where}: {why}",
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
        )


# ---------------------------------------------------------------------------- tie-break trap


def _key(comp: Competitor) -> tuple[str, tuple[x509.Certificate, ...]]:
    return comp.kind, comp.differing


def competition_warnings(ctx: Ctx) -> None:
    """Warn about paths that win, or will win, on the tie rule (see the module docstring)."""
    before = _stores(ctx, after_plan=False)
    touching = ("remove_certificate", "import_certificate", "disallow_certificate")
    changes = any(a.template in touching for phase in ctx.phases.values() for a in phase)
    after = _stores(ctx, after_plan=True) if changes else before
    wanted = {s.thumbprint for s in ctx.desired.certificates if s.role == "cross_sign"}
    rule = (
        "Windows breaks ties between paths of equal length by its own rule (reported by users, "
        "not documented by Microsoft: the certificates issued last, newer NotBefore, win)"
    )
    for who, leaf in _leaves(ctx):
        comps: dict[tuple[str, tuple[x509.Certificate, ...]], tuple[Competitor, str]] = {}
        for stores, when in ((after, "after this plan"), (before, "now")):
            for comp in competing_paths(
                leaf,
                root=stores.root,
                ca=stores.ca,
                my=stores.my,
                at=ctx.at,
                disallowed=stores.disallowed,
            ):
                comps.setdefault(_key(comp), (comp, when))
        for comp, when in comps.values():
            ours = _describe(c for c in comp.chosen.certificates if c not in comp.path.certificates)
            theirs = _describe(comp.differing)
            text = f"tie-break trap for {who} ({when}): Windows builds through {ours}; "
            if comp.kind == "tie":
                text += (
                    f"a path of the same length through {theirs} competes and only the tie rule "
                    f"decides: {rule}"
                )
                if any(_tp(c) in wanted for c in comp.path.certificates) and not any(
                    _tp(c) in wanted for c in comp.chosen.certificates
                ):
                    text += "; the path through the cross-sign this fix installs loses"
                text += "; remove the certificate that should not be used"
            else:
                assert comp.expiring is not None
                text += (
                    f"when {_describe([comp.expiring])} expires on "
                    f"{comp.expiring.not_valid_after_utc:%Y-%m-%d}, Windows switches on its own "
                    f"to the path through {theirs}"
                )
            if when == "now":
                text += "; this plan removes what makes it compete"
            ctx.warnings.append(text)


def _describe(certs: Iterable[x509.Certificate]) -> str:
    return ", ".join(
        f"{common_name(c.subject)} (issued {c.not_valid_before_utc:%Y-%m-%d} by "
        f"{common_name(c.issuer)}, {_tp(c)})"
        for c in certs
    )


# ---------------------------------------------------------------------------- revert dates


@functools.lru_cache(maxsize=64)
def _revert_for(ders: tuple[str, ...], catalog: Catalog) -> tuple[dt.date, str]:
    """(review date, reason) for distrust actions that keep these cross-signs useful; memoised
    (a catalog does not change; a fleet asks the same question for every host)."""
    limits: list[tuple[dt.datetime, str]] = []
    for der in ders:
        cross = parse_der_b64(der)
        name = f"{common_name(cross.subject)} cross-signed by {common_name(cross.issuer)}"
        limits.append((cross.not_valid_after_utc, f"the cross-sign {name} expires"))
        anchor = next(
            (
                c
                for c in catalog.certificates()
                if c.subject == cross.issuer and c.subject == c.issuer
            ),
            None,
        )
        if anchor is not None:
            limits.append(
                (
                    anchor.not_valid_after_utc,
                    f"the old clients' anchor {common_name(anchor.subject)} expires",
                )
            )
    when, what = min(limits, key=lambda item: item[0])
    reason = (
        f"review by {when:%Y-%m-%d}: {what} then; after that the long chain no longer serves old "
        "clients, so revert this (sectigo-chain rollback JOURNAL) or plan again"
    )
    return when.date(), reason


def with_revert_date(ctx: Ctx, action: Action) -> Action:
    """``action`` with its review date when it is a distrust action (else unchanged)."""
    if action.kind not in DISTRUST_KINDS:
        return action
    ders = tuple(
        s.der_b64
        for s in ctx.desired.certificates
        if s.role == "cross_sign"
        and s.der_b64
        and (s.when_root is None or s.when_root in ctx.roots)
    )
    if not ders:
        return action
    when, reason = _revert_for(ders, ctx.catalog)
    return action.model_copy(update={"revert_after": when, "revert_reason": reason})
