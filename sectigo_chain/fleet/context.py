"""What the workers of a fleet run share, and how a host is opened and checked.

:class:`FleetContext` holds the mode, the validation time, the policies and the caches every
worker shares (client profiles per catalog, desired states, judged chains, repeated row values);
:func:`open_executor` opens one host; :func:`tls_endpoint` says where its served chain is
fetched from; :func:`chain_check` turns a :class:`~sectigo_chain.tls.report.ChainReport`
into the row's summary.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from cryptography import x509

from sectigo_chain.fleet.inventory import HostSecrets, ResolvedHost
from sectigo_chain.fleet.report import CertLine, ChainCheck, Mode

if TYPE_CHECKING:
    from sectigo_chain.hosts.base import Executor
    from sectigo_chain.hosts.retry import RetryPolicy
    from sectigo_chain.state.models import DesiredState
    from sectigo_chain.tls.report import ChainReport
    from sectigo_chain.trust.profiles import Profile
    from sectigo_chain.x509.catalog import Catalog

__all__ = [
    "ChainModel",
    "Endpoint",
    "ExecutorFactory",
    "FleetContext",
    "chain_check",
    "endpoint_label",
    "model_of",
    "open_executor",
    "tls_endpoint",
]

ExecutorFactory = Callable[[ResolvedHost, HostSecrets], "Executor"]
Endpoint = tuple[str, int, "str | None"]
_MEMO_MAX = 4096


class ChainModel(Protocol):
    """A host model that knows what it serves (``SimulatedHost``; benchmark fakes)."""

    @property
    def target(self) -> str: ...

    def served_chain(self, site_or_endpoint: str) -> list[x509.Certificate]: ...

    def close(self) -> None: ...


@dataclass
class FleetContext:
    """What every worker shares: mode, clock, policies and caches (thread-safe)."""

    mode: Mode
    at: dt.datetime
    retry: RetryPolicy | None = None
    journal_dir: Path | None = None
    sim_tls: bool = False
    climb_ladder: bool = False
    entries: bool = False
    tls_timeout: float = 5.0
    executor_factory: ExecutorFactory | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _profiles: dict[tuple[int, tuple[str, ...]], list[Profile]] = field(default_factory=dict)
    _desired: dict[tuple[Any, ...], DesiredState] = field(default_factory=dict)
    _memo: dict[tuple[Any, ...], ChainCheck] = field(default_factory=dict)
    _labelled: dict[tuple[Any, ...], ChainCheck] = field(default_factory=dict)
    _shared: dict[Any, Any] = field(default_factory=dict)

    def share(self, value: Any) -> Any:
        """One instance of equal values (action lines, warnings) across hosts: a fleet's rows
        repeat the same reasons, and 1,000 copies would make memory grow with the fleet."""
        with self.lock:
            if len(self._shared) >= _MEMO_MAX:
                self._shared.clear()
            return self._shared.setdefault(value, value)

    def profiles(self, names: tuple[str, ...], catalog: Catalog) -> list[Profile]:
        """The host's client profiles, loaded once per catalog."""
        from sectigo_chain.tls.check import resolve_profiles

        key = (id(catalog), names)
        with self.lock:
            found = self._profiles.get(key)
            if found is None:
                found = self._profiles[key] = resolve_profiles(list(names), catalog)
        return found

    def desired(self, host: ResolvedHost, secrets: HostSecrets, catalog: Catalog) -> DesiredState:
        """The fix's desired state; hosts with the same settings share one (a PFX loads once)."""
        from sectigo_chain.state.recipe import sectigo_fix

        key = (id(catalog), host.site, host.hostname, host.ip, host.port, host.sni, host.pfx,
               host.pfx_password_env, host.restart, host.strategy, host.outbound_url)  # fmt: skip
        with self.lock:
            found = self._desired.get(key)
        if found is None:
            found = sectigo_fix(
                site=host.site, hostname=host.hostname, ip=host.ip, port=host.port, sni=host.sni,
                pfx=host.pfx, pfx_password=secrets.pfx_password, restart=host.restart,
                root_strategy=host.strategy, catalog=catalog,
            )  # fmt: skip
            if host.outbound_url is not None:
                from sectigo_chain.run.outbound import check_outbound_url

                url = check_outbound_url(host.outbound_url)
                found = found.model_copy(update={"outbound_url": url})
            with self.lock:
                found = self._desired.setdefault(key, found)
        return found

    def judge(
        self,
        chain: Sequence[x509.Certificate],
        host: ResolvedHost,
        catalog: Catalog,
        endpoint: str,
    ) -> ChainCheck:
        """Judge a chain read from a simulated host's model (memoised: hosts serving the same
        chain for the same name at the run's validation time get the same verdict, and hosts
        with the same label share one frozen row value)."""
        from sectigo_chain.run.verifier import judged_chain

        if not chain:
            return ChainCheck(source="sim-model", endpoint=endpoint, verdict="error",
                              error="the site serves no certificate")  # fmt: skip
        # certificates hash and compare by their DER (cheaper than a SHA-256 each)
        key = (id(catalog), host.profiles, host.hostname, tuple(chain))
        with self.lock:
            labelled = self._labelled.get((key, endpoint))
            found = self._memo.get(key)
        if labelled is not None:
            return labelled
        if found is None:
            report = judged_chain(
                chain, at=self.at, profiles=self.profiles(host.profiles, catalog),
                hostname=host.hostname, catalog=catalog,
            )  # fmt: skip
            found = chain_check(report, "sim-model", "")
        labelled = found.model_copy(update={"endpoint": endpoint})
        with self.lock:
            for memo in (self._memo, self._labelled):
                if len(memo) >= _MEMO_MAX:
                    memo.clear()
            self._memo[key] = found
            self._labelled[(key, endpoint)] = labelled
        return labelled


