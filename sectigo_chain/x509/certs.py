"""Describe certificates (thumbprints, keys, identifiers, self-signed) and load them from files.

Loading lives in :mod:`sectigo_chain.x509.load`: PEM, DER, ``.cer``/``.crt``,
PKCS#7 ``.p7b`` and PKCS#12 ``.pfx``/``.p12``, detected from content. Memo tables live in
:mod:`sectigo_chain.x509._memo`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

try:  # the enums alone: the serialization package imports its SSH module, which imports
    # dataclasses and inspect (several ms of check's start-up)
    from cryptography.hazmat.primitives._serialization import Encoding, PublicFormat
except ImportError:  # pragma: no cover - a cryptography that moved them
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sectigo_chain.x509._memo import CacheInfo, CertMemo, CertPairMemo
from sectigo_chain.x509._record import Record

__all__ = [
    "CacheInfo",
    "CertInfo",
    "CertMemo",
    "CertPairMemo",
    "Encoding",
    "FileFormat",
    "KeyInfo",
    "PrivateKey",
    "PublicFormat",
    "cert_info",
    "cn_of",
    "common_name",
    "key_matches",
    "normalize_thumbprint",
    "sha256_hex",
    "signed_by",
    "thumbprint",
]

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
FileFormat = Literal["pem", "der", "pkcs7-pem", "pkcs7-der", "pkcs12"]

_MAX_FILE_BYTES = 16 * 1024 * 1024


def _thumbprint(cert: x509.Certificate) -> str:
    """Windows' thumbprint: SHA-1 of the DER, upper-case hex, no separators (memoised)."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows' identifier


def _sha256_hex(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, upper-case hex (memoised)."""
    return cert.fingerprint(hashes.SHA256()).hex().upper()


thumbprint = CertMemo(_thumbprint)
sha256_hex = CertMemo(_sha256_hex)


def normalize_thumbprint(value: str) -> str:
    """Strip spaces, colons and the invisible marks MMC copies (U+200E); upper-case.

    Raises :class:`ValueError` when what is left is not 40 hex digits.
    """
    cleaned = re.sub(r"[\s\u200e\u200f\u202a-\u202e:]", "", value).upper()
    if not re.fullmatch(r"[0-9A-F]{40}", cleaned):
        raise ValueError(
            f"not a certificate thumbprint: {value!r} (expected 40 hex digits, as shown by "
            "certlm.msc or Get-ChildItem Cert:\\)"
        )
    return cleaned


def common_name(name: x509.Name) -> str:
    """The first CN of a name, else its RFC 4514 string."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        value = cns[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return name.rfc4514_string()


def _name_texts(cert: x509.Certificate) -> tuple[str, str]:
    return cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()


name_texts = CertMemo(_name_texts)
"""``(subject, issuer)`` of a certificate as RFC 4514 strings, memoised per certificate object
(cryptography builds the names, in Python, on every access: 30-40 us for the two)."""


NameKey = tuple[frozenset[tuple[x509.ObjectIdentifier, "str | bytes"]], ...]


def _name_keys(cert: x509.Certificate) -> tuple[NameKey, NameKey]:
    return (
        tuple(frozenset((a.oid, a.value) for a in rdn) for rdn in cert.subject.rdns),
        tuple(frozenset((a.oid, a.value) for a in rdn) for rdn in cert.issuer.rdns),
    )


name_keys = CertMemo(_name_keys)
"""``(subject, issuer)`` of a certificate as hashable keys equal exactly when the
``x509.Name`` objects are (each RDN a set of (OID, value)), memoised per certificate object:
for matching issuers to subjects across many candidates without building names again."""


def cn_of(name: str) -> str:
    """The CN of an RFC 4514 name (the whole name when it has none)."""
    for part in name.split(","):
        part = part.strip()
        if part.upper().startswith("CN="):
            return part[3:]
    return name


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s name and key issued ``cert`` (names match, signature verifies).

    Unlike ``verify_directly_issued_by`` this also accepts SHA-1 signatures, which old roots
    such as AAA Certificate Services still carry on themselves.
    """
    if cert.issuer != issuer.subject:
        return False
    return _signature_verifies(cert, issuer)


def _signature_verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        key = issuer.public_key()  # parsed lazily: a damaged key raises here
        if isinstance(key, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            hash_alg = cert.signature_hash_algorithm
            if hash_alg is None:
                return False
            pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
            key.verify(cert.signature, cert.tbs_certificate_bytes, pad, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            hash_alg = cert.signature_hash_algorithm
            if hash_alg is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_alg))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


class KeyInfo(Record):
    """A public key's type and size or curve."""

    type: Literal["RSA", "EC", "Ed25519", "Ed448", "DSA", "other"]
    size: int | None = None
    curve: str | None = None

    def __str__(self) -> str:
        if self.type == "RSA":
            return f"RSA {self.size}"
        if self.type == "EC":
            return f"EC {self.curve}"
        return self.type


class CertInfo(Record):
    """The facts about one certificate that the rest of the library and the CLI use."""

    subject: str
    subject_cn: str
    issuer: str
    issuer_cn: str
    serial: str
    thumbprint: str
    sha256: str
    key: KeyInfo
    signature_algorithm: str
    self_signed: bool
    is_ca: bool
    ski: str | None
    aki: str | None
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.subject_cn} (issuer {self.issuer_cn}, {self.key}, {self.thumbprint})"


