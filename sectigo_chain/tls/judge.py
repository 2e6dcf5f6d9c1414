"""The pure part of ``check``: judge served chains (no I/O; the clock is a parameter).

:func:`report_for_chain` turns a chain (wire order, leaf first) into a
:class:`~sectigo_chain.tls.report.ChainReport`: :func:`sectigo_chain.x509.paths.analyze` for the
structure, :func:`sectigo_chain.trust.profiles.validate_many` for each client profile, and, when TLS
versions served different chains, every distinct chain judged too (its new findings prefixed
with the version, a profile failing over any version fails) plus ``INCONSISTENT_ACROSS_VERSIONS``.
:mod:`sectigo_chain.tls.check` re-exports what is public here.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence

from cryptography import x509

from sectigo_chain.errors import InputError
from sectigo_chain.tls.report import CertSummary, ChainReport, TLSVersionResult, verdict_for
from sectigo_chain.trust.profiles import Profile, ProfileResult, load_profiles, validate_many
from sectigo_chain.x509._record import Frozen
from sectigo_chain.x509.catalog import Catalog
from sectigo_chain.x509.certs import CertMemo
from sectigo_chain.x509.findings import fingerprint
from sectigo_chain.x509.paths import Finding, analyze, compare_versions

__all__ = [
    "DEFAULT_PROFILES",
    "Judgement",
    "JudgementCache",
    "ProfileSpecs",
    "assemble",
    "chain_key",
    "judge",
    "report_for_chain",
    "resolve_profiles",
    "summary",
]

DEFAULT_PROFILES: tuple[str, ...] = ("legacy", "modern")
ProfileSpecs = Sequence[str | Profile] | None


def resolve_profiles(
    profiles: ProfileSpecs = None, catalog: Catalog | None = None
) -> list[Profile]:
    """Profile objects for names/specs (``legacy``, ``android-14``, ``NAME=PEMFILE``) or
    :class:`Profile` objects. ``None`` means :data:`DEFAULT_PROFILES`; an empty sequence means
    no profile (the chain analysis alone decides the verdict). Raises InputError."""
    specs = DEFAULT_PROFILES if profiles is None else profiles
    if isinstance(specs, str):
        specs = [specs]
    names = [p for p in specs if isinstance(p, str)]
    loaded = iter(load_profiles(names, catalog=catalog))
    out = [next(loaded) if isinstance(p, str) else p for p in specs]
    seen: set[str] = set()
    for profile in out:
        if profile.name in seen:
            raise InputError(f"profile {profile.name!r} is given twice; give each profile once")
        seen.add(profile.name)
    return out


def report_for_chain(
    served: Sequence[x509.Certificate],
    *,
    target: str = "",
    at: dt.datetime | None = None,
    profiles: ProfileSpecs = None,
    hostname: str | None = None,
    catalog: Catalog | None = None,
    host: str = "",
    port: int = 443,
    servername: str | None = None,
    by_version: Mapping[str, Sequence[x509.Certificate]] | None = None,
    tls_versions: Mapping[str, TLSVersionResult] | None = None,
    duration: float = 0.0,
    notes: Sequence[str] = (),
) -> ChainReport:
    """Judge an already fetched chain (wire order, leaf first). Pure: no I/O.

    ``at`` is the validation time (default now). ``hostname`` is the name the leaf must cover
    (None: not checked by the analysis; profiles then check the leaf's own first name).
    ``by_version`` maps TLS versions to the chain each served, when known; chains that differ
    from ``served`` are judged too (see the module docstring). ``profiles=()`` selects none:
    the analysis alone decides.
    """
    if not served:
        raise InputError("empty chain: a server always sends at least its own certificate")
    when = at if at is not None else dt.datetime.now(dt.timezone.utc)
    resolved = resolve_profiles(profiles, catalog)  # Profile objects pass through
    judged = judge(served, dict(by_version or {}), resolved, when, hostname, catalog)
    return assemble(
        served,
        judged,
        target=target,
        host=host,
        port=port,
        servername=servername,
        hostname=hostname,
        at=when,
        tls_versions=tls_versions,
        duration=duration,
        notes=notes,
    )


class Judgement(Frozen):
    """What the chain(s) showed: the part of a report that depends only on the certificates
    (plus the name, time, profiles and catalog, which are fixed within one run)."""

    findings: tuple[Finding, ...]
    profiles: Mapping[str, ProfileResult]
    path_names: tuple[str, ...]


def judge(
    served: Sequence[x509.Certificate],
    by_version: Mapping[str, Sequence[x509.Certificate]],
    profiles: list[Profile],
    at: dt.datetime,
    hostname: str | None,
    catalog: Catalog | None,
) -> Judgement:
    """Analyse ``served`` and validate it per profile; add what other versions' chains show."""
    # Validation first: each path the verifier builds records who issued whom (signatures it
    # checked), which the analysis then need not check again.
    results = validate_many(served, profiles, at=at, hostname=hostname, catalog=catalog)
    analysis = analyze(served, at=at, catalog=catalog, hostname=hostname)
    findings = list(analysis.findings)
    keys = {version: chain_key(chain) for version, chain in by_version.items() if chain}
    judged = {chain_key(served)}
    for version, key in keys.items():
        if key not in judged:
            judged.add(key)
            chain = by_version[version]
            _merge_version(chain, version, profiles, at, hostname, catalog, findings, results)
    if len(set(keys.values())) > 1:
        differs = compare_versions(by_version)
        if differs is not None:
            findings.append(differs)
    return Judgement(tuple(findings), results, analysis.path_names)


def assemble(
    served: Sequence[x509.Certificate],
    judged: Judgement,
    *,
    target: str,
    host: str,
    port: int,
    servername: str | None,
    hostname: str | None,
    at: dt.datetime,
    tls_versions: Mapping[str, TLSVersionResult] | None,
    duration: float,
    notes: Sequence[str],
) -> ChainReport:
    """The report of one target from its judgement (shared by targets serving the same)."""
    summaries = tuple(summary(c) for c in served)
    return ChainReport(
        target=target or host or summaries[0].common_name,
        host=host,
        port=port,
        servername=servername,
        hostname=hostname,
        verdict=verdict_for(judged.findings, judged.profiles.values()),
        checked_at=at,
        duration=duration,
        tls_versions=dict(tls_versions or {}),
        served_chain=summaries,
        path_names=judged.path_names,
        findings=judged.findings,
        profiles=dict(judged.profiles),
        notes=tuple(notes),
    )


summary = CertMemo(functools.lru_cache(maxsize=4096)(CertSummary.of))
"""Memoised :meth:`CertSummary.of`: a fleet serves the same intermediates over and over."""


def chain_key(chain: Sequence[x509.Certificate]) -> tuple[str, ...]:
    """The SHA-256s of a chain (memoised per certificate)."""
    return tuple(fingerprint(c) for c in chain)


def _merge_version(
    chain: Sequence[x509.Certificate],
    version: str,
    profiles: list[Profile],
    at: dt.datetime,
    hostname: str | None,
    catalog: Catalog | None,
    findings: list[Finding],
    results: dict[str, ProfileResult],
) -> None:
    """Add what another TLS version's (different) chain shows that the first one did not."""
    have = {(f.code, f.severity) for f in findings}
    for finding in analyze(chain, at=at, catalog=catalog, hostname=hostname).findings:
        if (finding.code, finding.severity) not in have:
            findings.append(
                finding.model_copy(update={"detail": f"TLS {version}: {finding.detail}"})
            )
    other = validate_many(chain, profiles, at=at, hostname=hostname, catalog=catalog)
    for name, result in other.items():
        if results[name].valid and not result.valid:
            results[name] = result.model_copy(update={"reason": f"TLS {version}: {result.reason}"})


JudgementCache = dict[tuple[object, ...], Judgement]
