"""Structural findings about a served chain: ``analyze(served, at=..., catalog=...)``.

Pure: no I/O, the clock is a parameter. Each finding has a stable code (see
:data:`~sectigo_chain.x509.findings.FINDING_CODES`) and a severity. Catalog knowledge (which
certificate is the self-signed R46/E46, which is the USERTrust cross-sign, which key issued an
R36/E36) comes from the ``catalog`` argument (the real Sectigo catalog by default; tests pass a
lab catalog).

One primary code per R46/E46 problem: ``SHORT_CHAIN_R46`` when the chain stops at the R36/E36
CA, ``SELF_SIGNED_R46_SENT`` when the self-signed R46/E46 stands where the cross-sign belongs,
``CROSS_SIGN_MISSING`` only when some other certificate with the R46/E46 key (for example the
AAA cross-sign) stands there.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sectigo_chain.x509.builders import first_match_path
from sectigo_chain.x509.catalog import Catalog, RootKey, default_catalog
from sectigo_chain.x509.certs import aki_hex, common_name, dns_names
from sectigo_chain.x509.findings import (
    FINDING_CODES,
    ChainAnalysis,
    Family,
    Finding,
    Severity,
    basic_constraints,
    fingerprint,
    hostname_matches,
    issued_by,
    self_signed,
    subject_cn,
    utc,
    valid_at,
)

__all__ = ["analyze"]

_CODE_ORDER = {code: i for i, code in enumerate(FINDING_CODES)}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_WEAK_SIG_OIDS = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.3.14.3.2.29": "sha1WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10040.4.3": "dsa-with-sha1",
}
_MAX_PATH_SEARCH = 2000  # partial paths explored in a served chain before giving up


def _is_ca(cert: x509.Certificate) -> bool:
    bc = basic_constraints(cert)
    return bc is not None and bc.ca


def _name(cert: x509.Certificate) -> str:
    return subject_cn(cert)


def _label(cert: x509.Certificate, cat: Catalog) -> str:
    """The catalog's display name when known (it tells a cross-sign from a root), else the CN."""
    entry = cat.identify(cert)
    if entry is not None:
        return entry.name
    if cat.root_key_of(cert) is not None and not self_signed(cert):
        return f"{_name(cert)} (cross-signed by {common_name(cert.issuer)})"
    return _name(cert)


# --- catalog knowledge ---------------------------------------------------------------------


def _is_self_signed_r46(cert: x509.Certificate, cat: Catalog) -> bool:
    entry = cat.identify(cert)
    if entry is not None:
        return entry.role == "self_signed_root" and entry.root in ("R46", "E46")
    key = cat.root_key_of(cert)
    if key not in ("R46", "E46") or not self_signed(cert):
        return False
    try:
        return cat.certificate(cat.self_signed(key).id).subject == cert.subject
    except KeyError:
        return False


def _is_usertrust_cross(cert: x509.Certificate, cat: Catalog, family: Family) -> bool:
    try:
        wanted = cat.cross_sign(family)
    except KeyError:
        return False
    entry = cat.identify(cert)
    if entry is not None:
        return entry.id == wanted.id
    return (
        cat.root_key_of(cert) == family
        and not self_signed(cert)
        and common_name(cert.issuer) == wanted.issuer_cn
    )


def _missing_issuer(
    cert: x509.Certificate, cat: Catalog
) -> tuple[Literal["root", "ca", "unknown"], RootKey | None, str]:
    """What issued ``cert`` when the issuer was not sent: a root key (R46, USERTrust ...), a
    known CA (with the root it chains to), or unknown. By signature, then AKI, then name."""
    for known in cat.certificates():
        if known is not cert and issued_by(cert, known):
            key = cat.root_key_of(known)
            if key is not None:
                return "root", key, _name(known)
            entry = cat.identify(known)
            return "ca", entry.root if entry else None, _name(known)
    aki = aki_hex(cert)
    issuer_cn = common_name(cert.issuer)
    for matches in (
        [e for e in cat.entries if aki is not None and e.ski == aki],
        [e for e in cat.entries if e.subject_cn == issuer_cn],
    ):
        roots = [e for e in matches if e.role != "issuing_ca"]
        if roots:
            return "root", roots[0].root, roots[0].subject_cn
        if matches:
            return "ca", matches[0].root, matches[0].subject_cn
    return "unknown", None, issuer_cn


