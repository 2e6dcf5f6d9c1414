"""Load certificates (and a PFX's key) from any file an operator holds; describe them.

Formats are detected from the content, never the file name: PEM (certificates, PKCS#7 and
private keys), DER certificates (``.cer``/``.crt`` in either encoding), PKCS#7 ``.p7b`` (PEM or
DER, certificates only) and PKCS#12 ``.pfx``/``.p12``. Every failure is a
:class:`~sectigo_chain.errors.CertificateLoadError` naming the file, the problem and what to do.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Generic, Literal, NamedTuple, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtensionOID, NameOID
from pydantic import BaseModel, ConfigDict

from sectigo_chain.errors import CertificateLoadError
from sectigo_chain.pfx import PfxProtection, read_pfx_protection

__all__ = [
    "CertInfo",
    "KeyInfo",
    "LoadedFile",
    "PrivateKey",
    "cert_info",
    "common_name",
    "key_matches",
    "load_bytes",
    "load_file",
    "normalize_thumbprint",
    "sha256_hex",
    "signed_by",
    "thumbprint",
    "to_legacy_pfx",
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
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_THUMB_JUNK = re.compile(r"[\s\u200e\u200f\u202a-\u202e:]")
_K = TypeVar("_K")
_V = TypeVar("_V")


class CacheInfo(NamedTuple):
    """Like ``functools.lru_cache``'s: hits (by identity, then in ``fn``'s own cache)."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class _IdentityMemo(Generic[_K, _V]):
    """A bounded dict keyed by the ``id`` of certificate objects; each entry keeps its objects
    alive (so no ``id`` is reused while cached); the oldest go first beyond ``maxsize``."""

    def __init__(self, fn: Callable[..., _V], maxsize: int) -> None:
        self._fn, self._maxsize = fn, maxsize
        self._cache: dict[_K, tuple[tuple[x509.Certificate, ...], _V]] = {}
        self._hits = self._misses = 0
        self.__doc__, self.__wrapped__ = fn.__doc__, fn

    def _compute(self, key: _K, certs: tuple[x509.Certificate, ...]) -> _V:
        self._misses += 1
        value: _V = self._fn(*certs)
        cache = self._cache
        while len(cache) >= self._maxsize:
            try:
                del cache[next(iter(cache))]
            except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                break
        cache[key] = (certs, value)
        return value

    def cache_info(self) -> CacheInfo:
        inner = getattr(self._fn, "cache_info", None)
        hits = self._hits + (inner().hits if inner is not None else 0)
        return CacheInfo(hits, self._misses, self._maxsize, len(self._cache))

    def cache_clear(self) -> None:
        """Forget every memoised fact (and clear ``fn``'s own cache, if it has one)."""
        self._cache.clear()
        self._hits = self._misses = 0
        clear = getattr(self._fn, "cache_clear", None)
        if clear is not None:
            clear()


class CertMemo(_IdentityMemo[int, _V]):
    """A bounded memo of one fact per certificate *object* (looked up by identity).

    A certificate is immutable, so a fact about one object never changes. Looking up by
    identity costs a dict lookup, where ``functools.lru_cache`` hashes and compares the whole
    DER (about as long as computing a SHA-256). ``fn`` may itself be an ``lru_cache``, so that
    equal certificates parsed twice share its facts.
    """

    def __init__(self, fn: Callable[[x509.Certificate], _V], maxsize: int = 4096) -> None:
        super().__init__(fn, maxsize)

    def __call__(self, cert: x509.Certificate) -> _V:
        hit = self._cache.get(id(cert))
        if hit is not None and hit[0][0] is cert:
            self._hits += 1
            return hit[1]
        return self._compute(id(cert), (cert,))


