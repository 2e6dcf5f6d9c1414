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
from sectigo_chain.state.ccs import ccs_plan
from sectigo_chain.state.lifecycle import (
    EXPIRING_WITHIN_DAYS,
    competition_warnings,
    stale_intermediates,
    with_revert_date,
)
from sectigo_chain.state.models import (
    FIRST_AES_PFX_BUILD,
    BindingSpec,
    DesiredState,
    ObservedBinding,
    ObservedCertificate,
    ObservedSite,
    ObservedState,
    parse_der_b64,
)
from sectigo_chain.state.outbound import DISTRUST_KINDS
from sectigo_chain.state.plan_models import Action, BindingRecord, Plan
from sectigo_chain.state.rules import CHAIN_KINDS, PHASES, Ctx, absent, backup_of, present
from sectigo_chain.x509.catalog import Catalog, CrossSignAnswer, cross_sign_for, default_catalog
from sectigo_chain.x509.certs import common_name

__all__ = ["plan"]

# ---------------------------------------------------------------------------- resolution

_CCS = 2  # sslFlags bit: the certificate comes from the Central Certificate Store


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
        # IIS compares host headers case-insensitively (PowerShell -eq; DNS names): a host
        # that differs only in case is the same binding (issue 19, bug 10).
        exact = [
            b
            for b in https
            if (b.ip, b.port, b.host.lower()) == (spec.ip, spec.port, spec.host.lower())
        ]
        binding = exact[0] if exact else (https[0] if https and spec.thumbprint is None else None)
        tp = spec.thumbprint or (binding.certificate_hash if binding else None)
        if binding is not None and binding.ssl_flags & _CCS and spec.thumbprint is None:
            raise InputError(
                f"site {site.name!r} serves its certificate from the Central Certificate Store "
                "(sslFlags bit 2): the bound thumbprint is not used; fix the PFX in the CCS share "
                "(with its chain), or pass --pfx to bind a certificate from the machine store"
            )
        if (
            binding is not None
            and spec.thumbprint is None
            and (binding.certificate_store or "").lower() == "webhosting"
        ):
            # The bound certificate lives in WebHosting: look for it (and its key) there.
            spec = spec.model_copy(update={"store_name": "WebHosting"})
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
            ctx.undecided = True
            ctx.warnings.append(
                f"the certificate bound to {site.name!r} ({tp}) is in no store the host "
                "reported: fix the binding first (sectigo-chain plan --pfx ...)"
            )
        else:
            pool = [c.certificate for c in obs.certificates if c.store_name in ("CA", "Root")]
            answer = _cross_sign((leaf, *pool), ctx.catalog)
            if answer.guessed:
                ctx.undecided = True
                # A guess never drives a change to the trust stores (issue 19, bug 5).
                ctx.warnings.append(
                    f"certificate {tp} of {site.name!r}: its issuer "
                    f"({common_name(leaf.issuer)}) is not on the host and not a CA this "
                    f"tool knows, so which root it chains to is only a guess "
                    f"({answer.root} from its key type): no root or cross-sign change is "
                    "planned for it; import its issuing CA into LocalMachine\\CA (or pass "
                    "the PFX with its chain) and plan again"
                )
            elif answer.root is not None:
                ctx.roots.add(answer.root)
            else:
                ctx.warnings.append(f"certificate {tp} of {site.name!r}: {answer.explanation}")
        ctx.leaves.append((spec, site, binding, tp, leaf))


# ---------------------------------------------------------------------------- leaf + binding


def _leaf_and_binding(ctx: Ctx, aes_ok: bool) -> None:
    obs = ctx.observed
    for spec, site, binding, tp, leaf in ctx.leaves:
        label = f"{common_name(leaf.subject)} ({tp})" if leaf else tp
        here = obs.find(tp, "LocalMachine", spec.store_name)
        in_lm = [c for c in here if c.has_private_key and c.key_storage != "user"]
        user_key_here = [c for c in here if c.has_private_key and c.key_storage == "user"]
        usable = True
        if in_lm:
            ctx.noops.append(
                f"{label} already in LocalMachine\\{spec.store_name} with a machine key"
            )
        elif user_key_here:
            # import_pfx (template and Windows) keeps a copy that has a key, whichever key set
            # it is in: importing would change nothing, every run (issue 19, bug 8).
            usable = False
            ctx.warnings.append(
                f"{label} is in LocalMachine\\{spec.store_name} but its private key is in a "
                "user key set, which SChannel cannot use (0x80070520) and an import does not "
                f"replace: delete that copy by hand (certutil -delstore {spec.store_name} "
                f"{tp}), then plan again with the PFX (--pfx)"
            )
        elif spec.pfx is not None and spec.pfx_password is not None:
            ctx.phases["leaf"].append(_import_pfx(ctx, spec, tp, leaf, label, here, aes_ok))
        else:
            usable = _move_leaf(ctx, spec, tp, leaf, label, here)
        if usable or (binding is not None and (binding.certificate_hash or "").upper() == tp):
            _binding(ctx, spec, site, binding, tp)
        else:
            ctx.warnings.append(
                f"not binding {label} to {site.name!r}: it has no usable machine key"
            )