# --- the served path -----------------------------------------------------------------------


def _pick_leaf(unique: list[x509.Certificate]) -> int:
    """The leaf is the first certificate, unless that one issued another served certificate;
    then it is the first bottom certificate (one that issued none), an end-entity preferred."""
    bottoms = [
        i
        for i, cert in enumerate(unique)
        if not any(other is not cert and issued_by(other, cert) for other in unique)
    ]
    if not bottoms or bottoms[0] == 0:
        return 0
    end_entities = [i for i in bottoms if not _is_ca(unique[i])]
    return (end_entities or bottoms)[0]


def _best_path(
    leaf: x509.Certificate, certs: list[x509.Certificate], at: datetime, cat: Catalog
) -> list[x509.Certificate]:
    """Every simple path leaf -> issuer -> ... through ``certs``; the best one wins: longest,
    then most certificates valid at ``at``, then not topped by a self-signed R46/E46, then the
    one closest to the wire order."""
    pos = {fingerprint(c): i for i, c in enumerate(certs)}
    best: list[x509.Certificate] = [leaf]
    best_key: tuple[object, ...] | None = None
    stack: list[list[x509.Certificate]] = [[leaf]]
    explored = 0
    while stack and explored < _MAX_PATH_SEARCH:
        path = stack.pop()
        explored += 1
        top = path[-1]
        issuers = [
            c
            for c in certs
            if c.subject == top.issuer and all(c is not p for p in path) and issued_by(top, c)
        ]
        if not self_signed(top):
            stack.extend([*path, c] for c in reversed(issuers))
        positions = tuple(pos[fingerprint(c)] for c in path)
        key = (
            -len(path),
            -sum(valid_at(c, at) for c in path),
            _is_self_signed_r46(top, cat),
            sum(a > b for a, b in itertools.pairwise(positions)),
            positions,
        )
        if best_key is None or key < best_key:
            best, best_key = path, key
    return best


# --- analyze -------------------------------------------------------------------------------


def _finding(
    code: str,
    detail: str,
    certs: Sequence[x509.Certificate] = (),
    severity: Severity | None = None,
) -> Finding:
    return Finding(
        code=code,
        severity=severity or FINDING_CODES[code][0],
        detail=detail,
        certificates=tuple(fingerprint(c) for c in certs),
    )


def _family(
    path: list[x509.Certificate], top_issuer: RootKey | None, cat: Catalog
) -> Family | None:
    for cert in path:
        key = cat.root_key_of(cert)
        entry = cat.identify(cert)
        for candidate in (key, entry.root if entry else None):
            if candidate in ("R46", "E46"):
                return candidate
    return top_issuer if top_issuer in ("R46", "E46") else None


