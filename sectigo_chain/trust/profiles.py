"""Client trust profiles and path validation against them (DESIGN.md section 7).

Profiles (named, SHA-256-pinned anchor sets) come from :mod:`sectigo_chain.trust.snapshots`
and are re-exported here: ``legacy`` (USERTrust RSA/ECC), ``legacy+aaa``, ``modern`` (Sectigo
R46/E46 only), ``both``, the dated snapshots of real clients (``android-14``,
``mozilla-current``, ...) and any user bundle ``NAME=PEMFILE``.

:func:`validate` runs ``cryptography.x509.verification`` (webpki rules, stricter than some
clients) at an injected time. When the chain fails it explains why with cheap retries: adding
the catalog's known intermediates (``incomplete_fixable``, the diagnosis of the IIS short
chain), moving the time inside the served certificates' validity (``expired`` /
``not_yet_valid``), checking a name the leaf covers (``hostname``); otherwise a structural path
search by name, key identifier and signature tells ``untrusted_root`` / ``incomplete`` (no path
to any anchor) from ``policy`` (a path exists, the verifier's stricter rules reject it).

A profile whose builder is OpenSSL's (``openssl-legacy``, ``openssl-1.0-*``; see
:mod:`sectigo_chain.x509.builders`) is judged by the OpenSSL emulation instead: valid when it
verifies. When it fails where a backtracking client succeeds the result is ``openssl_path`` and
names the certificate OpenSSL took and the fix; otherwise the backtracking diagnosis explains.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import itertools
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, Subject, VerificationError

from sectigo_chain.errors import InputError
from sectigo_chain.trust.snapshots import (
    BUILTIN_PROFILES,
    Profile,
    builtin_profile,
    list_profiles,
    load_profiles,
    snapshot_profile,
    user_profile,
)
from sectigo_chain.x509._record import Record, field
from sectigo_chain.x509.builders import BUILDERS, OpenSSLResult, openssl_verify
from sectigo_chain.x509.catalog import Catalog, default_catalog
from sectigo_chain.x509.certs import (
    NameKey,
    aki_hex,
    common_name,
    dns_names,
    name_keys,
    name_texts,
    sha256_hex,
    signed_by,
    ski_hex,
)
from sectigo_chain.x509.findings import fingerprint, issued_by, self_signed, subject_cn

__all__ = [
    "BUILTIN_PROFILES",
    "Classification",
    "Profile",
    "ProfileResult",
    "anchor_path",
    "builtin_profile",
    "list_profiles",
    "load_profiles",
    "snapshot_profile",
    "user_profile",
    "validate",
    "validate_many",
]

Classification = Literal[
    "ok",
    "incomplete_fixable",
    "incomplete",
    "untrusted_root",
    "expired",
    "not_yet_valid",
    "hostname",
    "policy",
    "openssl_path",
]
_UTC = dt.timezone.utc
_WEBPKI = "cryptography applies webpki rules, stricter than some clients"


class ProfileResult(Record):
    """The verdict of one profile on one served chain."""

    profile: str
    valid: bool
    classification: Classification
    # SHA-256 of each certificate, leaf .. anchor (only when valid)
    path: list[str] = field(default_factory=list)
    anchor: str | None = None  # the anchor's subject (RFC 4514), only when valid
    anchor_sha256: str | None = None
    reason: str | None = None
    # thumbprints of known CAs that would fix the chain
    missing_intermediates: list[str] = field(default_factory=list)
    hostname: str | None = None  # the name checked (None: no name given and no SAN in the leaf)
    hostname_from_leaf: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.valid:
            return f"{self.profile}: valid, anchored at {self.anchor}"
        return f"{self.profile}: FAILS ({self.classification}): {self.reason}"


# --- helpers ----------------------------------------------------------------------------------


def _cn(cert: x509.Certificate) -> str:
    return subject_cn(cert)


def _valid_at(cert: x509.Certificate, at: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


@functools.lru_cache(maxsize=1024)
def _subject(name: str) -> Subject:
    text = name.strip().rstrip(".").lower()
    try:
        return IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        return DNSName(text)
    except ValueError:
        raise InputError(f"not a valid hostname or IP address: {name!r}") from None


def _leaf_name(leaf: x509.Certificate) -> str | None:
    """The first non-wildcard DNS SAN (a wildcard is checked as ``www.<domain>``), else an IP."""
    names = dns_names(leaf)
    for n in names:
        if not n.startswith("*."):
            return n.lower()
    if names:
        return "www" + names[0][1:].lower()
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    ips = san.get_values_for_type(x509.IPAddress)
    return str(ips[0]) if ips else None


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    aki, ski = aki_hex(cert), ski_hex(issuer)
    if aki is not None and ski is not None and aki != ski:
        return False
    return signed_by(cert, issuer)


def anchor_path(
    chain: Sequence[x509.Certificate],
    anchors: Profile | Sequence[x509.Certificate],
    *,
    extra: Sequence[x509.Certificate] = (),
    max_depth: int = 8,
) -> list[x509.Certificate] | None:
    """A structural path from ``chain[0]`` to an anchor, or None.

    Issuers are matched by name, key identifier and signature (SHA-1 accepted), through
    ``chain[1:]`` and ``extra``; no validity, usage or policy check. ``chain[0]`` may be a CA
    (e.g. an issuing CA without a leaf). Self-issued certificates end a branch unless trusted.
    """
    if isinstance(anchors, Profile):
        prof = anchors
    else:
        prof = Profile(name="anchors", description="ad-hoc anchors", anchors=tuple(anchors))
    start = chain[0]
    if prof.trusts(start):
        return [start]
    by_subject: dict[x509.Name, dict[str, x509.Certificate]] = {}
    for cert in [*chain[1:], *extra]:
        by_subject.setdefault(cert.subject, {}).setdefault(sha256_hex(cert), cert)

    def walk(
        cert: x509.Certificate, path: list[x509.Certificate], seen: frozenset[str]
    ) -> list[x509.Certificate] | None:
        if len(path) > max_depth + 1:
            return None
        for anchor in prof.anchors_by_subject.get(cert.issuer, ()):
            if _issued(cert, anchor):
                return [*path, anchor]
        for digest, cand in by_subject.get(cert.issuer, {}).items():
            if digest in seen or cand.subject == cand.issuer or not _issued(cert, cand):
                continue
            found = walk(cand, [*path, cand], seen | {digest})
            if found is not None:
                return found
        return None

    return walk(start, [start], frozenset({sha256_hex(start)}))


def _top(leaf: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate:
    """Follow issuers greedily through ``pool``; the last certificate reached."""
    current, seen = leaf, {sha256_hex(leaf)}
    while current.subject != current.issuer:
        nxt = next((c for c in pool if sha256_hex(c) not in seen and _issued(current, c)), None)
        if nxt is None:
            break
        seen.add(sha256_hex(nxt))
        current = nxt
    return current


# --- validation -------------------------------------------------------------------------------


class _Ctx(NamedTuple):
    """What a failed validation needs to be explained."""

    profile: Profile
    leaf: x509.Certificate
    pool: list[x509.Certificate]  # served intermediates + the profile's preloaded ones
    at: dt.datetime
    subject: Subject | None
    checked: str | None


def _verify(
    profile: Profile,
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    at: dt.datetime,
    subject: Subject,
) -> tuple[list[x509.Certificate] | None, str]:
    builder = PolicyBuilder().store(profile.store).time(at).max_chain_depth(profile.max_depth)
    try:
        verifier = builder.build_server_verifier(subject)
    except ValueError:
        raise InputError(f"not a valid hostname or IP address: {subject.value!r}") from None
    # A self-signed certificate that is not an anchor never helps a path (the certificate
    # above it would have its name and key, so it issues the one below directly), but
    # cryptography's verifier takes it as its own issuer again and again up to the depth limit:
    # a self-signed R46 served before the cross-signed one gave a path holding it six times,
    # and a self-signed R46 alone cost four times a normal validation.
    intermediates = [c for c in intermediates if not self_signed(c) or profile.trusts(c)]
    try:
        built = verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        return None, str(exc)
    # Each certificate of the path was issued by the next one: names match and the verifier
    # checked the signature (the objects are ours: it returns the ones it was given).
    for child, parent in itertools.pairwise(built):
        issued_by.record(child, parent, True)
    return built, ""


def validate(
    chain: Sequence[x509.Certificate],
    profile: Profile,
    *,
    at: dt.datetime,
    hostname: str | None = None,
    catalog: Catalog | None = None,
) -> ProfileResult:
    """Validate a served chain (``chain[0]`` the leaf, the rest as served) for one profile.

    ``at`` is the validation time (a naive datetime is taken as UTC). Without ``hostname`` the
    leaf's first DNS SAN (else IP SAN) is checked, and the result's notes say so. ``catalog``
    (default: the profile's, else the packaged Sectigo catalog) supplies the known
    intermediates used to explain a failure. Raises :class:`InputError` for an empty chain or
    an invalid hostname; every finding about the chain is data in the result.
    """
    if not chain:
        raise InputError("empty chain: give at least the leaf certificate")
    at = at if at.tzinfo is not None else at.replace(tzinfo=_UTC)
    if profile.builder != "backtracking":
        return _validate_openssl(chain, profile, at, hostname, catalog)
    return _validate_backtracking(chain, profile, at, hostname, catalog)


def _validate_backtracking(
    chain: Sequence[x509.Certificate],
    profile: Profile,
    at: dt.datetime,
    hostname: str | None,
    catalog: Catalog | None,
) -> ProfileResult:
    leaf, served = chain[0], list(chain[1:])
    notes: list[str] = []
    if hostname is not None:
        subject: Subject | None = _subject(hostname)
        checked: str | None = hostname.strip().rstrip(".").lower()
    else:
        checked = _leaf_name(leaf)
        subject = _subject(checked) if checked else None
        notes.append(
            f"no hostname given: checked {checked}, taken from the leaf's subjectAltName"
            if checked
            else "no hostname given and the leaf has no subjectAltName: no name was checked"
        )
    ctx = _Ctx(profile, leaf, [*served, *profile.intermediates], at, subject, checked)
    error = "the leaf has no subjectAltName, which webpki clients require (they ignore the CN)"
    if subject is not None:
        built, error = _verify(profile, leaf, ctx.pool, at, subject)
        if built is not None:
            return ProfileResult(
                valid=True,
                classification="ok",
                path=[sha256_hex(c) for c in built],
                anchor=name_texts(built[-1])[0],
                anchor_sha256=sha256_hex(built[-1]),
                profile=profile.name,
                hostname=checked,
                hostname_from_leaf=hostname is None,
                notes=notes,
            )
    cls, reason, missing = _diagnose(ctx, error, catalog or profile.catalog or default_catalog())
    return ProfileResult(
        valid=False,
        classification=cls,
        reason=reason,
        missing_intermediates=missing,
        profile=profile.name,
        hostname=checked,
        hostname_from_leaf=hostname is None,
        notes=notes,
    )


def _validate_openssl(
    chain: Sequence[x509.Certificate],
    profile: Profile,
    at: dt.datetime,
    hostname: str | None,
    catalog: Catalog | None,
) -> ProfileResult:
    """Judge as OpenSSL does; explain a failure with the backtracking diagnosis."""
    leaf = chain[0]
    checked = hostname.strip().rstrip(".").lower() if hostname is not None else _leaf_name(leaf)
    if hostname is not None:
        _subject(hostname)  # the same InputError as the backtracking path for a bad name
    got = openssl_verify(
        leaf,
        [*chain[1:], *profile.intermediates],
        profile.anchors,
        at=at,
        hostname=checked,
        builder=profile.builder,  # type: ignore[arg-type]
    )
    if got.ok:
        notes = (
            []
            if hostname is not None
            else [
                f"no hostname given: checked {checked}, taken from the leaf's subjectAltName"
                if checked
                else "no hostname given and the leaf has no subjectAltName: no name was checked"
            ]
        )
        return ProfileResult(
            profile=profile.name,
            valid=True,
            classification="ok",
            path=[sha256_hex(c) for c in got.chain],
            anchor=name_texts(got.chain[-1])[0],
            anchor_sha256=sha256_hex(got.chain[-1]),
            hostname=checked,
            hostname_from_leaf=hostname is None,
            notes=notes,
        )
    other = _validate_backtracking(chain, profile, at, hostname, catalog)
    what = f"{BUILDERS[profile.builder].label} fails with {got.describe()}"
    if not other.valid:
        return other.model_copy(update={"reason": f"{other.reason}; {what}"})
    return other.model_copy(
        update={
            "valid": False,
            "classification": "openssl_path",
            "reason": f"{what}. {_openssl_story(got, chain, other, at)}",
            "path": [],
            "anchor": None,
            "anchor_sha256": None,
        }
    )


def _openssl_story(
    got: OpenSSLResult, chain: Sequence[x509.Certificate], other: ProfileResult, at: dt.datetime
) -> str:
    """Why OpenSSL fails where a backtracking client succeeds, and what to serve instead."""
    built = " -> ".join(_cn(c) for c in got.chain)
    backtracking = f"backtracking clients find a path to {other.anchor}"
    top = got.chain[-1]
    if got.error == 19 and top in chain[1:]:
        return (
            f"It takes the first matching issuer among the sent certificates and never "
            f"reconsiders it: it builds {built} and stops at the self-signed {_cn(top)}, which "
            f"it does not trust; {backtracking}. Fix: stop sending the self-signed {_cn(top)} "
            "(or at least send the cross-sign before it)"
        )
    stale = [c for c in got.chain if c in chain[1:] and not _valid_at(c, at)]
    if got.error in (9, 10) and stale:
        return (
            f"It builds {built} through {_cn(stale[0])}, which is out of its validity; "
            f"{backtracking}. Fix: stop sending {_cn(stale[0])}"
        )
    return f"It builds {built}; {backtracking}. Fix: serve the path in issuer order only"


def validate_many(
    chain: Sequence[x509.Certificate],
    profiles: Iterable[Profile],
    *,
    at: dt.datetime,
    hostname: str | None = None,
    catalog: Catalog | None = None,
) -> dict[str, ProfileResult]:
    """:func:`validate` for each profile, by profile name (each profile's store is cached)."""
    return {p.name: validate(chain, p, at=at, hostname=hostname, catalog=catalog) for p in profiles}


# --- explaining a failure ---------------------------------------------------------------------


_NAME_MISMATCH = "leaf certificate has no matching subjectAltName"
"""What cryptography's verifier says when the leaf does not cover the name checked."""


def _diagnose(ctx: _Ctx, error: str, catalog: Catalog) -> tuple[Classification, str, list[str]]:
    """(classification, reason, thumbprints of known CAs that would complete the chain).

    Retries with one relaxation at a time (add the catalog's intermediates, move the time
    inside the served certificates' validity, check a name the leaf covers), then all of them
    minus what is not needed; if none validates, searches a path structurally.
    """
    prof, leaf = ctx.profile, ctx.leaf
    have = {sha256_hex(c) for c in ctx.pool} | set(prof.anchor_set)
    known = [
        catalog.certificate(e.id)
        for e in catalog.entries
        if e.shipped and e.role != "self_signed_root" and e.sha256 not in have
    ]
    served = [leaf, *ctx.pool]
    moved = _time_inside(served, ctx.at)
    alt = _leaf_name(leaf)
    alt_subject = _subject(alt) if alt is not None and alt != ctx.checked else None
    available = [
        key
        for key, usable in (
            ("intermediates", bool(known)),
            ("time", moved is not None),
            ("hostname", alt_subject is not None),
        )
        if usable and ctx.subject is not None
    ]

    # A relaxation only changes the time, the name or the pool (to served + known), so it
    # cannot validate where no path exists in served + known: when no structural path (names,
    # key identifiers, signatures; one level deeper than the verifier's limit) reaches an
    # anchor, the retries are skipped (each is a full verifier run).
    if available and _no_path(leaf, ctx.pool, known, prof):
        return _explain_structural(ctx, error, known, catalog, path=None)

    # The verifier checks the leaf's name before it builds a path: when that is what failed,
    # no retry that keeps the name can validate (a test pins the verifier's wording).
    name_failed = _NAME_MISMATCH in error

    def attempt(keys: frozenset[str]) -> list[x509.Certificate] | None:
        subject = alt_subject if "hostname" in keys else ctx.subject
        if subject is None or (name_failed and "hostname" not in keys):
            return None
        pool = [*ctx.pool, *known] if "intermediates" in keys else ctx.pool
        at = moved if "time" in keys and moved is not None else ctx.at
        return _verify(prof, leaf, pool, at, subject)[0]

    needed: frozenset[str] | None = None
    built: list[x509.Certificate] | None = None
    for key in available:
        if (built := attempt(frozenset({key}))) is not None:
            needed = frozenset({key})
            break
    if needed is None and len(available) > 1 and (built := attempt(frozenset(available))):
        needed = frozenset(available)
        for key in available:  # drop what is not needed
            smaller = needed - {key}
            if smaller and (fewer := attempt(smaller)) is not None:
                needed, built = smaller, fewer
    if needed is not None and built is not None:
        return _explain_fix(ctx, needed, built, served, catalog)
    return _explain_structural(ctx, error, known, catalog)


def _no_path(
    leaf: x509.Certificate,
    pool: list[x509.Certificate],
    known: list[x509.Certificate],
    prof: Profile,
) -> bool:
    """True if no chain of issuers (names match, signature verifies) leads from ``leaf``
    through ``pool`` and ``known`` to one of ``prof``'s anchors within one level more than
    the verifier allows. Looser than :func:`anchor_path` (no key identifier test; self-issued
    certificates, e.g. key roll-overs, are followed), so a path the verifier could build is
    never missed."""
    if prof.trusts(leaf):
        return False
    by_subject: dict[NameKey, list[x509.Certificate]] = {}
    for cand in [*pool, *known]:
        by_subject.setdefault(name_keys(cand)[0], []).append(cand)
    level, seen = [leaf], {fingerprint(leaf)}
    for _ in range(prof.max_depth + 2):
        following: list[x509.Certificate] = []
        for cert in level:
            if any(issued_by(cert, a) for a in prof.anchors_by_subject.get(cert.issuer, ())):
                return False
            for cand in by_subject.get(name_keys(cert)[1], ()):
                digest = fingerprint(cand)
                if digest not in seen and issued_by(cert, cand):
                    seen.add(digest)
                    following.append(cand)
        if not following:
            return True
        level = following
    return True


def _time_inside(certs: Sequence[x509.Certificate], at: dt.datetime) -> dt.datetime | None:
    """A time inside every served certificate's validity, if ``at`` is outside one of them."""
    if all(_valid_at(c, at) for c in certs):
        return None
    lo = max(c.not_valid_before_utc for c in certs)
    hi = min(c.not_valid_after_utc for c in certs)
    if lo > hi:
        lo, hi = certs[0].not_valid_before_utc, certs[0].not_valid_after_utc
    return lo + (hi - lo) / 2


def _time_reason(certs: Sequence[x509.Certificate], at: dt.datetime) -> tuple[Classification, str]:
    expired = [c for c in certs if c.not_valid_after_utc < at]
    if expired:
        what = ", ".join(f"{_cn(c)} (expired {c.not_valid_after_utc:%Y-%m-%d})" for c in expired)
        return "expired", f"expired certificate on the chain: {what}; renew or stop serving it"
    early = [c for c in certs if c.not_valid_before_utc > at]
    what = ", ".join(f"{_cn(c)} (valid from {c.not_valid_before_utc:%Y-%m-%d})" for c in early)
    return "not_yet_valid", f"certificate not yet valid: {what}; check the clocks"


def _explain_fix(
    ctx: _Ctx,
    needed: frozenset[str],
    built: list[x509.Certificate],
    served: list[x509.Certificate],
    catalog: Catalog,
) -> tuple[Classification, str, list[str]]:
    prof = ctx.profile
    parts: list[str] = []
    classes: list[Classification] = []
    missing: list[str] = []
    if "time" in needed:
        cls, text = _time_reason(served, ctx.at)
        classes.append(cls)
        parts.append(text)
    if "hostname" in needed:
        classes.append("hostname")
        names = ", ".join(dns_names(ctx.leaf)) or "no DNS names"
        parts.append(f"the leaf does not cover {ctx.checked} (it covers {names})")
    if "intermediates" in needed:
        classes.append("incomplete_fixable")
        have = {sha256_hex(c) for c in served}
        fixes = []
        for cert in built[1:-1]:
            if sha256_hex(cert) in have:
                continue
            entry = catalog.identify(cert)
            thumb = entry.thumbprint if entry and entry.thumbprint else ""
            missing.append(thumb)
            fixes.append(f"{entry.name if entry else _cn(cert)} (thumbprint {thumb})")
        text = f"{prof.name} clients fail; fixable by serving {' and '.join(fixes)}"
        untrusted_roots = [c for c in served[1:] if c.subject == c.issuer and not prof.trusts(c)]
        if untrusted_roots:
            text += (
                f" instead of the self-signed {_cn(untrusted_roots[0])} sent now, which "
                f"{prof.name} clients do not trust"
            )
        parts.append(text)
    order = {"expired": 0, "not_yet_valid": 0, "hostname": 1, "incomplete_fixable": 2}
    classes.sort(key=lambda c: order[c])
    return classes[0], "; ".join(parts), missing


def _explain_structural(
    ctx: _Ctx,
    error: str,
    known: list[x509.Certificate],
    catalog: Catalog,
    *,
    path: list[x509.Certificate] | Literal[False] | None = False,
) -> tuple[Classification, str, list[str]]:
    """``path``: the structural path when the caller already searched (None: there is none)."""
    prof, leaf = ctx.profile, ctx.leaf
    if path is False:
        path = anchor_path([leaf, *ctx.pool], prof, extra=known, max_depth=prof.max_depth)
    if path is not None:
        anchor = _cn(path[-1])
        off = [c for c in path if not _valid_at(c, ctx.at)]
        if off:
            cls, text = _time_reason(off, ctx.at)
            return cls, f"{text} (on the path to {anchor})", []
        have = {sha256_hex(c) for c in ctx.pool}
        extra = [c for c in path[1:-1] if sha256_hex(c) not in have]
        text = f"a path to {anchor} exists but the verifier rejects it: {error} ({_WEBPKI})"
        if ctx.subject is not None and _leaf_name(leaf) is None:
            text += "; the leaf has no subjectAltName, which webpki clients require"
        if extra:
            text += "; the path also needs " + ", ".join(_cn(c) for c in extra)
        thumbs = [e.thumbprint for c in extra if (e := catalog.identify(c)) and e.thumbprint]
        return "policy", text, thumbs
    top = _top(leaf, [*ctx.pool, *known])
    if top.subject == top.issuer:
        return (
            "untrusted_root",
            f"the chain ends at {_cn(top)}, a root {prof.name} clients do not trust",
            [],
        )
    issuer = common_name(top.issuer)
    if top.issuer in prof.anchors_by_subject:
        return (
            "untrusted_root",
            f"{_cn(top)} names {issuer} as its issuer; {prof.name} trusts a root of that name, "
            "but with another key (a different certificate with the same name)",
            [],
        )
    return (
        "incomplete",
        f"the issuer of {_cn(top)} ({issuer}) was not served and is not a known CA: the chain "
        f"is incomplete, or it leads to a root {prof.name} clients do not trust",
        [],
    )
