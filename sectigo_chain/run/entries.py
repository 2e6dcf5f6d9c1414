"""``verify_entries``: every HTTP.sys entry a site uses, every way a client arrives (issue 17).

A site's https bindings use one HTTP.sys entry each: ``host:port`` for an SNI binding,
``IP:port`` (``0.0.0.0:port`` for ``*``) for a binding without SNI, ``ccs:port`` for a Central
Certificate Store binding. :func:`entry_probes` lists one probe per entry and handshake: an SNI
binding with its host name; an IP binding with the name of its certificate and also **without
SNI** (clients that send no SNI get the IP binding, and old clients are the ones that need the
long chain: win-acme #289, #229); a CCS binding with its host name.

:func:`verify_entries` checks each probe over TLS and, for the entries whose served chain
fails while the host builds the right one, climbs a ladder **per entry** first: re-create that
entry (``set_binding`` with ``reapply``, the same certificate: IIS rewrites the HTTP.sys entry),
check that entry's probes again, and only for the entries still failing ``iisreset``, then a
restart of the HTTP service. Each row says which rung fixed it (win-acme #1941, #94: a single
entry that keeps a stale chain). CCS entries are checked, never refreshed per entry (their
certificate comes from the CCS share, not from a binding's hash). TLS versions are not varied:
each probe is one handshake at the highest version both sides support.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sectigo_chain.errors import ExecutionError, InputError, TemplateError, TLSFetchError
from sectigo_chain.hosts.base import Executor
from sectigo_chain.hosts.retry import RetryPolicy, run_script
from sectigo_chain.state.models import ObservedBinding, ObservedState
from sectigo_chain.templates.render import RenderedScript
from sectigo_chain.tls.check import ChainReport, check_endpoint, resolve_profiles
from sectigo_chain.trust.profiles import Profile
from sectigo_chain.x509.catalog import Catalog
from sectigo_chain.x509.certs import dns_names

__all__ = ["EntriesReport", "EntryProbe", "EntryRow", "entry_probes", "verify_entries"]

EntryRung = Literal["entry", "iisreset", "http_service"]
_LADDER: tuple[EntryRung, ...] = ("entry", "iisreset", "http_service")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EntryProbe(_Frozen):
    """One handshake against one HTTP.sys entry of a site."""

    site: str
    entry: str
    kind: Literal["ipport", "hostnameport", "ccs"]
    ip: str
    port: int
    host: str
    servername: str | None
    certificate_hash: str | None = None
    store_name: str = "My"

    @property
    def handshake(self) -> str:
        return f"SNI {self.servername}" if self.servername else "no SNI"


class EntryRow(_Frozen):
    """The outcome of one probe: first check, and after the ladder if it was climbed."""

    probe: EntryProbe
    tls_version: str | None = None  # None: no handshake at any version
    initial_verdict: str | None = None  # pass/warn/fail; None: no handshake
    verdict: str | None = None
    served: tuple[str, ...] = ()  # thumbprints, leaf first
    error: str | None = None
    fixed_by: EntryRung | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in ("pass", "warn")

    def line(self) -> str:
        state = self.verdict or "no handshake"
        fixed = f" (fixed by {self.fixed_by})" if self.fixed_by else ""
        why = f": {self.error}" if self.error else ""
        version = f"TLS {self.tls_version}" if self.tls_version else "-"
        return f"{self.probe.entry:<28} {self.probe.handshake:<28} {version:<8} {state}{fixed}{why}"


class EntriesReport(_Frozen):
    """One row per entry and handshake, and the rungs climbed."""

    target: str
    site: str
    rows: tuple[EntryRow, ...] = ()
    rungs: tuple[str, ...] = ()
    reboot_required: bool = False

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        return "pass" if self.rows and all(r.ok for r in self.rows) else "fail"

    def __str__(self) -> str:
        head = f"{self.target} {self.site!r}: {self.verdict} ({len(self.rows)} handshake(s))"
        lines = [head, *(f"  {r.line()}" for r in self.rows)]
        if self.reboot_required:
            lines.append("  no rung fixed every entry: a reboot may be required")
        return "\n".join(lines)


def _ip_entry(b: ObservedBinding) -> str:
    return f"{'0.0.0.0' if b.ip in ('*', '') else b.ip}:{b.port}"  # noqa: S104


def entry_probes(observed: ObservedState, site: str) -> list[EntryProbe]:
    """The probes of a site's https bindings (see the module docstring); pure."""
    found = observed.site(site)
    if found is None:
        known = ", ".join(s.name for s in observed.sites) or "none"
        raise InputError(f"site {site!r} not found on the host (sites: {known})")
    probes: list[EntryProbe] = []
    for b in found.bindings:
        if b.protocol.lower() != "https":
            continue
        tp = (b.certificate_hash or "").upper() or None
        base = {"site": found.name, "ip": b.ip, "port": b.port, "host": b.host,
                "certificate_hash": tp, "store_name": b.certificate_store or "My"}  # fmt: skip
        if b.ssl_flags & 2:
            probes.append(EntryProbe(entry=f"ccs:{b.port}", kind="ccs",
                                     servername=b.host or None, **base))  # fmt: skip
            continue
        if b.ssl_flags & 1:
            probes.append(EntryProbe(entry=f"{b.host}:{b.port}", kind="hostnameport",
                                     servername=b.host or None, **base))  # fmt: skip
            continue
        name = b.host or None
        if name is None and tp:
            copies = observed.find(tp, "LocalMachine")
            names = dns_names(copies[0].certificate) if copies else ()
            name = names[0] if names else None
        entry = _ip_entry(b)
        if name is not None:
            probes.append(EntryProbe(entry=entry, kind="ipport", servername=name, **base))
        probes.append(EntryProbe(entry=entry, kind="ipport", servername=None, **base))
    return probes