def _top_findings(
    path: list[x509.Certificate], cat: Catalog
) -> tuple[list[Finding], Family | None]:
    top = path[-1]
    out: list[Finding] = []
    top_issuer: RootKey | None = None
    if len(path) > 1 and self_signed(top):
        if _is_self_signed_r46(top, cat):
            out.append(_finding(
                "SELF_SIGNED_R46_SENT",
                f"the chain ends at the self-signed {_name(top)}; clients that do not trust it "
                "(older Android, Java, embedded) fail: serve the USERTrust cross-sign instead",
                [top],
            ))  # fmt: skip
        else:
            out.append(_finding(
                "CONTAINS_ANCHOR",
                f"the root {_name(top)} is sent; clients use their own copy, so it only adds "
                "bytes (Windows/IIS does not send it when it is in Root)",
                [top],
            ))  # fmt: skip
    elif not self_signed(top):
        kind, top_issuer, issuer_name = _missing_issuer(top, cat)
        if kind == "root" and top_issuer in ("R46", "E46"):
            out.append(_finding(
                "SHORT_CHAIN_R46",
                f"the chain stops at {_name(top)}, issued by {top_issuer}, and no cross-sign is "
                f"sent: clients that lack {top_issuer} fail. Serve "
                f"{_cross_name(cat, top_issuer)} after it",
                [top],
            ))  # fmt: skip
        elif kind == "ca" or (kind == "unknown" and not _is_ca(top)):
            out.append(_finding(
                "INCOMPLETE",
                f"the issuer of {_name(top)} ({issuer_name}) is not sent; clients that do not "
                "already hold it fail",
                [top],
            ))  # fmt: skip
        elif kind == "unknown":
            out.append(_finding(
                "UNKNOWN_ISSUER",
                f"{_name(top)} is issued by {issuer_name}, which is not a known Sectigo CA; "
                "whether it is a root the clients hold cannot be judged here",
                [top],
            ))  # fmt: skip
    family = _family(path, top_issuer, cat)
    if family is not None and not any(_is_usertrust_cross(c, cat, family) for c in path):
        stand_in = [c for c in path[1:] if cat.root_key_of(c) == family and not self_signed(c)]
        if stand_in:
            out.append(_finding(
                "CROSS_SIGN_MISSING",
                f"the chain reaches {family} through {_name(stand_in[0])} issued by "
                f"{common_name(stand_in[0].issuer)}, not through {_cross_name(cat, family)}",
                stand_in,
            ))  # fmt: skip
    return out, family


def _cross_name(cat: Catalog, family: RootKey) -> str:
    try:
        return cat.cross_sign(family).name  # type: ignore[arg-type]
    except KeyError:
        return f"the {family} cross-sign"


def _extra_findings(
    path: list[x509.Certificate],
    extras: list[x509.Certificate],
    cat: Catalog,
    openssl_path: list[x509.Certificate],
) -> list[Finding]:
    out: list[Finding] = []
    unrelated: list[x509.Certificate] = []
    for cert in extras:
        beside_cross = _is_self_signed_r46(cert, cat) and any(
            issued_by(p, cert) for p in path if p is not cert
        )
        if beside_cross and any(c is cert for c in openssl_path):
            out.append(_finding(
                "SELF_SIGNED_R46_SENT",
                f"the self-signed {_name(cert)} is sent before the cross-sign: OpenSSL-based "
                f"clients (curl, wget, Python, PHP, most Linux and embedded clients; OpenSSL "
                f"1.0.x to 3.x) that do not trust {_name(cert)} take the first matching issuer, "
                "pick it and fail (error 19, self-signed certificate in certificate chain); "
                "backtracking clients (Android, Java, NSS, Windows, Apple) recover. Fix: stop "
                f"sending the self-signed {_name(cert)} (or send the cross-sign before it)",
                [cert],
            ))  # fmt: skip
        elif beside_cross:
            out.append(_finding(
                "SELF_SIGNED_R46_SENT",
                f"the self-signed {_name(cert)} is sent after the cross-sign: OpenSSL-based "
                "clients take the cross-sign first and backtracking clients recover, so it only "
                "adds bytes; stop sending it",
                [cert],
                severity="warning",
            ))  # fmt: skip
        else:
            unrelated.append(cert)
    if unrelated:
        names = ", ".join(_name(c) for c in unrelated)
        out.append(_finding("EXTRA_CERTS", f"not on the path from the leaf: {names}", unrelated))
    return out


def _order_tolerance(
    leaf_at: int, path: list[x509.Certificate], openssl_path: list[x509.Certificate]
) -> str:
    """Which path builders tolerate a served order that is not leaf, issuer, its issuer ..."""
    if leaf_at != 0:
        return (
            "no client tolerates this: every TLS client takes the first certificate sent as "
            "the server's own (RFC 5246, RFC 8446)"
        )
    if len(openssl_path) >= len(path) and all(
        a is b for a, b in zip(path, openssl_path, strict=False)
    ):
        return (
            "backtracking clients (Android, Java, NSS, Windows, Apple) and OpenSSL 1.0.x-3.x "
            "search every sent certificate and tolerate this order; clients that read the "
            "chain strictly in order (RFC 5246 requires it for TLS 1.2) may not"
        )
    took = " -> ".join(_name(c) for c in openssl_path)
    return (
        f"backtracking clients tolerate this order, but OpenSSL-based clients take the first "
        f"matching issuer and follow {took} instead"
    )


