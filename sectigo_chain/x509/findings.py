"""The vocabulary of chain findings, and memoised certificate facts shared by the chain modules.

:data:`FINDING_CODES` documents every code :func:`sectigo_chain.x509.paths.analyze` can raise;
:class:`Finding` and :class:`ChainAnalysis` are its results; :func:`compare_versions` checks that
every TLS version served the same chain. The memoised helpers (:func:`issued_by` above all)
keep path building and analysis fast when the simulated host calls them per site.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from sectigo_chain.x509._record import Record
from sectigo_chain.x509.certs import (
    CertMemo,
    CertPairMemo,
    Encoding,
    PublicFormat,
    common_name,
    dns_names,
    sha256_hex,
    signed_by,
)

__all__ = [
    "FINDING_CODES",
    "ChainAnalysis",
    "Family",
    "Finding",
    "Severity",
    "basic_constraints",
    "compare_versions",
    "fingerprint",
    "hostname_matches",
    "issued_by",
    "self_signed",
    "spki",
    "subject_cn",
    "utc",
    "valid_at",
]

Severity = Literal["error", "warning", "info"]
Family = Literal["R46", "E46"]

#: Every finding code: its usual severity and what it means (docs/chains.md renders this).
FINDING_CODES: dict[str, tuple[Severity, str]] = {
    "INCOMPLETE": ("error", "an issuer between the server certificate and a root is not sent"),
    "SHORT_CHAIN_R46": (
        "error",
        "the chain stops at an R36/E36 CA issued by R46/E46 and no cross-sign is sent: "
        "clients without R46/E46 fail (the IIS short chain)",
    ),
    "SELF_SIGNED_R46_SENT": (
        "error",
        "the self-signed R46/E46 is sent instead of, or before, the USERTrust cross-sign: legacy "
        "clients fail, OpenSSL-based ones also when it comes first (warning when the cross-sign "
        "is sent before it)",
    ),
    "CROSS_SIGN_MISSING": (
        "error",
        "an R46/E46 chain reaches the root through another certificate (e.g. the AAA "
        "cross-sign) instead of the USERTrust cross-sign",
    ),
    "CONTAINS_ANCHOR": ("warning", "a self-signed root is sent at the top of the chain"),
    "EXPIRED_SENT": (
        "error",
        "an expired certificate is sent (warning when it is not on the path)",
    ),
    "NOT_YET_VALID": (
        "error",
        "a certificate that is not valid yet is sent (warning when it is not on the path)",
    ),
    "HOSTNAME_MISMATCH": ("error", "the server certificate does not cover the host name"),
    "DUPLICATE": ("warning", "the same certificate is sent more than once"),
    "INCORRECT_ORDER": (
        "error",
        "the certificates are not sent leaf first, each then its issuer (the detail says which "
        "path builders tolerate the order)",
    ),
    "EXTRA_CERTS": ("warning", "certificates unrelated to the path are sent"),
    "WEAK_SIGNATURE": (
        "warning",
        "a sent non-root certificate is signed with SHA-1/MD5, or a key is RSA < 2048 / EC < 256",
    ),
    "UNKNOWN_ISSUER": (
        "info",
        "the top CA's issuer is not a known Sectigo CA: completeness cannot be judged here",
    ),
    "INCONSISTENT_ACROSS_VERSIONS": (
        "warning",
        "different TLS versions served different chains",
    ),
}


class Finding(Record):
    """One problem (or fact) about a served chain."""

    code: str
    severity: Severity
    detail: str
    certificates: tuple[str, ...] = ()  # SHA-256 (upper-case hex) of the certificates concerned

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.code}: {self.detail}"


class ChainAnalysis(Record):
    """What :func:`analyze` found. ``path`` is the best issuer-ordered path through the served
    certificates, leaf first (SHA-256s); ``family`` is R46/E46 when the chain belongs there."""

    served: tuple[str, ...]
    path: tuple[str, ...]
    path_names: tuple[str, ...]
    family: Family | None
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not self.errors

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(f.code for f in self.findings)

    def has(self, code: str) -> bool:
        """True if a finding with ``code`` was raised."""
        return code in self.codes

    def __str__(self) -> str:
        lines = [" -> ".join(self.path_names) or "(nothing served)"]
        lines += [f"  {f}" for f in self.findings] or ["  no findings"]
        return "\n".join(lines)


# --- memoised certificate facts ----------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Memoised :func:`~sectigo_chain.x509.certs.signed_by`: names match, signature verifies."""
    return signed_by(cert, issuer)