Address = Callable[[EntryProbe], tuple[str, int]]
"""Where to connect for a probe (a simulated host: its listener's loopback address)."""


_Checked = tuple[ChainReport | None, str | None]


def _check(
    probe: EntryProbe,
    address: Address,
    profiles: list[Profile],
    at: dt.datetime | None,
    catalog: Catalog | None,
    tls_timeout: float,
) -> _Checked:
    ip, port = address(probe)
    try:
        # One row per TLS version: each version shakes hands on its own (check's default is
        # one negotiated handshake, issue 15; per entry the versions may serve differently).
        report = check_endpoint(ip, port, servername=probe.servername, profiles=profiles,
                                timeout=tls_timeout, at=at, catalog=catalog,
                                tls_versions=("1.2", "1.3"))  # fmt: skip
    except TLSFetchError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return report, None


def _verdict(checked: _Checked) -> str | None:
    return checked[0].verdict if checked[0] is not None else None


def _rows(
    probe: EntryProbe, checked: _Checked, initial: str | None, fixed_by: EntryRung | None
) -> list[EntryRow]:
    """One row per TLS version tried (one row without a version when nothing connected)."""
    report, error = checked
    if report is None:
        return [EntryRow(probe=probe, initial_verdict=initial, error=error)]
    problem = None
    if report.verdict == "fail":
        problem = "; ".join(str(p) for p in report.profiles.values() if not p.valid) or "fail"
    by_sha = {c.sha256: c.thumbprint for c in report.served_chain}
    rows = []
    for version, result in sorted(report.tls_versions.items()):
        if not result.ok:
            rows.append(EntryRow(probe=probe, tls_version=version, initial_verdict=initial,
                                 error=result.error or "handshake failed"))  # fmt: skip
            continue
        rows.append(
            EntryRow(
                probe=probe, tls_version=version, initial_verdict=initial,
                verdict=report.verdict, served=tuple(by_sha.get(h, h) for h in result.chain),
                error=problem, fixed_by=fixed_by if report.verdict != "fail" else None,
            )
        )  # fmt: skip
    return rows


def _rung_script(rung: EntryRung, probe: EntryProbe) -> RenderedScript:
    from sectigo_chain.templates.render import render

    if rung == "entry":
        return render(
            "set_binding",
            {"site": probe.site, "ip": probe.ip, "port": probe.port, "host": probe.host,
             "thumbprint": probe.certificate_hash, "store_name": probe.store_name,
             "reapply": True},
        )  # fmt: skip
    return render("restart", {"mode": rung})


def verify_entries(
    executor: Executor,
    site: str,
    address: Address,
    *,
    profiles: Sequence[str | Profile] = ("legacy", "modern"),
    at: dt.datetime | None = None,
    catalog: Catalog | None = None,
    climb_ladder: bool = True,
    timeout: float = 120.0,
    tls_timeout: float = 5.0,
    retry: RetryPolicy | None = None,
) -> EntriesReport:
    """Check every entry and handshake of ``site`` and refresh failing entries one by one
    before reaching for ``iisreset`` (see the module docstring). Climb only when the stores
    are right (``verify`` says so): a refresh cannot fix the chain Windows builds."""
    from sectigo_chain.hosts.targets import catalog_for
    from sectigo_chain.run.applier import observe

    cat = catalog if catalog is not None else catalog_for(executor)
    resolved = resolve_profiles(list(profiles), cat)
    probes = entry_probes(observe(executor, timeout=timeout, retry=retry), site)
    checked = [_check(p, address, resolved, at, cat, tls_timeout) for p in probes]
    initial = [_verdict(c) for c in checked]
    fixed_by: list[EntryRung | None] = [None] * len(probes)
    rungs: list[str] = []

    def failing() -> list[int]:
        # A served chain that fails: stale, perhaps. A refused handshake is reported, never
        # "refreshed": no rung can make an entry serve what it does not have.
        return [i for i, c in enumerate(checked) if _verdict(c) == "fail"]

    for rung in _LADDER if climb_ladder else ():
        if not failing():
            break
        groups: list[list[int]]
        if rung == "entry":
            by_entry: dict[str, list[int]] = {}
            for i in failing():
                if probes[i].kind != "ccs" and probes[i].certificate_hash:
                    by_entry.setdefault(probes[i].entry, []).append(i)
            groups = list(by_entry.values())
        else:
            groups = [failing()]
        for group in groups:
            probe = probes[group[0]]
            rungs.append(f"entry {probe.entry}" if rung == "entry" else rung)
            try:
                result = run_script(executor, _rung_script(rung, probe), timeout=timeout,
                                    policy=retry)  # fmt: skip
            except (ExecutionError, TemplateError):
                continue
            if not result.ok:
                continue
            for i in group:
                checked[i] = _check(probes[i], address, resolved, at, cat, tls_timeout)
                if _verdict(checked[i]) in ("pass", "warn"):
                    fixed_by[i] = rung
    rows = [row for i, p in enumerate(probes) for row in _rows(p, checked[i], initial[i],
                                                               fixed_by[i])]  # fmt: skip
    return EntriesReport(
        target=executor.target, site=site, rows=tuple(rows), rungs=tuple(rungs),
        reboot_required=bool(rungs) and bool(failing()),
    )  # fmt: skip