def _import_pfx(
    ctx: Ctx,
    spec: BindingSpec,
    tp: str,
    leaf: x509.Certificate | None,
    label: str,
    here: list[ObservedCertificate],
    aes_ok: bool,
) -> Action:
    obs = ctx.observed
    use_legacy = not aes_ok and spec.pfx_protection in ("aes", "mixed", "unknown")
    pfx = spec.legacy_pfx if use_legacy and spec.legacy_pfx else spec.pfx
    note = (
        f" (re-encoded with 3DES/SHA-1: build {obs.os.build} cannot import AES PFX files)"
        if use_legacy
        else ""
    )
    # A keyless copy already there is replaced by the import: back it up, so rollback puts
    # it back instead of deleting a certificate the step did not create (issue 19, bug 3).
    existing = here[0] if here else None
    return Action(
        kind="import_pfx",
        reason=(
            f"import the PFX {label} into LocalMachine\\{spec.store_name} with the machine key "
            f"set{note}" + (" (a copy without its key is there)" if existing else "")
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
            "password": spec.pfx_password or SecretStr(""),
        },
        backup=backup_of(existing) if existing else None,
        rollback=(
            f"remove {tp} and its key from LocalMachine\\{spec.store_name}"
            + (", then put the keyless copy back" if existing else "")
        ),
    )


def _move_leaf(
    ctx: Ctx,
    spec: BindingSpec,
    tp: str,
    leaf: x509.Certificate | None,
    label: str,
    here: list[ObservedCertificate],
) -> bool:
    """Plan moving the leaf and its key from CurrentUser\\My; False when it cannot be used."""
    obs = ctx.observed
    user = [c for c in obs.find(tp, "CurrentUser", "My") if c.has_private_key]
    if not user:
        if leaf is not None:
            ctx.warnings.append(
                f"{label} has no private key in LocalMachine\\{spec.store_name} or "
                "CurrentUser\\My: re-import it from a PFX (--pfx)"
            )
        return False
    export = (
        f"export it with its key from CurrentUser\\My (certutil -user -exportPFX My {tp} "
        "leaf.pfx) and plan again with --pfx"
    )
    if here:
        # The move would skip the copy (the destination has the certificate) and then delete
        # the only copy with the key (issue 19, bug 1): never plan it.
        ctx.warnings.append(
            f"{label} is in LocalMachine\\{spec.store_name} without its private key, which "
            f"sits only in CurrentUser\\My: not moving it (that would delete the only copy "
            f"with the key); {export}"
        )
        return False
    if user[0].key_exportable is not True:
        ctx.warnings.append(
            f"{label} and its private key sit only in CurrentUser\\My and the key is not "
            "marked exportable: it cannot be moved into the machine key set; re-import it from "
            "the original PFX (--pfx)"
        )
        return False
    ctx.phases["leaf"].append(
        Action(
            kind="move_leaf",
            reason=(
                f"{label} and its private key sit only in CurrentUser\\My: SChannel cannot use "
                "a user key (binding error 0x80070520); move it into LocalMachine\\My and its "
                "key into the machine key set (exported and imported in memory on the host, no "
                "file)"
            ),
            template="move_certificate",
            params={
                "thumbprint": tp,
                "from_location": "CurrentUser",
                "from_store": "My",
                "to_location": "LocalMachine",
                "to_store": spec.store_name,
                "remove_source": True,
                "with_key": True,
            },
            backup=backup_of(user[0]),
            rollback="move it and its key back into CurrentUser\\My",
        )
    )
    return True


