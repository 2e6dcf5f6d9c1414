"""Check what TLS endpoints serve: fetch the chain, analyse it, validate it per client profile.

``host:port -> tls.fetch_served_chain -> chain.analyze + profiles.validate -> ChainReport``
(DESIGN.md section 2). :func:`check_endpoint` checks one endpoint and raises the
:class:`~sectigo_chain.errors.TLSFetchError` family when nothing could be fetched;
:func:`check_many` checks many at once (all handshakes concurrent, on one selector) and returns
one :class:`ChainReport` or :class:`CheckFailure` per target, so one target never spoils
another. :func:`report_for_chain` is the pure part (no I/O, the clock is a parameter): it judges
an already fetched chain.

The verdict: ``fail`` when a selected profile does not validate or a finding is an error,
``warn`` when only warnings exist, ``pass`` otherwise. The profiles default to ``legacy`` and
``modern`` and are loaded once per call, not per target.

By default each endpoint gets one handshake in which the server picks TLS 1.2 or 1.3: servers
choose their certificate by name (SNI) and key type, not by protocol version, so a second
handshake rarely shows anything new; it is made only when the first fails for another reason
than reachability (see :mod:`sectigo_chain.tls.fetch`). ``tls_versions=("1.2", "1.3")`` does
one handshake per version. When TLS versions serve different chains, every distinct chain is
judged: its findings are added (prefixed with the version), a
profile fails if it fails over any version, and ``INCONSISTENT_ACROSS_VERSIONS`` is raised.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Sequence

from sectigo_chain.errors import InputError, TLSFetchError
from sectigo_chain.tls._engine import is_ip
from sectigo_chain.tls.fetch import FetchResult, Target, fetch_served_chain, judged_as_completed
from sectigo_chain.tls.judge import (
    DEFAULT_PROFILES,
    JudgementCache,
    ProfileSpecs,
    assemble,
    chain_key,
    judge,
    report_for_chain,
    resolve_profiles,
)
from sectigo_chain.tls.report import (
    CertSummary,
    ChainReport,
    CheckFailure,
    TLSVersionResult,
    Verdict,
    verdict_for,
    worst_verdict,
)
from sectigo_chain.trust.profiles import Profile
from sectigo_chain.x509._record import replace
from sectigo_chain.x509.catalog import Catalog
from sectigo_chain.x509.findings import Finding

__all__ = [
    "DEFAULT_PROFILES",
    "DEFAULT_TIMEOUT",
    "CertSummary",
    "ChainReport",
    "CheckFailure",
    "TLSVersionResult",
    "Verdict",
    "check_endpoint",
    "check_many",
    "parse_target",
    "report_for_chain",
    "resolve_profiles",
    "verdict_for",
    "worst_verdict",
]


DEFAULT_TIMEOUT = 5.0
"""Seconds one endpoint's fetch (all TLS versions) may take."""

TargetLike = Target | str | tuple[str, int]


def parse_target(text: str, *, default_port: int = 443) -> Target:
    """``host``, ``host:port``, ``[IPv6]:port`` or a bare IPv6 address -> :class:`Target`.

    Raises :class:`InputError` for an empty target, a URL, a missing or bad port, an
    unclosed ``[``, a bare name with spaces or colons that is not an IPv6 address.
    """
    raw = text
    text = text.strip()
    if not text:
        raise InputError("empty target: give HOST or HOST:PORT")
    if "://" in text or "/" in text:
        raise InputError(f"target {raw!r} looks like a URL: give HOST or HOST:PORT")
    if any(ch.isspace() for ch in text):
        raise InputError(f"target {raw!r} contains spaces: give HOST or HOST:PORT")
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or not is_ip(host) or ":" not in host:
            raise InputError(f"target {raw!r}: use [IPv6-address] or [IPv6-address]:PORT")
        if rest and not rest.startswith(":"):
            raise InputError(f"target {raw!r}: use [IPv6-address]:PORT")
        return Target(host, _port(rest[1:], raw) if rest else default_port)
    if text.count(":") > 1:
        if not is_ip(text):
            raise InputError(f"target {raw!r}: write an IPv6 address with a port as [addr]:PORT")
        return Target(text, default_port)
    host, sep, port = text.partition(":")
    if not host:
        raise InputError(f"target {raw!r} has no host: give HOST or HOST:PORT")
    return Target(host, _port(port, raw) if sep else default_port)


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(f"target {raw!r}: port {text!r} is not a TCP port (1-65535)")
    return int(text)


