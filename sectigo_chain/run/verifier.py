"""``verify(executor, desired, endpoint=...) -> VerifyReport``: is the fix in place and served?

Three checks (DESIGN.md section 2), all through templates and the executor, so they run the
same on a Windows host and on the simulated one:

1. **Desired state**: observe again and re-plan; the plan must be empty.
2. **On the host**: the ``verify_chain`` template builds the chain Windows builds for the
   certificate bound to the site's https binding. It is *right* when it is valid and the chain
   it implies (without its self-signed anchor) passes every selected client profile.
3. **From outside**: the chain served over TLS (:func:`sectigo_chain.tls.check.check_endpoint`)
   must not fail any profile.

When the host chain is right but the served one is not, HTTP.sys is serving a cached chain
(DESIGN.md 1.5). Reports differ on what refreshes it, so verify climbs a ladder, checking the
served chain over TLS after each rung, and stops at the first rung that fixes it: re-apply the
https binding (``set_binding`` with the same certificate), ``iisreset /restart``, restart the
HTTP service; when none does, the report says ``reboot_required`` (verify never reboots).
A wrong host chain is reported, never climbed: restarting cannot fix the stores.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from cryptography import x509

from sectigo_chain.errors import (
    ExecutionError,
    InputError,
    PlanRefused,
    TemplateError,
    TLSFetchError,
)
from sectigo_chain.hosts.base import Executor, ScriptResult, entry_result
from sectigo_chain.hosts.retry import RetryPolicy, run_script
from sectigo_chain.run.verify_report import (
    LADDER,
    RUNG_ACTIONS,
    HostChain,
    HostChainElement,
    Rung,
    RungResult,
    VerifyReport,
)
from sectigo_chain.state.lifecycle import EXPIRING_WITHIN_DAYS
from sectigo_chain.state.models import DesiredState, ObservedBinding, ObservedState, parse_der_b64
from sectigo_chain.state.plan_models import BindingRecord
from sectigo_chain.tls.check import ChainReport, check_endpoint, report_for_chain, resolve_profiles
from sectigo_chain.trust.profiles import Profile
from sectigo_chain.x509.catalog import Catalog
from sectigo_chain.x509.certs import common_name, thumbprint

__all__ = [
    "DEFAULT_VERIFY_PROFILES",
    "LADDER",
    "HostChain",
    "HostChainElement",
    "Rung",
    "RungResult",
    "VerifyReport",
    "judged_chain",
    "observe_with_chains",
    "verify",
]

DEFAULT_VERIFY_PROFILES: tuple[str, ...] = ("legacy", "modern", "both")
Endpoint = tuple[str, int, str | None]

# ------------------------------------------------------------------------------- helpers


def _store(name: str | None) -> Literal["My", "WebHosting"]:
    return "WebHosting" if (name or "").lower() == "webhosting" else "My"


def _find_binding(
    observed: ObservedState, desired: DesiredState, site: str
) -> tuple[str, ObservedBinding | None]:
    obs_site = observed.site(site)
    if obs_site is None:
        known = ", ".join(s.name for s in observed.sites) or "none"
        raise InputError(f"site {site!r} not found on the host (sites: {known})")
    https = [b for b in obs_site.bindings if b.protocol.lower() == "https"]
    spec = next((b for b in desired.bindings if b.site.lower() == site.lower()), None)
    if spec is not None:
        want = (spec.ip, spec.port, spec.host.lower())
        exact = [b for b in https if (b.ip, b.port, b.host.lower()) == want]
        if exact:
            return obs_site.name, exact[0]
    return obs_site.name, (https[0] if https else None)


def _message(result: Any) -> str:
    error = result.error or {}
    return str(error.get("message") or "; ".join(result.errors) or "the script reported failure")


def observe_with_chains(
    executor: Executor, *, timeout: float = 120.0, retry: RetryPolicy | None = None
) -> tuple[ObservedState, dict[tuple[str, str], ScriptResult]]:
    """The host observed and, from the same invocation (``verify_host``: one pipeline), the
    ``verify_chain`` result of every certificate bound to an https binding, keyed by
    ``(thumbprint, store)``."""
    from sectigo_chain.templates.render import render

    result = run_script(executor, render("verify_host", {}), timeout=timeout, policy=retry)
    data = result.data if isinstance(result.data, dict) else {}
    seen = entry_result(
        {"document": data.get("observed"), "error": data.get("observe_error"),
         "errors": data.get("observe_errors")}
    )  # fmt: skip
    if not seen.ok or not isinstance(seen.data, dict):
        message = (
            (seen.error or {}).get("message")
            or "; ".join(seen.errors)
            or (result.error or {}).get("message")
            or "; ".join(result.errors)
            or "no data"
        )
        raise ExecutionError(
            f"{executor.target}: observe failed: {message}",
            host=executor.target,
            script="verify_host",
        )
    chains = {
        (str(item.get("thumbprint")), str(item.get("store_name"))): entry_result(item)
        for item in data.get("chains") or ()
        if isinstance(item, dict)
    }
    return ObservedState.model_validate(seen.data), chains


def _host_chain(
    executor: Executor,
    tp: str,
    store: str,
    profiles: list[Profile],
    *,
    hostname: str | None,
    at: dt.datetime,
    catalog: Catalog,
    timeout: float,
    retry: RetryPolicy | None,
    known: ScriptResult | None = None,
) -> HostChain:
    """Judge the chain Windows builds for ``tp``: ``known`` is verify_chain's result from
    ``verify_host``; without it verify_chain runs now."""
    from sectigo_chain.templates.render import render

    params = {"thumbprint": tp, "store_location": "LocalMachine", "store_name": store}
    if known is not None:
        result = known
    else:
        try:
            script = render("verify_chain", params)
            result = run_script(executor, script, timeout=timeout, policy=retry)
        except (ExecutionError, TemplateError) as exc:
            return HostChain(thumbprint=tp, problem=f"verify_chain failed: {exc}")
    if not result.ok or not isinstance(result.data, dict):
        return HostChain(thumbprint=tp, problem=f"verify_chain failed: {_message(result)}")
    data = result.data
    certs: list[x509.Certificate] = []
    elements = []
    for element in data.get("elements") or []:
        cert = parse_der_b64(element["der_b64"])  # parsed once per DER (cached)
        tp_cn = _describe(cert)
        certs.append(cert)
        elements.append(
            HostChainElement(
                thumbprint=tp_cn[0],
                common_name=tp_cn[1],
                status=tuple(element.get("status") or ()),
            )
        )
    valid = bool(data.get("valid"))
    status = tuple(data.get("status") or ())
    base = {"thumbprint": tp, "valid": valid, "status": status, "elements": tuple(elements)}
    expected = _expected_served(tuple(certs))
    if not valid or not expected:
        why = ", ".join(status) or "no chain"
        return HostChain(**base, problem=f"Windows does not build a valid chain ({why})")
    judged, right, problem = _judge_host_chain(expected, hostname, profiles, at, catalog)
    return HostChain(
        **base,
        expected_served=tuple(_describe(c)[0] for c in expected),
        profiles=judged,
        right=right,
        problem=problem,
    )


# Memoised on immutable values (certificates compare and hash by their DER; profiles are
# frozen; the catalog by identity; the validation time exactly), bounded: the hosts of a farm
# build the same chain, and a fleet run validates them all at one time.


@functools.lru_cache(maxsize=1024)
def _describe(cert: x509.Certificate) -> tuple[str, str]:
    return thumbprint(cert), common_name(cert.subject)


@functools.lru_cache(maxsize=256)
def _expected_served(certs: tuple[x509.Certificate, ...]) -> tuple[x509.Certificate, ...]:
    """The valid chain Windows built, without its anchor: what HTTP.sys will serve. The anchor
    is whatever sits in Root, self-signed or not (a cross-sign imported into Root is an anchor
    too), and Windows never sends it (as :func:`~sectigo_chain.x509.paths.predict_windows_chain`
    predicts)."""
    return certs[:-1] if len(certs) > 1 else certs


@functools.lru_cache(maxsize=256)
def _report(
    chain: tuple[x509.Certificate, ...],
    hostname: str | None,
    profiles: tuple[Profile, ...],
    profile_catalogs: tuple[Catalog | None, ...],  # part of the key: Profile equality skips it
    at: dt.datetime,
    catalog: Catalog | None,
) -> ChainReport:
    return report_for_chain(
        list(chain), at=at, profiles=list(profiles), hostname=hostname, catalog=catalog
    )


def judged_chain(
    chain: Sequence[x509.Certificate],
    *,
    at: dt.datetime,
    profiles: Sequence[Profile],
    hostname: str | None,
    catalog: Catalog | None,
) -> ChainReport:
    """:func:`~sectigo_chain.tls.check.report_for_chain` for a chain read from a host (no TLS
    details), memoised (see above). The fleet judges a simulated host's served chain with it
    too, so after a fix that chain is judged once for verify and the fleet's after-check."""
    profs = tuple(profiles)
    return _report(tuple(chain), hostname, profs, tuple(p.catalog for p in profs), at, catalog)