def _validity_findings(
    certs: list[x509.Certificate], on_path: set[str], at: datetime
) -> list[Finding]:
    out: list[Finding] = []
    for cert in certs:
        where = "on the path" if fingerprint(cert) in on_path else "not on the path"
        severity: Severity = "error" if fingerprint(cert) in on_path else "warning"
        if cert.not_valid_after_utc < at:
            out.append(_finding(
                "EXPIRED_SENT",
                f"{_name(cert)} ({where}) expired {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                [cert], severity=severity,
            ))  # fmt: skip
        elif cert.not_valid_before_utc > at:
            out.append(_finding(
                "NOT_YET_VALID",
                f"{_name(cert)} ({where}) is valid only from "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                [cert], severity=severity,
            ))  # fmt: skip
    return out


def _weakness(cert: x509.Certificate) -> str | None:
    oid = cert.signature_algorithm_oid.dotted_string
    if oid in _WEAK_SIG_OIDS and not self_signed(cert):
        return f"signed with {_WEAK_SIG_OIDS[oid]}"
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return f"RSA {key.key_size}-bit key"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        return f"EC {key.curve.name} key"
    return None


def analyze(
    served: Sequence[x509.Certificate],
    *,
    at: datetime,
    catalog: Catalog | None = None,
    hostname: str | None = None,
) -> ChainAnalysis:
    """Structural findings about a served chain (wire order), judged at time ``at``."""
    cat = catalog or default_catalog()
    when = utc(at)
    if not served:
        return ChainAnalysis(
            served=(), path=(), path_names=(), family=None,
            findings=(_finding("INCOMPLETE", "no certificate was served"),),
        )  # fmt: skip
    findings: list[Finding] = []
    unique: list[x509.Certificate] = []
    dupes: list[x509.Certificate] = []
    for cert in served:
        (dupes if cert in unique else unique).append(cert)
    if dupes:
        names = ", ".join(_name(c) for c in dupes)
        findings.append(_finding("DUPLICATE", f"sent more than once: {names}", dupes))
    leaf_at = _pick_leaf(unique)
    path = _best_path(unique[leaf_at], unique, when, cat)
    on_path = {fingerprint(c) for c in path}
    positions = [unique.index(c) for c in path]
    extras = [c for c in unique if fingerprint(c) not in on_path]
    misordered = leaf_at != 0 or positions != sorted(positions)
    # what OpenSSL follows through the sent certificates: only needed when something is off
    openssl_path = first_match_path(unique, at=when) if misordered or extras else path
    if misordered:
        served_names = ", ".join(_name(c) for c in unique)
        findings.append(_finding(
            "INCORRECT_ORDER",
            f"sent as {served_names}; issuer order is " + ", ".join(_name(c) for c in path)
            + "; " + _order_tolerance(leaf_at, path, openssl_path),
            path,
        ))  # fmt: skip
    top, family = _top_findings(path, cat)
    findings += top
    findings += _extra_findings(path, extras, cat, openssl_path)
    findings += _validity_findings(unique, on_path, when)
    leaf = path[0]
    if hostname is not None and not hostname_matches(leaf, hostname):
        names = ", ".join(dns_names(leaf)) or "no DNS names in its SAN"
        findings.append(_finding(
            "HOSTNAME_MISMATCH", f"{_name(leaf)} covers {names}, not {hostname}", [leaf]
        ))  # fmt: skip
    for cert in unique:
        weakness = _weakness(cert)
        if weakness:
            findings.append(_finding("WEAK_SIGNATURE", f"{_name(cert)}: {weakness}", [cert]))
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], _CODE_ORDER[f.code], f.detail))
    return ChainAnalysis(
        served=tuple(fingerprint(c) for c in served),
        path=tuple(fingerprint(c) for c in path),
        path_names=tuple(_label(c, cat) for c in path),
        family=family,
        findings=tuple(findings),
    )
