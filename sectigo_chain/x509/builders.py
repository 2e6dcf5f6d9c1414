"""How each kind of client builds a certificate path: the builders and an OpenSSL emulation.

A client is a trust store *and* a path builder. Three builders are modelled:

``backtracking``
    Android (Conscrypt), Java (PKIX ``CertPathBuilder``), NSS, Windows CryptoAPI, Apple and
    ``cryptography``'s verifier: when one candidate issuer leads nowhere, try the next. Judged by
    :mod:`cryptography.x509.verification` (see :mod:`sectigo_chain.trust.profiles`).
``openssl``
    OpenSSL 1.1.0 to 3.x (``X509_verify_cert``, ``build_chain`` in ``crypto/x509/x509_vfy.c``),
    as used by curl, Python ``ssl``, wget, most Linux and embedded clients. ``trusted first``
    (``X509_V_FLAG_TRUSTED_FIRST``, the default since 1.1.0): before taking an issuer from the
    certificates the server sent, look for one in the trust store. Among the sent certificates
    the *first* that matches by name and key identifier is taken (one valid at the validation
    time preferred); it is never reconsidered. A self-signed certificate ends the search; if it
    is not trusted, verification fails with error 19. No alternative chains with trusted-first.
``openssl-1.0``
    OpenSSL 1.0.2 (and 1.0.1n onwards): untrusted first. The sent certificates are followed
    (first match by name and key identifier, no preference for valid ones) to the top, then the
    store is searched; when that is not trusted, *alternative chains* drop sent certificates
    from the top, one at a time, and look for a trusted issuer of the new top. Before 1.0.1n /
    1.0.2b there were no alternative chains (``alt_chains=False``).

:func:`openssl_verify` emulates the OpenSSL builders, then the checks ``openssl verify
-purpose sslserver -verify_hostname NAME`` makes in OpenSSL's order (extensions, host name,
signatures and validity from the top down), and returns the first error as OpenSSL numbers it.
The emulation is checked against the real ``openssl verify`` by the oracle test
(``tests/integration/test_openssl_oracle.py``). Pure: no I/O, the time is a parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from sectigo_chain.x509._record import Frozen
from sectigo_chain.x509.certs import CertPairMemo, aki_hex, ski_hex
from sectigo_chain.x509.findings import (
    basic_constraints,
    hostname_matches,
    issued_by,
    subject_cn,
    utc,
)

__all__ = [
    "BUILDERS",
    "ERROR_TEXT",
    "BuilderInfo",
    "BuilderName",
    "OpenSSLResult",
    "builder_for_name",
    "first_match_path",
    "likely_issued",
    "openssl_verify",
    "strip_builder",
]

BuilderName = Literal["backtracking", "openssl", "openssl-1.0"]


class BuilderInfo(Frozen):
    """One path builder: who uses it and where its behaviour is documented."""

    name: BuilderName
    label: str
    clients: str
    source: str


BUILDERS: dict[str, BuilderInfo] = {
    "backtracking": BuilderInfo(
        "backtracking",
        "backtracking path builder",
        "Android (Conscrypt), Java PKIX, Mozilla NSS, Windows CryptoAPI, Apple, browsers",
        "RFC 4158 path building; judged with cryptography.x509.verification (webpki rules)",
    ),
    "openssl": BuilderInfo(
        "openssl",
        "OpenSSL 1.1.1/3.x (trusted first, first matching sent issuer, no backtracking)",
        "curl, wget, Python ssl, PHP, Ruby, Node.js, most Linux and embedded clients",
        "OpenSSL crypto/x509/x509_vfy.c build_chain() and find_issuer() (1.1.0 rewrite); "
        "X509_V_FLAG_TRUSTED_FIRST default since 1.1.0 (verify(1), OpenSSL PR #646)",
    ),
    "openssl-1.0": BuilderInfo(
        "openssl-1.0",
        "OpenSSL 1.0.2 (untrusted first, alternative chains)",
        "clients on OpenSSL 1.0.x (RHEL/CentOS 7, Ubuntu 16.04, Debian 8/9, embedded) that do "
        "not set X509_V_FLAG_TRUSTED_FIRST themselves (curl does, PR #5530)",
        "OpenSSL 1.0.2 crypto/x509/x509_vfy.c X509_verify_cert(); alternative chains added in "
        "1.0.1n/1.0.2b (commit f7bf8e02, 'try to see if alternate chains could be constructed')",
    ),
}

_PREFIXES: tuple[tuple[str, BuilderName], ...] = (
    ("openssl-1.0-", "openssl-1.0"),
    ("openssl-", "openssl"),
)


def builder_for_name(name: str) -> BuilderName:
    """The builder a profile name asks for: ``openssl-1.0-*``, ``openssl-*``, else backtracking."""
    for prefix, builder in _PREFIXES:
        if name.startswith(prefix):
            return builder
    return "backtracking"


def strip_builder(name: str) -> str:
    """``openssl-legacy`` -> ``legacy``; a name without a builder prefix is returned as is."""
    for prefix, _ in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


#: OpenSSL's X509_V_ERR_* numbers used here, with OpenSSL 3's texts.
ERROR_TEXT: dict[int, str] = {
    0: "ok",
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    24: "invalid CA certificate",
    25: "path length constraint exceeded",
    26: "unsupported certificate purpose",
    62: "hostname mismatch",
}


class OpenSSLResult(Frozen):
    """What the emulated ``X509_verify_cert`` decided.

    ``chain`` is the chain OpenSSL built (leaf first; it ends at a trust anchor when
    ``trusted``); ``error`` is the first X509_V_ERR number (0 when valid) and ``depth`` the
    position in ``chain`` it concerns.
    """

    builder: BuilderName
    chain: tuple[x509.Certificate, ...]
    trusted: bool
    error: int
    depth: int

    @property
    def ok(self) -> bool:
        return self.error == 0

    @property
    def error_text(self) -> str:
        return ERROR_TEXT.get(self.error, f"error {self.error}")

    def describe(self) -> str:
        """``error 19 at depth 2 (self-signed certificate in certificate chain): CN``."""
        if self.ok:
            return "ok"
        who = subject_cn(self.chain[self.depth]) if self.depth < len(self.chain) else "?"
        return f"error {self.error} at depth {self.depth} ({self.error_text}): {who}"


# --- OpenSSL's issuer test (X509_check_issued / ossl_x509_likely_issued) -----------------------


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        value = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return value if isinstance(value, x509.KeyUsage) else None


def _sig_alg_matches(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The subject's signature algorithm fits the issuer's key type (RSA vs ECDSA)."""
    oid = cert.signature_algorithm_oid.dotted_string
    key = issuer.public_key()
    if oid.startswith("1.2.840.10045.4"):  # ecdsa-with-*
        return isinstance(key, ec.EllipticCurvePublicKey)
    if oid.startswith("1.2.840.113549.1.1"):  # RSA PKCS#1 / PSS
        return isinstance(key, rsa.RSAPublicKey)
    return True