def _judge_host_chain(
    expected: tuple[x509.Certificate, ...],
    hostname: str | None,
    profiles: list[Profile],
    at: dt.datetime,
    catalog: Catalog,
) -> tuple[dict[str, bool], bool, str | None]:
    """Judge the chain Windows builds: (per-profile validity, right, problem)."""
    report = judged_chain(expected, at=at, profiles=profiles, hostname=hostname, catalog=catalog)
    judged = {name: p.valid for name, p in report.profiles.items()}
    problem = None
    if report.verdict == "fail":
        reasons = [str(p) for p in report.profiles.values() if not p.valid]
        reasons += [str(f) for f in report.findings if f.severity == "error"]
        problem = (
            "the chain Windows builds is wrong (HTTP.sys serves it after its next refresh; "
            f"restarting cannot fix it): {'; '.join(reasons)}"
        )
    return judged, report.verdict != "fail", problem


def _served(
    endpoint: Endpoint,
    profiles: list[Profile],
    *,
    at: dt.datetime | None,
    catalog: Catalog,
    tls_timeout: float,
    settle: float,
) -> tuple[ChainReport | None, str | None]:
    """Check the served chain; after a restart, retry until ``settle`` seconds have passed."""
    host, port, name = endpoint
    deadline = time.monotonic() + settle
    while True:
        try:
            report = check_endpoint(
                host, port, servername=name, profiles=profiles, timeout=tls_timeout, at=at,
                catalog=catalog,
            )  # fmt: skip
        except TLSFetchError as exc:
            if time.monotonic() >= deadline:
                return None, f"{type(exc).__name__}: {exc}"
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        return report, None