class CertPairMemo(_IdentityMemo[tuple[int, int], _V]):
    """:class:`CertMemo` for a fact about a pair of certificates (e.g. "A issued B")."""

    def __init__(
        self, fn: Callable[[x509.Certificate, x509.Certificate], _V], maxsize: int = 8192
    ) -> None:
        super().__init__(fn, maxsize)

    def __call__(self, first: x509.Certificate, second: x509.Certificate) -> _V:
        key = (id(first), id(second))
        hit = self._cache.get(key)
        if hit is not None and hit[0][0] is first and hit[0][1] is second:
            self._hits += 1
            return hit[1]
        return self._compute(key, (first, second))


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
    cleaned = _THUMB_JUNK.sub("", value).upper()
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


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s name and key issued ``cert`` (names match, signature verifies).

    Unlike ``verify_directly_issued_by`` this also accepts SHA-1 signatures, which old roots
    such as AAA Certificate Services still carry on themselves.
    """
    if cert.issuer != issuer.subject:
        return False
    return _signature_verifies(cert, issuer)


def _signature_verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    try:
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


class KeyInfo(BaseModel):
    """A public key's type and size or curve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["RSA", "EC", "Ed25519", "Ed448", "DSA", "other"]
    size: int | None = None
    curve: str | None = None

    def __str__(self) -> str:
        if self.type == "RSA":
            return f"RSA {self.size}"
        if self.type == "EC":
            return f"EC {self.curve}"
        return self.type


class CertInfo(BaseModel):
    """The facts about one certificate that the rest of the library and the CLI use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    except ValueError:  # a malformed extension: report it as absent rather than fail inspect
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
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    except (UnsupportedAlgorithm, ValueError):
        return False


class LoadedFile:
    """The certificates (wire/file order) and, for a PFX or PEM bundle, the private key."""

    __slots__ = ("certificates", "format", "key", "path", "pfx_protection")

    def __init__(
        self,
        path: str,
        format: FileFormat,
        certificates: tuple[x509.Certificate, ...],
        key: PrivateKey | None = None,
        pfx_protection: PfxProtection | None = None,
    ) -> None:
        self.path = path
        self.format: FileFormat = format
        self.certificates = certificates
        self.key = key
        self.pfx_protection = pfx_protection

    @property
    def leaf(self) -> x509.Certificate:
        """The certificate that the key belongs to, else the first one."""
        if self.key is not None:
            for cert in self.certificates:
                if key_matches(self.key, cert):
                    return cert
        return self.certificates[0]

    def __repr__(self) -> str:  # never shows key material
        key = "yes" if self.key is not None else "no"
        return (
            f"LoadedFile(path={self.path!r}, format={self.format!r}, "
            f"certificates={len(self.certificates)}, key={key})"
        )


def _read(path: Path) -> bytes:
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CertificateLoadError(name, "file not found", "check the path") from None
    except OSError as exc:
        raise CertificateLoadError(
            name, f"cannot access: {exc.strerror}", "check the path"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise CertificateLoadError(
            name, "is a directory", "pass the certificate files inside it, not the folder"
        )
    if not stat.S_ISREG(st.st_mode):
        raise CertificateLoadError(name, "not a regular file", "pass a certificate file")
    if st.st_size > _MAX_FILE_BYTES:
        raise CertificateLoadError(
            name, f"file is {st.st_size} bytes, too large for a certificate file", "check the file"
        )
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except PermissionError:
        raise CertificateLoadError(
            name, "permission denied", "run with rights to read it or copy it somewhere readable"
        ) from None
    except OSError as exc:
        raise CertificateLoadError(name, f"cannot read: {exc.strerror}", "check the file") from None


def load_file(path: str | os.PathLike[str], password: str | bytes | None = None) -> LoadedFile:
    """Load every certificate (and a PFX's or PEM bundle's key) from ``path``."""
    p = Path(path)
    return load_bytes(_read(p), name=str(p), password=password)


def load_bytes(
    data: bytes, *, name: str = "<bytes>", password: str | bytes | None = None
) -> LoadedFile:
    """Load certificates from bytes; the format is detected from the content."""
    pw = password.encode("utf-8") if isinstance(password, str) else password
    stripped = data.strip()
    if not stripped:
        raise CertificateLoadError(name, "file is empty", "export the certificate again")
    if b"-----BEGIN" in stripped:
        return _load_pem(stripped, name, pw)
    if stripped[0] != 0x30:
        raise CertificateLoadError(
            name,
            "not a certificate file (neither PEM text nor DER/PKCS#7/PKCS#12 binary)",
            "export it as .cer (DER or Base-64), .p7b or .pfx",
        )
    return _load_der(data, name, pw)


def _der_kind(data: bytes) -> str:
    """Peek at the first element inside the outer SEQUENCE: OID -> PKCS#7 ContentInfo,
    INTEGER -> PKCS#12 PFX, SEQUENCE -> certificate."""
    i = 1
    if len(data) < 2:
        return "truncated"
    first = data[i]
    i += 1
    if first & 0x80:
        n = first & 0x7F
        i += n
    if i >= len(data):
        return "truncated"
    return {0x06: "pkcs7", 0x02: "pkcs12", 0x30: "certificate"}.get(data[i], "unknown")