def _spki(cert: x509.Certificate) -> bytes:
    """Memoised DER SubjectPublicKeyInfo."""
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


# By object first (a dict lookup), then by value (equal certificates parsed twice share).
issued_by = CertPairMemo(_issued_by)
fingerprint = CertMemo(functools.lru_cache(maxsize=4096)(sha256_hex))
spki = CertMemo(functools.lru_cache(maxsize=4096)(_spki))
subject_cn = CertMemo(lambda cert: common_name(cert.subject))
"""Memoised common name (else RFC 4514 string) of the subject."""


def self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the certificate's own key verifies it."""
    return issued_by(cert, cert)


def utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (a naive value is taken as UTC)."""
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def valid_at(cert: x509.Certificate, at: datetime) -> bool:
    """True if ``at`` is inside the certificate's validity period."""
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    """The basicConstraints extension, or None when absent or malformed."""
    try:
        value = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return value if isinstance(value, x509.BasicConstraints) else None


# --- host names ----------------------------------------------------------------------------


def _dns_match(pattern: str, host: str) -> bool:
    if pattern == host:
        return True
    if not pattern.startswith("*.") or "*" in pattern[2:] or pattern.count(".") < 2:
        return False  # only a whole left-most label may be a wildcard, and never "*.tld"
    label, dot, rest = host.partition(".")
    return bool(dot) and bool(label) and rest == pattern[2:]


@functools.lru_cache(maxsize=1024)
def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` (``[v6]`` too) stands for, else None; memoised, as every
    target's name is asked about several times."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def hostname_matches(cert: x509.Certificate, hostname: str) -> bool:
    """True if the SAN of ``cert`` covers ``hostname`` (DNS names with RFC 6125 wildcards:
    ``*.example.com`` matches exactly one label; IP addresses only against SAN IP entries)."""
    host = hostname.strip().rstrip(".").lower()
    ip = _ip_of(host)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    if not isinstance(san, x509.SubjectAlternativeName):
        return False
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    return any(_dns_match(n.lower().rstrip("."), host) for n in dns_names(cert))


def compare_versions(chains: Mapping[str, Sequence[x509.Certificate]]) -> Finding | None:
    """``INCONSISTENT_ACROSS_VERSIONS`` when TLS versions (keys, e.g. ``"TLSv1.2"``) served
    different chains (certificates or order); None when they agree. Empty chains (a version
    that did not connect) are ignored."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for version, chain in chains.items():
        if chain:
            groups.setdefault(tuple(fingerprint(c) for c in chain), []).append(version)
    if len(groups) < 2:
        return None
    all_certs = {fingerprint(c): c for chain in chains.values() for c in chain}
    common = set.intersection(*(set(k) for k in groups))
    differing = sorted(set(all_certs) - common)
    detail = "; ".join(
        f"{', '.join(versions)}: " + " -> ".join(common_name(all_certs[s].subject) for s in key)
        for key, versions in groups.items()
    )
    return Finding(
        code="INCONSISTENT_ACROSS_VERSIONS",
        severity=FINDING_CODES["INCONSISTENT_ACROSS_VERSIONS"][0],
        detail=f"different chains per TLS version: {detail}",
        certificates=tuple(differing),
    )