def chain_check(report: ChainReport, source: Any, endpoint: str) -> ChainCheck:
    """The row's summary of a :class:`~sectigo_chain.tls.report.ChainReport`."""
    chain = tuple(
        CertLine(
            common_name=c.common_name,
            issuer=_cn(c.issuer),
            thumbprint=c.thumbprint,
            not_after=c.not_after.date().isoformat(),
        )
        for c in report.served_chain
    )
    return ChainCheck(
        source=source,
        endpoint=endpoint,
        verdict=report.verdict,
        chain=chain,
        findings=tuple(f"{f.code} ({f.severity})" for f in report.findings if f.severity != "info"),
        profiles={name: p.valid for name, p in report.profiles.items()},
    )


def _cn(rfc4514: str) -> str:
    for part in rfc4514.split(","):
        if part.startswith("CN="):
            return part[3:]
    return rfc4514


def open_executor(
    host: ResolvedHost, secrets: HostSecrets, ctx: FleetContext | None = None
) -> Executor:
    """The executor for one host (``ctx.executor_factory`` when set): a ``SimulatedHost`` with
    the host's ``sim_faults``, a ``WinRMExecutor`` with its password, or the local one."""
    if ctx is not None and ctx.executor_factory is not None:
        return ctx.executor_factory(host, secrets)
    if host.scheme == "sim":
        from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
        from sectigo_chain.hosts.sim.state import parse_sim_target

        faults = Faults(**host.sim_faults.model_dump()) if host.sim_faults else None
        name, state = parse_sim_target(host.target.split("://", 1)[1])
        return SimulatedHost(name, faults=faults, state_file=state)
    if host.scheme == "winrm":
        from sectigo_chain.hosts.winrm import WinRMExecutor, parse_winrm_target

        settings = parse_winrm_target(
            host.target.strip(), password=secrets.winrm_password,
            auth=host.winrm_auth or "negotiate", cert_validation=host.winrm_cert_validation,
        )  # fmt: skip
        return WinRMExecutor(settings)
    from sectigo_chain.hosts.targets import open_target

    return open_target(host.target)


def model_of(executor: Executor) -> ChainModel | None:
    """What can tell the served chain without TLS: a ``SimulatedHost`` (the executor itself, or
    a wrapper's ``sim_host``), or any such object with ``served_chain(site)``."""
    for candidate in (executor, getattr(executor, "sim_host", None)):
        if candidate is not None and callable(getattr(candidate, "served_chain", None)):
            return cast("ChainModel", candidate)
    return None


def tls_endpoint(host: ResolvedHost) -> Endpoint:
    """Where to fetch a (non-simulated) host's served chain: ``(host, port, servername)``."""
    if host.check is not None:
        return host.check.host, host.check.port, host.check.servername or host.hostname
    if host.ip not in ("*", ""):
        address = host.ip
    elif host.scheme == "winrm":
        rest = host.target.split("://", 1)[1].rstrip("/").rsplit("@", 1)[-1]
        address = rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest
    else:
        address = "127.0.0.1"
    return address, host.port, host.hostname


def endpoint_label(endpoint: Endpoint | None) -> str:
    if endpoint is None:
        return ""
    return f"{endpoint[0]}:{endpoint[1]}" + (f" (SNI {endpoint[2]})" if endpoint[2] else "")