def _load_der(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    kind = _der_kind(data)
    if kind == "certificate":
        try:
            cert = x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise CertificateLoadError(
                name, f"damaged or truncated DER certificate ({exc})", "export it again"
            ) from None
        return LoadedFile(name, "der", (cert,))
    if kind == "pkcs7":
        return LoadedFile(name, "pkcs7-der", _pkcs7(data, name, pem=False))
    if kind == "pkcs12":
        return _load_pfx(data, name, password)
    raise CertificateLoadError(
        name,
        "damaged or truncated binary certificate data",
        "export it again as .cer, .p7b or .pfx",
    )


def _pkcs7(data: bytes, name: str, *, pem: bool) -> tuple[x509.Certificate, ...]:
    try:
        certs = (
            pkcs7.load_pem_pkcs7_certificates(data)
            if pem
            else pkcs7.load_der_pkcs7_certificates(data)
        )
    except ValueError as exc:
        text = str(exc)
        if "no certificates" in text.lower() or "empty" in text.lower():
            raise CertificateLoadError(
                name, "PKCS#7 (.p7b) file holds no certificates", "export the chain again"
            ) from None
        raise CertificateLoadError(
            name, f"damaged PKCS#7 (.p7b) data ({text})", "export the chain again"
        ) from None
    if not certs:
        raise CertificateLoadError(
            name, "PKCS#7 (.p7b) file holds no certificates", "export the chain again"
        )
    return tuple(certs)


def _load_pem(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    blocks = list(_PEM_BLOCK.finditer(data))
    if not blocks or len(blocks) != data.count(b"-----BEGIN "):
        raise CertificateLoadError(
            name,
            "PEM text is truncated or malformed (a BEGIN line without its END line)",
            "copy the whole block, from -----BEGIN to -----END",
        )
    certs: list[x509.Certificate] = []
    key: PrivateKey | None = None
    fmt: FileFormat = "pem"
    for block in blocks:
        raw = block.group(0)
        label = block.group(1).decode("ascii")
        if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            if label != "CERTIFICATE":
                raw = raw.replace(block.group(1), b"CERTIFICATE")
            try:
                certs.append(x509.load_pem_x509_certificate(raw))
            except ValueError as exc:
                raise CertificateLoadError(
                    name, f"damaged PEM certificate block ({exc})", "export it again"
                ) from None
        elif label in ("PKCS7", "CERTIFICATE CHAIN"):
            certs.extend(_pkcs7(raw.replace(block.group(1), b"PKCS7"), name, pem=True))
            fmt = "pkcs7-pem"
        elif label.endswith("PRIVATE KEY"):
            key = _load_pem_key(raw, name, password)
    if not certs:
        raise CertificateLoadError(
            name, "PEM file holds no certificate", "pass the file with the CERTIFICATE block"
        )
    if key is not None and not any(key_matches(key, c) for c in certs):
        raise CertificateLoadError(
            name,
            "the private key does not match any certificate in the file",
            "pair the key with the certificate it was generated for",
        )
    return LoadedFile(name, fmt, tuple(certs), key)


def _load_pem_key(raw: bytes, name: str, password: bytes | None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(raw, password=password)
    except TypeError:
        raise CertificateLoadError(
            name,
            "the private key is encrypted and no password was given"
            if password is None
            else "a password was given but the private key is not encrypted",
            "pass --password-env VAR or --password-file FILE",
        ) from None
    except ValueError:
        raise CertificateLoadError(
            name, "cannot decrypt or parse the private key", "check the password"
        ) from None
    if not isinstance(key, _KEY_TYPES):
        raise CertificateLoadError(name, "unsupported private key type", "use an RSA or EC key")
    return key


def _load_pfx(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    try:
        loaded = pkcs12.load_pkcs12(data, password)
    except ValueError as exc:
        text = str(exc).lower()
        if "password" in text or "mac" in text or "decrypt" in text:
            hint = (
                "pass the PFX password (--password-env VAR or --password-file FILE)"
                if not password
                else "check the PFX password"
            )
            problem = "no password given for the PFX" if not password else "wrong PFX password"
            raise CertificateLoadError(name, problem, hint) from None
        raise CertificateLoadError(
            name, f"damaged or truncated PFX ({exc})", "export the PFX again"
        ) from None
    except UnsupportedAlgorithm as exc:
        raise CertificateLoadError(
            name, f"PFX uses an unsupported algorithm ({exc})", "export it with AES or 3DES"
        ) from None
    protection = read_pfx_protection(data)
    certs: list[x509.Certificate] = []
    if loaded.cert is not None:
        certs.append(loaded.cert.certificate)
    certs.extend(c.certificate for c in loaded.additional_certs)
    if not certs:
        raise CertificateLoadError(name, "PFX holds no certificate", "export the PFX again")
    key = loaded.key
    if key is None:
        raise CertificateLoadError(
            name,
            "PFX holds no private key",
            "export the certificate WITH its private key (Export-PfxCertificate or the MMC "
            "export wizard, 'Yes, export the private key')",
        )
    if not isinstance(key, _KEY_TYPES):
        raise CertificateLoadError(name, "unsupported private key type in PFX", "use RSA or EC")
    if loaded.cert is not None and not key_matches(key, loaded.cert.certificate):
        raise CertificateLoadError(
            name,
            "the PFX private key does not match its certificate",
            "export the PFX again from the machine that holds the right key",
        )
    if loaded.cert is None and not any(key_matches(key, c) for c in certs):
        raise CertificateLoadError(
            name,
            "the PFX private key does not match any certificate in it",
            "export the PFX again from the machine that holds the right key",
        )
    return LoadedFile(name, "pkcs12", tuple(certs), key, protection)


def to_legacy_pfx(
    key: PrivateKey,
    cert: x509.Certificate,
    password: str | bytes,
    *,
    chain: tuple[x509.Certificate, ...] | list[x509.Certificate] = (),
    friendly_name: str | None = None,
) -> bytes:
    """Re-encode as a PFX with 3DES/SHA-1 ("legacy") protection.

    Windows Server 2016 before build 1709 and older cannot import AES/PBES2 PFX files (OpenSSL
    3's default). This produces what every Windows version imports.
    """
    if not key_matches(key, cert):
        raise CertificateLoadError(
            "<pfx>", "the private key does not match the certificate", "pair them correctly"
        )
    pw = password.encode("utf-8") if isinstance(password, str) else password
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 - the MAC old Windows builds accept
        .build(pw)
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8") if friendly_name else None,
        key,
        cert,
        list(chain) or None,
        encryption,
    )