def _rung_script(rung: Rung, site: str, binding: ObservedBinding, tp: str) -> Any:
    from sectigo_chain.templates.render import render

    if rung == "binding":
        params = {
            "site": site,
            "ip": binding.ip,
            "port": binding.port,
            "host": binding.host,
            "thumbprint": tp,
            "store_name": _store(binding.certificate_store),
            "reapply": True,
        }
        return render("set_binding", params)
    return render("restart", {"mode": rung})


def _climb(
    executor: Executor,
    site: str,
    binding: ObservedBinding,
    tp: str,
    check: Callable[[], tuple[ChainReport | None, str | None]],
    *,
    timeout: float,
    retry: RetryPolicy | None,
) -> tuple[tuple[RungResult, ...], ChainReport | None, str | None]:
    """Climb the ladder until the served chain passes; each rung is followed by a TLS check."""
    rungs: list[RungResult] = []
    served: ChainReport | None = None
    served_error: str | None = None
    for rung in LADDER:
        ok, changed, error = False, False, None
        try:
            script = _rung_script(rung, site, binding, tp)
            result = run_script(executor, script, timeout=timeout, policy=retry)
            ok, changed = result.ok, result.changed
            error = None if result.ok else _message(result)
        except (ExecutionError, TemplateError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        served, served_error = check()
        fixed = served is not None and served.verdict != "fail"
        rungs.append(
            RungResult(
                rung=rung,
                action=RUNG_ACTIONS[rung],
                ok=ok,
                changed=changed,
                error=error,
                served_verdict=served.verdict if served is not None else None,
                served_error=served_error,
                fixed=fixed,
            )
        )
        if fixed:
            break
    return tuple(rungs), served, served_error


# ------------------------------------------------------------------------------- verify


def verify(
    executor: Executor,
    desired: DesiredState,
    *,
    endpoint: Endpoint | None = None,
    site: str | None = None,
    profiles: Sequence[str | Profile] = DEFAULT_VERIFY_PROFILES,
    at: dt.datetime | None = None,
    catalog: Catalog | None = None,
    climb_ladder: bool = True,
    timeout: float = 120.0,
    tls_timeout: float = 5.0,
    settle: float = 30.0,
    retry: RetryPolicy | None = None,
    expiring_within_days: int = EXPIRING_WITHIN_DAYS,
) -> VerifyReport:
    """Verify the fix on ``executor`` (see the module docstring).

    ``endpoint`` is ``(host, port, servername)`` where the site answers TLS (for a simulated
    host: ``listener.address_for(site)``); without it the served chain is not checked and the
    ladder is not climbed. ``site`` defaults to the desired state's first binding. ``settle``
    bounds how long to wait for the endpoint to answer again after a rung.
    """
    from sectigo_chain.hosts.targets import catalog_for
    from sectigo_chain.state.planner import plan as make_plan

    started = time.monotonic()
    cat = catalog if catalog is not None else catalog_for(executor)
    when = at if at is not None else dt.datetime.now(dt.timezone.utc)
    resolved = resolve_profiles(list(profiles), cat)
    wanted = site or (desired.bindings[0].site if desired.bindings else None)
    if wanted is None:
        raise InputError("no site to verify: pass site= or a desired state with a binding")
    # One pipeline: observe and the chain of every bound certificate (verify_host).
    observed, chains = observe_with_chains(executor, timeout=timeout, retry=retry)
    site_name, binding = _find_binding(observed, desired, wanted)
    notes: list[str] = []

    remaining: tuple[str, ...] = ()
    try:
        after = make_plan(
            desired, observed, at=when, catalog=cat, target=executor.target,
            expiring_within_days=expiring_within_days,
        )  # fmt: skip
        plan_empty = after.empty
        remaining = tuple(str(a) for a in after.actions)
    except PlanRefused as exc:
        plan_empty, remaining = False, (f"plan refused: {exc}",)

    host_chain: HostChain | None = None
    record: BindingRecord | None = None
    tp = binding.certificate_hash.upper() if binding and binding.certificate_hash else None
    hostname = endpoint[2] if endpoint else (binding.host if binding and binding.host else None)
    if binding is None or tp is None:
        notes.append(f"site {site_name!r} has no https binding with a certificate")
    else:
        record = BindingRecord(site=site_name, **binding.model_dump())
        store = _store(binding.certificate_store)
        host_chain = _host_chain(
            executor, tp, store, resolved, hostname=hostname, at=when,
            catalog=cat, timeout=timeout, retry=retry, known=chains.get((tp, store)),
        )  # fmt: skip

    served: ChainReport | None = None
    served_error: str | None = None
    label: str | None = None
    if endpoint is not None:
        label = f"{endpoint[0]}:{endpoint[1]}" + (f", SNI {endpoint[2]}" if endpoint[2] else "")
        served, served_error = _served(
            endpoint, resolved, at=at, catalog=cat, tls_timeout=tls_timeout, settle=0.0
        )
    initial = served.verdict if served is not None else None

    rungs: tuple[RungResult, ...] = ()
    fixed_by: Rung | None = None
    stale = served is not None and served.verdict == "fail"
    host_right = host_chain is not None and host_chain.right
    if stale and host_right and not plan_empty:
        # Restarting cannot make a host that still needs changes right (issue 19, bug 4).
        notes.append("not restarting anything: the host still needs changes; plan and apply")
    elif stale and host_right and climb_ladder and endpoint is not None:
        assert binding is not None
        assert tp is not None

        def check() -> tuple[ChainReport | None, str | None]:
            assert endpoint is not None
            return _served(
                endpoint, resolved, at=at, catalog=cat, tls_timeout=tls_timeout, settle=settle
            )

        rungs, served, served_error = _climb(
            executor, site_name, binding, tp, check, timeout=timeout, retry=retry
        )
        fixed_by = rungs[-1].rung if rungs[-1].fixed else None
    elif stale and host_right and not climb_ladder:
        notes.append("the host chain is right but the served one is not: a restart should help")
    elif stale and host_chain is not None and not host_right:
        notes.append("not restarting anything: the chain Windows builds is wrong; plan and apply")
    if endpoint is None:
        notes.append("the served chain was not checked (no TLS endpoint given)")

    served_ok = endpoint is None or (served is not None and served.verdict != "fail")
    passed = plan_empty and host_right and served_ok
    return VerifyReport(
        target=executor.target,
        site=site_name,
        binding=record,
        endpoint=label,
        host_chain=host_chain,
        served=served,
        served_error=served_error,
        initial_served_verdict=initial,
        plan_empty=plan_empty,
        remaining=remaining,
        rungs=rungs,
        fixed_by=fixed_by,
        reboot_required=bool(rungs) and fixed_by is None,
        verdict="pass" if passed else "fail",
        notes=tuple(notes),
        duration=time.monotonic() - started,
    )