def _report(
    fetched: FetchResult,
    profiles: list[Profile],
    at: dt.datetime,
    catalog: Catalog | None,
    started: float,
    requested: Sequence[str] | None,
    cache: JudgementCache | None = None,
) -> ChainReport:
    """The report of one fetch. ``cache`` shares judgements between targets of one run that
    served exactly the same chains for the same name (e.g. the nodes of a load balancer).
    ``requested=None`` (one negotiated handshake): the versions that were tried, in order."""
    versions: dict[str, TLSVersionResult] = {}
    notes: list[str] = []
    if requested is None:
        requested = sorted({*fetched.handshakes, *fetched.errors})
    for version in requested:
        served = fetched.handshakes.get(version)
        if served is not None:
            versions[version] = TLSVersionResult(
                ok=True,
                cipher=served.cipher,
                chain=chain_key(served.certificates),
                truncated=served.truncated,
            )
            if served.truncated:
                notes.append(
                    f"TLS {version}: the server sent {served.sent_count} certificates; only the "
                    f"first {len(served.der)} were kept and judged"
                )
        elif version in fetched.errors:
            versions[version] = TLSVersionResult(ok=False, error=str(fetched.errors[version]))
    chain = fetched.chain.certificates
    by_version = {v: s.certificates for v, s in fetched.handshakes.items()}
    hostname = fetched.servername  # the SNI name sent; None for an IP address without a name
    key = (hostname, tuple((v, r.chain) for v, r in versions.items() if r.ok))
    judged = cache.get(key) if cache is not None else None
    if judged is None:
        judged = judge(chain, by_version, profiles, at, hostname, catalog)
        if cache is not None:
            cache[key] = judged
    damaged = dict.fromkeys(d for s in fetched.handshakes.values() for d in s.damaged)
    if damaged:  # a served certificate that does not parse is a chain problem, not an error
        extra = tuple(
            Finding(code="damaged-certificate", severity="error", detail=f"{d} (replace it)")
            for d in damaged
        )
        judged = replace(judged, findings=extra + judged.findings)
    return assemble(
        chain,
        judged,
        target=fetched.target,
        host=fetched.host,
        port=fetched.port,
        servername=fetched.servername,
        hostname=hostname,
        at=at,
        tls_versions=versions,
        duration=time.monotonic() - started,
        notes=notes,
    )


def check_endpoint(
    host: str,
    port: int = 443,
    *,
    servername: str | None = None,
    profiles: ProfileSpecs = None,
    timeout: float = DEFAULT_TIMEOUT,
    at: dt.datetime | None = None,
    catalog: Catalog | None = None,
    tls_versions: Sequence[str] | None = None,
) -> ChainReport:
    """Fetch and judge the chain ``host:port`` serves.

    ``servername`` is the SNI name (default: ``host`` unless it is an IP address;
    ``""`` sends none); it is also the name the leaf must cover. ``profiles`` are names,
    ``NAME=PEMFILE`` specs or :class:`Profile` objects (default ``legacy`` and ``modern``);
    ``catalog`` is the CA catalog (default: the packaged Sectigo one; tests pass a lab one).
    ``tls_versions=None`` (default): one handshake, the server picks TLS 1.2 or 1.3 (a
    handshake per version only if that one fails); ``("1.2", "1.3")``: one per version.
    Raises :class:`InputError` for bad arguments and the :class:`TLSFetchError` family
    (connect, timeout, handshake) when no TLS version worked.
    """
    if isinstance(host, str) and ("://" in host or "/" in host):
        raise InputError(f"target {host!r} looks like a URL: give the host name (and port)")
    started = time.monotonic()
    resolved = resolve_profiles(profiles, catalog)
    fetched = fetch_served_chain(
        host, port, servername=servername, tls_versions=tls_versions, timeout=timeout
    )
    when = at if at is not None else dt.datetime.now(dt.timezone.utc)
    return _report(fetched, resolved, when, catalog, started, tls_versions)