def _likely_issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    aki, ski = aki_hex(cert), ski_hex(issuer)
    if aki is not None and ski is not None and aki != ski:
        return False
    if not _sig_alg_matches(cert, issuer):
        return False
    ku = _key_usage(issuer)
    return ku is None or ku.key_cert_sign


likely_issued = CertPairMemo(_likely_issued)
"""OpenSSL's candidate test (memoised): names match, the AKI key id (when both present) equals
the issuer's SKI, the key types fit, and a keyUsage, if present, allows keyCertSign. The
signature is *not* checked here (OpenSSL checks it after the chain is built)."""


def _self_issued_flag(cert: x509.Certificate) -> bool:
    """``X509_self_signed(cert, 0)``: likely issued by itself (no signature check)."""
    return likely_issued(cert, cert)


def _time_ok(cert: x509.Certificate, at: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _contains(certs: Sequence[x509.Certificate], cert: x509.Certificate) -> bool:
    return any(c == cert for c in certs)


def _find_issuer_3(
    pool: Sequence[x509.Certificate],
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    at: dt.datetime,
) -> x509.Certificate | None:
    """``find_issuer`` (3.x): the first candidate valid at ``at``, else the latest to expire."""
    best: x509.Certificate | None = None
    for cand in pool:
        if not likely_issued(cert, cand):
            continue
        if _contains(chain, cand) and not (len(chain) == 1 and _self_issued_flag(cert)):
            continue
        if _time_ok(cand, at):
            return cand
        if best is None or cand.not_valid_after_utc > best.not_valid_after_utc:
            best = cand
    return best


def _find_issuer_10(
    pool: Sequence[x509.Certificate], cert: x509.Certificate
) -> x509.Certificate | None:
    """``find_issuer`` (1.0.x): the first candidate, valid or not."""
    return next((c for c in pool if likely_issued(cert, c)), None)


def first_match_path(
    chain: Sequence[x509.Certificate], *, at: dt.datetime
) -> list[x509.Certificate]:
    """The path OpenSSL 1.1+/3.x follows through the *sent* certificates alone (no trust
    store): from ``chain[0]``, the first matching issuer among the rest (one valid at ``at``
    preferred), until a self-signed certificate or no issuer."""
    when = utc(at)
    pool = list(chain[1:])
    path = [chain[0]]
    while not _self_issued_flag(path[-1]):
        issuer = _find_issuer_3(pool, path[-1], path, when)
        if issuer is None:
            break
        pool.remove(issuer)
        path.append(issuer)
    return path


# --- building -----------------------------------------------------------------------------------


def _store_issuer(
    store: Sequence[x509.Certificate], cert: x509.Certificate, at: dt.datetime
) -> x509.Certificate | None:
    """``X509_STORE_CTX_get1_issuer``: a matching store certificate, a valid one preferred."""
    best: x509.Certificate | None = None
    for cand in store:
        if not likely_issued(cert, cand):
            continue
        if _time_ok(cand, at):
            return cand
        if best is None or cand.not_valid_after_utc > best.not_valid_after_utc:
            best = cand
    return best


def _trusted_from(chain: Sequence[x509.Certificate], num_untrusted: int) -> bool:
    """``check_trust`` without explicit trust settings: a store certificate that is
    self-signed is a trust anchor (OpenSSL's "compat" trust)."""
    return any(_self_issued_flag(c) for c in chain[num_untrusted:])


def _build_3(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    store: Sequence[x509.Certificate],
    at: dt.datetime,
) -> tuple[list[x509.Certificate], int, bool]:
    """OpenSSL 1.1.0+ ``build_chain`` with trusted-first (no DANE, no partial chains).

    Returns (chain, number of sent certificates at its start, trusted)."""
    chain = [leaf]
    num_untrusted = 1
    pool = list(untrusted)
    search_untrusted = bool(pool)
    for _ in range(64):  # each step adds a certificate or stops; depth is bounded anyway
        curr = chain[-1]
        issuer = _store_issuer(store, curr, at)
        if issuer is not None:
            ok = True
            curr_ss = _self_issued_flag(curr)
            if not curr_ss:
                chain.append(issuer)
                top_ss = _self_issued_flag(issuer)
            elif curr != issuer:  # a self-signed mimic of a trust anchor
                ok = False
                top_ss = True
            else:
                chain[-1] = issuer
                num_untrusted -= 1
                top_ss = True
            if ok:
                search_untrusted = False
                if _trusted_from(chain, num_untrusted):
                    return chain, num_untrusted, True
                if not top_ss:
                    continue
        if not search_untrusted:
            break
        curr = chain[-1]
        found = None if _self_issued_flag(curr) else _find_issuer_3(pool, curr, chain, at)
        if found is None:
            search_untrusted = False
            continue
        pool.remove(found)
        chain.append(found)
        num_untrusted += 1
    return chain, num_untrusted, False


def _build_10(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    store: Sequence[x509.Certificate],
    at: dt.datetime,
    alt_chains: bool,
) -> tuple[list[x509.Certificate], int, bool, int | None]:
    """OpenSSL 1.0.2 ``X509_verify_cert`` chain building (untrusted first, alt chains).

    Returns (chain, number of sent certificates, trusted, build error or None)."""
    chain = [leaf]
    pool = list(untrusted)
    while not _self_issued_flag(chain[-1]):
        found = _find_issuer_10(pool, chain[-1])
        if found is None:
            break
        pool.remove(found)
        chain.append(found)
    last_untrusted = len(chain)
    j = len(chain)
    chain_ss: x509.Certificate | None = None
    while True:
        top = chain[-1]
        if _self_issued_flag(top):
            if len(chain) == 1:
                same = _store_issuer(store, top, at)
                if same is None or same != top:
                    return chain, last_untrusted, False, 18
                last_untrusted = 0
            else:
                chain_ss = chain.pop()
                last_untrusted -= 1
                j -= 1
        while not _self_issued_flag(chain[-1]):
            issuer = _store_issuer(store, chain[-1], at)
            if issuer is None:
                break
            chain.append(issuer)
        if _trusted_from(chain, last_untrusted):
            return chain, last_untrusted, True, None
        retry = False
        if alt_chains:
            while j > 1:
                j -= 1
                if _store_issuer(store, chain[j - 1], at) is not None:
                    del chain[j:]
                    last_untrusted = len(chain)
                    retry = True
                    break
        if not retry:
            break
    top = chain[-1]
    if chain_ss is not None and likely_issued(top, chain_ss):
        chain.append(chain_ss)
        return chain, len(chain), False, 19
    return chain, last_untrusted, False, (20 if last_untrusted >= len(chain) else 2)


def _untrusted_error(chain: Sequence[x509.Certificate], num_untrusted: int) -> int:
    top = chain[-1]
    if _self_issued_flag(top):
        return 18 if len(chain) == 1 else 19
    return 2 if num_untrusted < len(chain) else 20


# --- the checks after building --------------------------------------------------------------


def _eku(cert: x509.Certificate) -> x509.ExtendedKeyUsage | None:
    try:
        value = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return value if isinstance(value, x509.ExtendedKeyUsage) else None


def _server_purpose_ok(cert: x509.Certificate, *, ca: bool) -> bool:
    """``-purpose sslserver``: an EKU, if present, lists serverAuth (or anyExtendedKeyUsage);
    a leaf's keyUsage, if present, allows digitalSignature or keyEncipherment."""
    eku = _eku(cert)
    if eku is not None and not (
        ExtendedKeyUsageOID.SERVER_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    ):
        return False
    if ca:
        return True
    ku = _key_usage(cert)
    return ku is None or ku.digital_signature or ku.key_encipherment


def _check_extensions(chain: Sequence[x509.Certificate]) -> tuple[int, int]:
    plen = 0
    for i, cert in enumerate(chain):
        if i == 0:
            if not _server_purpose_ok(cert, ca=False):
                return 26, 0
        else:
            bc = basic_constraints(cert)
            if bc is None or not bc.ca:
                return 24, i
            if not _server_purpose_ok(cert, ca=True):
                return 26, i
            if i > 1 and bc.path_length is not None and plen > bc.path_length + 1:
                return 25, i
        if cert.subject != cert.issuer or i == 0:
            plen += 1
    return 0, 0


def _host_ok(cert: x509.Certificate, hostname: str) -> bool:
    """``X509_check_host``: the SAN's DNS names; the subject CN only when there are none."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        has_dns = isinstance(san, x509.SubjectAlternativeName) and bool(
            san.get_values_for_type(x509.DNSName)
        )
    except (x509.ExtensionNotFound, ValueError):
        has_dns = False
    if has_dns:
        return hostname_matches(cert, hostname)
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    host = hostname.strip().rstrip(".").lower()
    return any(str(a.value).lower().rstrip(".") == host for a in cns)


def _internal_verify(chain: Sequence[x509.Certificate], at: dt.datetime) -> tuple[int, int]:
    """Signatures and validity, from the top of the chain down (the anchor's own signature
    is not checked)."""
    for i in range(len(chain) - 1, -1, -1):
        cert = chain[i]
        issuer = chain[i + 1] if i + 1 < len(chain) else None
        if issuer is not None and not issued_by(cert, issuer):
            return 7, i
        if cert.not_valid_before_utc > at:
            return 9, i
        if cert.not_valid_after_utc < at:
            return 10, i
    return 0, 0


def openssl_verify(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    store: Sequence[x509.Certificate],
    *,
    at: dt.datetime,
    hostname: str | None = None,
    builder: BuilderName = "openssl",
    alt_chains: bool = True,
) -> OpenSSLResult:
    """Emulate ``openssl verify -attime AT -CAfile STORE -purpose sslserver
    [-verify_hostname NAME] -untrusted UNTRUSTED LEAF`` (``builder="openssl"``: 1.1.x/3.x;
    ``"openssl-1.0"``: 1.0.2, ``alt_chains=False`` for 1.0.1 before 1.0.1n).

    ``untrusted`` are the sent certificates after the leaf, in wire order; ``store`` the
    trusted certificates (self-signed ones are anchors). Returns the first error OpenSSL
    reports (0 when the chain verifies) with the chain it built.
    """
    when = utc(at)
    if builder == "openssl":
        chain, num_untrusted, trusted = _build_3(leaf, untrusted, store, when)
        build_error = None if trusted else _untrusted_error(chain, num_untrusted)
    elif builder == "openssl-1.0":
        chain, num_untrusted, trusted, build_error = _build_10(
            leaf, untrusted, store, when, alt_chains
        )
    else:
        raise ValueError(f"not an OpenSSL builder: {builder!r}")
    if build_error is not None:
        return OpenSSLResult(builder, tuple(chain), False, build_error, len(chain) - 1)
    for error, depth in (
        _check_extensions(chain),
        (62, 0) if hostname is not None and not _host_ok(leaf, hostname) else (0, 0),
        _internal_verify(chain, when),
    ):
        if error:
            return OpenSSLResult(builder, tuple(chain), True, error, depth)
    return OpenSSLResult(builder, tuple(chain), True, 0, 0)