def _key_info(cert: x509.Certificate) -> KeyInfo:
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return KeyInfo(type="other")
    if isinstance(key, rsa.RSAPublicKey):
        return KeyInfo(type="RSA", size=key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyInfo(type="EC", size=key.curve.key_size, curve=key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyInfo(type="Ed25519")
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyInfo(type="Ed448")
    return KeyInfo(type="other")


def _ext_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension):  # malformed: absent rather than fail inspect
        return None


def _ski_hex(cert: x509.Certificate) -> str | None:
    """The subject key identifier as upper-case hex, if present (memoised)."""
    value = _ext_value(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest.hex().upper()
    return None


def _aki_hex(cert: x509.Certificate) -> str | None:
    """The authority key identifier's key id as upper-case hex, if present (memoised)."""
    value = _ext_value(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    if isinstance(value, x509.AuthorityKeyIdentifier) and value.key_identifier is not None:
        return value.key_identifier.hex().upper()
    return None


def is_ca(cert: x509.Certificate) -> bool:
    """True if basicConstraints says CA."""
    value = _ext_value(cert, ExtensionOID.BASIC_CONSTRAINTS)
    return isinstance(value, x509.BasicConstraints) and value.ca


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The SAN DNS names (memoised)."""
    value = _ext_value(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if isinstance(value, x509.SubjectAlternativeName):
        return tuple(value.get_values_for_type(x509.DNSName))
    return ()


ski_hex = CertMemo(_ski_hex)
aki_hex = CertMemo(_aki_hex)
dns_names = CertMemo(_dns_names)


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject AND the signature verifies with the certificate's own key."""
    return signed_by(cert, cert)


def cert_info(cert: x509.Certificate) -> CertInfo:
    """Describe ``cert``."""
    oid = cert.signature_algorithm_oid
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        subject_cn=common_name(cert.subject),
        issuer=cert.issuer.rfc4514_string(),
        issuer_cn=common_name(cert.issuer),
        serial=format(cert.serial_number, "X"),
        thumbprint=thumbprint(cert),
        sha256=sha256_hex(cert),
        key=_key_info(cert),
        signature_algorithm=oid._name if oid._name != "Unknown OID" else oid.dotted_string,
        self_signed=is_self_signed(cert),
        is_ca=is_ca(cert),
        ski=ski_hex(cert),
        aki=aki_hex(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=dns_names(cert),
    )


def key_matches(key: PrivateKey, cert: x509.Certificate) -> bool:
    """True if ``key`` is the private half of ``cert``'s public key."""
    spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    try:
        return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    except (UnsupportedAlgorithm, ValueError):
        return False