def check_many(
    targets: Iterable[TargetLike],
    *,
    servername: str | None = None,
    profiles: ProfileSpecs = None,
    timeout: float = DEFAULT_TIMEOUT,
    at: dt.datetime | None = None,
    catalog: Catalog | None = None,
    tls_versions: Sequence[str] | None = None,
    concurrency: int = 64,
    helper_process: bool = False,
) -> list[ChainReport | CheckFailure]:
    """Check many endpoints at once; one report or failure per target, in the order given.

    Targets are :class:`Target` objects (their own ``servername`` is kept), ``"host:port"``
    strings or ``(host, port)`` tuples (these get ``servername``). ``concurrency`` bounds the
    connections open at once; ``timeout`` bounds each target's fetch from its first
    connection; ``tls_versions`` is as for :func:`check_endpoint`. Bad targets or profiles
    raise :class:`InputError` before anything connects. ``helper_process=True`` does the
    handshakes in a forked helper process while this one judges (Linux, single-threaded
    callers; see :func:`~sectigo_chain.tls.fetch.fetch_as_completed`): the CLI does it for
    long lists.
    """
    parsed = [_as_target(t, servername) for t in targets]
    resolved = resolve_profiles(profiles, catalog)
    started = time.monotonic()
    when = at if at is not None else dt.datetime.now(dt.timezone.utc)
    cache: JudgementCache = {}

    def judge(index: int, outcome: FetchResult | TLSFetchError) -> ChainReport | CheckFailure:
        target = parsed[index]
        if isinstance(outcome, TLSFetchError):
            return _failure(target, outcome, unreachable=True)
        try:
            return _report(outcome, resolved, when, catalog, started, tls_versions, cache)
        except Exception as exc:  # one target's odd chain must not end the others' checks
            import logging  # only here: `check` loads no logging otherwise (start-up time)

            logging.getLogger(__name__).debug("analysing %s failed", target.label, exc_info=True)
            return _failure(target, exc, unreachable=False)

    if helper_process:  # not imported otherwise (start-up time)
        from sectigo_chain.tls._helper import Judged
    fetching = judged_as_completed(
        parsed,
        judge,
        tls_versions=tls_versions,
        timeout=timeout,
        concurrency=concurrency,
        helper_process=helper_process,
    )
    out: list[ChainReport | CheckFailure | None] = [None] * len(parsed)
    # Each target is judged as soon as its handshakes are done, while the servers go on with
    # the handshakes under way (their time is not counted against the targets' deadlines).
    # Closed here, not whenever it is collected: an error or Ctrl-C ends connections and any
    # helper process at once.
    with contextlib.closing(fetching):
        for index, outcome in fetching:
            if helper_process and isinstance(outcome, Judged):
                out[index] = outcome.value
            else:
                out[index] = judge(index, outcome)
    done = [r for r in out if r is not None]
    if len(done) != len(out):  # pragma: no cover - the engine reports every target once
        raise TLSFetchError("the TLS engine lost a target; please report this as a bug")
    return done


def _as_target(value: TargetLike, servername: str | None) -> Target:
    if isinstance(value, Target):
        return value
    if isinstance(value, str):
        parsed = parse_target(value)
        return Target(parsed.host, parsed.port, servername)
    host, port = value
    return Target(host, port, servername)


def _failure(target: Target, exc: BaseException, *, unreachable: bool) -> CheckFailure:
    message = str(exc) if unreachable else f"could not analyse the served chain: {exc}"
    return CheckFailure(
        target=target.label,
        servername=target.sni,
        error=type(exc).__name__,
        message=message,
        unreachable=unreachable,
    )