def _binding(
    ctx: Ctx, spec: BindingSpec, site: ObservedSite, b: ObservedBinding | None, tp: str
) -> None:
    where = f"{site.name!r} https {_ep(spec.ip, spec.port, spec.host)}"
    same_cert = b is not None and (b.certificate_hash or "").upper() == tp
    ccs = b is not None and bool(b.ssl_flags & _CCS)
    if b is not None and same_cert and not ccs and (spec.thumbprint is None or b.sni == spec.sni):
        ctx.noops.append(
            f"binding {site.name!r} https {_ep(b.ip, b.port, b.host)} already uses "
            f"thumbprint {tp}: not rebinding"
        )
        return
    # The CCS bit (2) makes HTTP.sys ignore the bound hash and serve from the Central
    # Certificate Store: binding a store certificate clears it (issue 19, bug 9).
    flag_set, flag_clear = (1, _CCS) if spec.sni else (0, 1 | _CCS)
    prev = shared = None
    if b is not None:
        prev = BindingRecord(site=site.name, **b.model_dump())
    elif not spec.sni:
        # HTTP.sys holds one certificate per IP:port: a new non-SNI binding on an IP:port
        # another binding uses rebinds that one too; rollback must give it its certificate back.
        new_ep = ObservedBinding(protocol="https", ip=spec.ip, port=spec.port).ip_port
        shared = next(
            (BindingRecord(site=s.name, **ob.model_dump())
             for s in ctx.observed.sites for ob in s.bindings
             if ob.protocol.lower() == "https" and not ob.sni and ob.certificate_hash
             and ob.ip_port == new_ep),
            None,
        )  # fmt: skip
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
            shared_binding=shared,
            rollback=(
                "restore the previous binding"
                if prev
                else "remove the new binding"
                + (
                    f" and rebind {shared.certificate_hash} on {shared.site!r}'s {new_ep}"
                    if shared
                    else ""
                )
            ),
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
                # Only a rebind of this IP:port's non-SNI entry changes what the others serve
                # (an SNI binding has an entry of its own).
                rebound = any(not r.sni and r.ip_port == mine.ip_port for r in ctx.rebinds)
                what = (
                    "rebinding changes the certificate of all of them"
                    if rebound
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
    expiring_within_days: int = EXPIRING_WITHIN_DAYS,
) -> Plan:
    """Compare ``desired`` with ``observed`` and list the actions that close the gap.

    Intermediates in ``LocalMachine\\CA`` (or SYSTEM's CA store) that have expired, or expire
    within ``expiring_within_days``, are removed too (see :mod:`sectigo_chain.state.lifecycle`).
    """
    if expiring_within_days < 0:
        raise InputError("expiring_within_days must be 0 or more")
    ctx = Ctx(desired, observed, at, catalog or default_catalog(), allow_group_policy_override)
    _resolve_leaves(ctx)
    if any(s.when_root for s in desired.certificates) and not ctx.roots and ctx.undecided:
        ctx.warnings.append("could not tell which root the bound certificate chains to")
    for spec in desired.certificates:
        if spec.when_root is not None and spec.when_root not in ctx.roots:
            continue
        (present if spec.ensure == "present" else absent)(ctx, spec)
    stale_intermediates(ctx, expiring_within_days)
    competition_warnings(ctx)
    _leaf_and_binding(ctx, observed.os.build == 0 or observed.os.build >= FIRST_AES_PFX_BUILD)
    if ctx.refusals:
        raise PlanRefused(
            "refusing to plan: a root pushed by Group Policy or Active Directory cannot be "
            "removed locally",
            guidance=[*ctx.refusals, *_GPO_GUIDANCE],
        )
    actions = [with_revert_date(ctx, a) for p in PHASES for a in ctx.phases[p]]
    ccs_actions, ccs_warnings = ccs_plan(desired, observed, at, ctx.catalog)
    actions += ccs_actions
    ctx.warnings += ccs_warnings
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
    outbound = desired.outbound_url if any(a.kind in DISTRUST_KINDS for a in actions) else None
    return Plan(
        target=target,
        outbound_url=outbound,
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
    if mode == "recycle" and not pools:
        # Refuse now rather than fail (and roll everything back) at the last step.
        raise InputError(
            "restart 'recycle' needs an app pool, and the site's root application has none: "
            "use --restart iisreset"
        )
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
