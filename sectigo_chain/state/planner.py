"""``plan(desired, observed) -> Plan``: pure, every action and every no-op has a reason.

Order of actions: import the cross-sign -> remove misplaced copies and duplicates -> policy
(disallow, Automatic Root Update) -> remove the self-signed root -> import the PFX / move the
leaf -> binding -> restart. A root that Group Policy or Active Directory pushed
(``.GroupPolicy``/``.Enterprise``) is never deleted: the plan raises
:class:`~sectigo_chain.errors.PlanRefused` with guidance, unless
``allow_group_policy_override`` (then it plans the rest and warns).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Literal

from cryptography import x509
from pydantic import SecretStr

from sectigo_chain.errors import InputError, PlanRefused
from sectigo_chain.state.models import (
    FIRST_AES_PFX_BUILD,
    BindingSpec,
    DesiredState,
    ObservedBinding,
    ObservedSite,
    ObservedState,
    parse_der_b64,
)
from sectigo_chain.state.plan_models import Action, BindingRecord, Plan
from sectigo_chain.state.rules import CHAIN_KINDS, PHASES, Ctx, absent, backup_of, present
from sectigo_chain.x509.catalog import Catalog, CrossSignAnswer, cross_sign_for, default_catalog
from sectigo_chain.x509.certs import common_name

__all__ = ["plan"]

# ---------------------------------------------------------------------------- resolution


@functools.lru_cache(maxsize=512)
def _cross_sign(chain: tuple[x509.Certificate, ...], catalog: Catalog) -> CrossSignAnswer:
    """:func:`cross_sign_for`, memoised: it is pure, certificates hash and compare by their
    DER, a catalog does not change after it is built (keyed by identity), the answer is frozen.
    A fleet's hosts ask it the same questions (twice each: plan, then verify's re-plan)."""
    return cross_sign_for(chain, catalog)


def _resolve_leaves(ctx: Ctx) -> None:
    obs = ctx.observed
    for spec in ctx.desired.bindings:
        site = obs.site(spec.site)
        if site is None:
            known = ", ".join(s.name for s in obs.sites) or "none"
            raise InputError(f"site {spec.site!r} not found on the host (sites: {known})")
        https = [b for b in site.bindings if b.protocol.lower() == "https"]
        exact = [b for b in https if (b.ip, b.port, b.host) == (spec.ip, spec.port, spec.host)]
        binding = exact[0] if exact else (https[0] if https and spec.thumbprint is None else None)
        tp = spec.thumbprint or (binding.certificate_hash if binding else None)
        if tp is None:
            raise InputError(
                f"site {site.name!r} has no https binding with a certificate: pass the PFX to "
                "import and bind (--pfx)"
            )
        tp = tp.upper()
        leaf = parse_der_b64(spec.leaf_der_b64) if spec.leaf_der_b64 else None
        if leaf is None:
            copies = obs.find(tp)
            leaf = copies[0].certificate if copies else None
        if leaf is None:
            ctx.warnings.append(
                f"the certificate bound to {site.name!r} ({tp}) is in no store the host "
                "reported: fix the binding first (sectigo-chain plan --pfx ...)"
            )
        else:
            pool = [c.certificate for c in obs.certificates if c.store_name in ("CA", "Root")]
            answer = _cross_sign((leaf, *pool), ctx.catalog)
            if answer.root is not None:
                ctx.roots.add(answer.root)
            else:
                ctx.warnings.append(f"certificate {tp} of {site.name!r}: {answer.explanation}")
        ctx.leaves.append((spec, site, binding, tp, leaf))


# ---------------------------------------------------------------------------- leaf + binding


def _leaf_and_binding(ctx: Ctx, aes_ok: bool) -> None:
    obs = ctx.observed
    for spec, site, binding, tp, leaf in ctx.leaves:
        label = f"{common_name(leaf.subject)} ({tp})" if leaf else tp
        in_lm = [
            c
            for c in obs.find(tp, "LocalMachine", spec.store_name)
            if c.has_private_key and c.key_storage != "user"
        ]
        if in_lm:
            ctx.noops.append(
                f"{label} already in LocalMachine\\{spec.store_name} with a machine key"
            )
        elif spec.pfx is not None and spec.pfx_password is not None:
            use_legacy = not aes_ok and spec.pfx_protection in ("aes", "mixed", "unknown")
            pfx = spec.legacy_pfx if use_legacy and spec.legacy_pfx else spec.pfx
            note = (
                f" (re-encoded with 3DES/SHA-1: build {obs.os.build} cannot import AES PFX files)"
                if use_legacy
                else ""
            )
            ctx.phases["leaf"].append(
                Action(
                    kind="import_pfx",
                    reason=(
                        f"import the PFX {label} into LocalMachine\\{spec.store_name} with the "
                        f"machine key set{note}"
                    ),
                    template="import_pfx",
                    params={
                        "thumbprint": tp,
                        "store_name": spec.store_name,
                        "exportable": False,
                        "friendly_name": common_name(leaf.subject) if leaf else None,
                    },
                    secret_params={
                        "pfx_b64": SecretStr(_b64(pfx.get_secret_value() if pfx else b"")),
                        "password": spec.pfx_password,
                    },
                    rollback=f"remove {tp} and its key from LocalMachine\\{spec.store_name}",
                )
            )
        else:
            user = [c for c in obs.find(tp, "CurrentUser", "My") if c.has_private_key]
            if user:
                ctx.phases["leaf"].append(
                    Action(
                        kind="move_leaf",
                        reason=(
                            f"{label} and its private key sit only in CurrentUser\\My: SChannel "
                            "cannot use a user key (binding error 0x80070520); move it into "
                            "LocalMachine\\My with its key, in memory on the host (no file)"
                        ),
                        template="move_certificate",
                        params={
                            "thumbprint": tp,
                            "from_location": "CurrentUser",
                            "from_store": "My",
                            "to_location": "LocalMachine",
                            "to_store": spec.store_name,
                            "remove_source": True,
                        },
                        backup=backup_of(user[0]),
                        rollback="move it back into CurrentUser\\My",
                    )
                )
            elif leaf is not None:
                ctx.warnings.append(
                    f"{label} has no private key in LocalMachine\\{spec.store_name} or "
                    "CurrentUser\\My: re-import it from a PFX (--pfx)"
                )
        _binding(ctx, spec, site, binding, tp)


def _binding(
    ctx: Ctx, spec: BindingSpec, site: ObservedSite, b: ObservedBinding | None, tp: str
) -> None:
    where = f"{site.name!r} https {_ep(spec.ip, spec.port, spec.host)}"
    same_cert = b is not None and (b.certificate_hash or "").upper() == tp
    if b is not None and same_cert and (spec.thumbprint is None or b.sni == spec.sni):
        ctx.noops.append(
            f"binding {site.name!r} https {_ep(b.ip, b.port, b.host)} already uses "
            f"thumbprint {tp}: not rebinding"
        )
        return
    flag_set, flag_clear = (1, 0) if spec.sni else (0, 1)
    prev = None
    if b is not None:
        prev = BindingRecord(site=site.name, **b.model_dump())
    ctx.rebinds.append(b or ObservedBinding(protocol="https", ip=spec.ip, port=spec.port,
                                            host=spec.host, ssl_flags=flag_set))  # fmt: skip
    was = f"replacing {b.certificate_hash}" if b and b.certificate_hash else "new binding"
    ctx.phases["binding"].append(
        Action(
            kind="set_binding",
            reason=f"bind {tp} to {where} (SNI {'on' if spec.sni else 'off'}; {was})",
            template="set_binding",
            params={
                "site": site.name,
                "ip": spec.ip,
                "port": spec.port,
                "host": spec.host,
                "thumbprint": tp,
                "store_name": spec.store_name,
                "ssl_flags_set": flag_set,
                "ssl_flags_clear": flag_clear,
            },
            previous_binding=prev,
            rollback="restore the previous binding" if prev else "remove the new binding",
        )
    )


def _ep(ip: str, port: int, host: str) -> str:
    return f"{ip}:{port}" + (f" (host {host})" if host else "")


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------- warnings


def _site_warnings(ctx: Ctx, actions: list[Action]) -> tuple[str, ...]:
    obs = ctx.observed
    affected: list[str] = []
    if any(a.kind in CHAIN_KINDS for a in actions) and ctx.roots:
        pool = [c.certificate for c in obs.certificates if c.store_name in ("CA", "Root")]
        for s in obs.sites:
            for b in s.bindings:
                copies = obs.find(b.certificate_hash) if b.certificate_hash else []
                if not copies:
                    continue
                ans = _cross_sign((copies[0].certificate, *pool), ctx.catalog)
                if ans.root in ctx.roots and s.name not in affected:
                    affected.append(s.name)
        if affected:
            roots = "/".join(sorted(ctx.roots))
            ctx.warnings.insert(
                0,
                f"the served chain changes for every site whose certificate chains to {roots} "
                f"(one chain per issuing CA for the whole machine): {', '.join(affected)}",
            )
    if actions:
        for _spec, site, bound, _tp, _leaf in ctx.leaves:
            mine = bound or next(iter(ctx.rebinds), None)
            if mine is None or mine.sni:
                continue
            others = sorted(
                {s.name for s in obs.sites for ob in s.bindings
                 if s.name != site.name and ob.protocol == "https" and not ob.sni
                 and ob.ip_port == mine.ip_port}
            )  # fmt: skip
            if others:
                what = (
                    "rebinding changes the certificate of all of them"
                    if ctx.rebinds
                    else "they all serve the same certificate and chain"
                )
                ctx.warnings.append(
                    f"the non-SNI binding {mine.ip_port} of {site.name!r} shares its IP:port "
                    f"with {', '.join(others)}: HTTP.sys holds one certificate per IP:port, so "
                    f"{what}"
                )
    return tuple(affected)


# ---------------------------------------------------------------------------- entry point


def plan(
    desired: DesiredState,
    observed: ObservedState,
    *,
    at: dt.datetime,
    catalog: Catalog | None = None,
    allow_group_policy_override: bool = False,
    target: str = "",
) -> Plan:
    """Compare ``desired`` with ``observed`` and list the actions that close the gap."""
    ctx = Ctx(desired, observed, at, catalog or default_catalog(), allow_group_policy_override)
    _resolve_leaves(ctx)
    if any(s.when_root for s in desired.certificates) and not ctx.roots:
        ctx.warnings.append("could not tell which root the bound certificate chains to")
    for spec in desired.certificates:
        if spec.when_root is not None and spec.when_root not in ctx.roots:
            continue
        (present if spec.ensure == "present" else absent)(ctx, spec)
    _leaf_and_binding(ctx, observed.os.build == 0 or observed.os.build >= FIRST_AES_PFX_BUILD)
    if ctx.refusals:
        raise PlanRefused(
            "refusing to plan: a root pushed by Group Policy or Active Directory cannot be "
            "removed locally",
            guidance=[*ctx.refusals, *_GPO_GUIDANCE],
        )
    actions = [a for p in PHASES for a in ctx.phases[p]]
    if actions and desired.restart != "none":
        actions.append(_restart(ctx))
    elif actions:
        ctx.warnings.append(
            "restart 'none': IIS may keep serving the cached chain until it restarts"
        )
    else:
        refresh = _refresh_stale_served(ctx)
        if refresh is not None:
            actions.append(refresh)
        else:
            ctx.noops.append("nothing changed: no restart needed")
    ctx.warnings += [
        f"the chain site {s.site!r} serves could not be observed ({s.endpoint or 'no endpoint'}: "
        f"{s.error}); the plan compares the stores only"
        for s in observed.served
        if s.error is not None
    ]
    affected = _site_warnings(ctx, actions)
    root: Literal["R46", "E46"] | None = None
    if ctx.roots == {"R46"} or ctx.roots == {"E46"}:
        root = "R46" if "R46" in ctx.roots else "E46"
    return Plan(
        target=target,
        actions=tuple(actions),
        noop_reasons=tuple(ctx.noops),
        warnings=tuple(dict.fromkeys(ctx.warnings)),
        root=root,
        affected_sites=affected,
    )


def _refresh_stale_served(ctx: Ctx) -> Action | None:
    """The stores need nothing, but a site serves a chain without any cross-sign they hold
    (or with a self-signed root they no longer hold): HTTP.sys serves the chain it cached
    before the stores were fixed. The refresh is the configured restart, the lowest rung of
    verify's ladder expected to work (verify climbs further if it does not). Uses only what
    the caller observed and passed in ``observed.served``."""
    specs = [s for s in ctx.desired.certificates if s.when_root is None or s.when_root in ctx.roots]
    wanted = {s.thumbprint for s in specs if s.ensure == "present" and s.role == "cross_sign"}
    unwanted = {s.thumbprint for s in specs if s.ensure == "absent"}
    sites = {b.site.lower() for b in ctx.desired.bindings}
    for served in ctx.observed.served:
        if served.error is not None or not served.thumbprints or not wanted:
            continue
        if sites and served.site.lower() not in sites:
            continue
        sent = set(served.thumbprints)
        if sent & wanted and not sent & unwanted:
            continue
        why = (
            f"site {served.site!r} still serves a stale chain ({len(served.thumbprints)} "
            "certificate(s), "
            + ("with the self-signed root" if sent & unwanted else "without the cross-sign")
            + " although the stores are right): HTTP.sys serves the chain it cached"
        )
        if ctx.desired.restart == "none":
            ctx.warnings.append(f"{why}; restart 'none' leaves it so: restart IIS")
            return None
        restart = _restart(ctx)
        return restart.model_copy(update={"reason": f"{why}; {restart.reason}"})
    return None


def _restart(ctx: Ctx) -> Action:
    mode = ctx.desired.restart
    pools = sorted({site.app_pool for _, site, _, _, _ in ctx.leaves if site.app_pool})
    if mode == "iisreset":
        reason = "iisreset /restart so HTTP.sys rebuilds the chain it caches and serves"
    else:
        reason = (
            f"recycle app pool(s) {', '.join(pools)} (reports differ on whether a recycle "
            "refreshes HTTP.sys's cached chain; verify, and escalate to iisreset if needed)"
        )
    return Action(
        kind="restart",
        reason=reason,
        template="restart",
        params={"mode": mode, "app_pools": pools if mode == "recycle" else []},
        rollback="none needed (rollback restarts again after restoring)",
    )


_GPO_GUIDANCE = [
    "Ask the domain administrators to remove the self-signed root from the GPO (Computer "
    "Configuration > Policies > Windows Settings > Security Settings > Public Key Policies > "
    "Trusted Root Certification Authorities) and to deploy the cross-sign to Intermediate "
    "Certification Authorities instead; then run the plan again.",
    "Or pass --allow-group-policy to apply the rest of the fix now (the cross-sign is "
    "imported; the short chain stays until the policy changes); with --strategy "
    "remove_and_disallow the root is also put into LocalMachine\\Disallowed, which wins over Root.",
]
