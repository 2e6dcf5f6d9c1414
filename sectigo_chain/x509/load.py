"""Load certificates (and a PFX's or PEM bundle's key) from bytes or files.

Formats are detected from the content, never the file name. Every failure is a
:class:`~sectigo_chain.errors.CertificateLoadError` naming the file, the problem and what to do.
The certificate facts these build on live in :mod:`sectigo_chain.x509.certs`.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes

from sectigo_chain.errors import CertificateLoadError
from sectigo_chain.x509.certs import _KEY_TYPES, PrivateKey, key_matches, name_texts

# cryptography's ``signature_algorithm_parameters`` of an ECDSA signature is ``ECDSA(hash)``:
# nothing beyond the hash (read anyway) is parsed, and building it imports cryptography's whole
# OpenSSL backend (4-5 ms of ``check``'s start-up). Only these are skipped.
_ECDSA_OIDS = frozenset(
    {
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA1,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA224,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA3_224,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA3_256,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA3_384,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA3_512,
    }
)

_BAD_PEM = (
    "PEM text is truncated or malformed (a BEGIN line without its END line)",
    "copy the whole block, from -----BEGIN to -----END",
)

if TYPE_CHECKING:
    from sectigo_chain.x509.pfx import PfxProtection

__all__ = [
    "MAX_CERTIFICATES",
    "MAX_KDF_ITERATIONS",
    "FileFormat",
    "LoadedFile",
    "checked_certificate",
    "load_bytes",
    "load_file",
    "to_legacy_pfx",
]

FileFormat = Literal["pem", "der", "pkcs7-pem", "pkcs7-der", "pkcs12"]
_MAX_FILE_BYTES = 16 * 1024 * 1024
#: At most this many certificates in one file (a chain holds a handful, a root store export a
#: few hundred); past it inspecting and path building would cost minutes.
MAX_CERTIFICATES = 1000
#: Key-derivation iteration counts above this are refused before any derivation (Windows
#: exports 2,000-10,000, OpenSSL 2,048, cryptography 50,000 with ``kdf_rounds``; OWASP asks
#: 600,000 for PBKDF2-SHA256). 2^31-1 iterations would take minutes to hours.
MAX_KDF_ITERATIONS = 1_000_000
#: scrypt cost (N) above this is refused likewise (OpenSSL's default is 2^14).
MAX_SCRYPT_COST = 1 << 20
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----")


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
        return LoadedFile(name, "der", (checked_certificate(cert, name),))
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
    from cryptography.hazmat.primitives.serialization import (
        pkcs7,
    )  # pulls in email.*: not for check

    try:
        certs = (
            pkcs7.load_pem_pkcs7_certificates(data)
            if pem
            else pkcs7.load_der_pkcs7_certificates(data)
        )
    except UnsupportedAlgorithm:
        raise CertificateLoadError(
            name,
            "PKCS#7 file is not a certificate bundle (not of type signedData)",
            "export the chain as .p7b (PKCS#7 certificates) again",
        ) from None
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
    _check_count(len(certs), name)
    return tuple(checked_certificate(c, name) for c in certs)


def _check_count(count: int, name: str) -> None:
    if count > MAX_CERTIFICATES:
        raise CertificateLoadError(
            name,
            f"holds more than {MAX_CERTIFICATES} certificates",
            "split the file; a chain holds a handful of certificates",
        )


def checked_certificate(cert: x509.Certificate, name: str = "<certificate>") -> x509.Certificate:
    """``cert`` after reaching every field cryptography parses lazily (names, extensions, the
    public key, validity, signature algorithm); :class:`CertificateLoadError` if one is damaged.

    cryptography parses these on first access, so a damaged certificate loads fine and raises a
    raw ``ValueError`` later, anywhere. An unsupported (not damaged) key or signature algorithm
    is accepted: it is reported as such.
    """
    with warnings.catch_warnings():  # cryptography warns (on stderr) about odd names
        warnings.simplefilter("ignore")
        _check_fields(cert, name)
    return cert


def _check_fields(cert: x509.Certificate, name: str) -> None:
    try:
        name_texts(cert)  # every attribute of both names, as the reports will show them
        for ext in cert.extensions:
            _ = ext.value
        _ = cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc
        _ = cert.signature_algorithm_oid, cert.tbs_certificate_bytes
        with contextlib.suppress(UnsupportedAlgorithm):
            cert.public_key()
        with contextlib.suppress(UnsupportedAlgorithm):
            _ = cert.signature_hash_algorithm
            if cert.signature_algorithm_oid not in _ECDSA_OIDS:
                _ = cert.signature_algorithm_parameters
    except (
        ValueError,
        TypeError,
        UnicodeError,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
    ) as exc:
        raise CertificateLoadError(
            name, f"damaged certificate ({_short(exc)})", "get or export the certificate again"
        ) from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _pem_blocks(data: bytes, name: str) -> list[tuple[str, bytes]]:
    """``(label, block)`` for each PEM block, in one linear pass; a BEGIN line without its END
    line (or with another BEGIN before it) is refused."""
    blocks: list[tuple[str, bytes]] = []
    pos = 0
    while True:
        begin = _PEM_BEGIN.search(data, pos)
        if begin is None:
            break
        label = begin.group(1)
        end_marker = b"-----END " + label + b"-----"
        end = data.find(end_marker, begin.end())
        if end < 0 or data.find(b"-----BEGIN", begin.end(), end) >= 0:
            raise CertificateLoadError(name, *_BAD_PEM)
        stop = end + len(end_marker)
        blocks.append((label.decode("ascii"), data[begin.start() : stop]))
        pos = stop
    if not blocks or len(blocks) != data.count(b"-----BEGIN"):
        raise CertificateLoadError(name, *_BAD_PEM)
    return blocks


def _load_pem(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    blocks = _pem_blocks(data, name)
    _check_count(len(blocks), name)
    certs: list[x509.Certificate] = []
    key: PrivateKey | None = None
    fmt: FileFormat = "pem"
    for label, raw in blocks:
        if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            if label != "CERTIFICATE":
                raw = raw.replace(label.encode("ascii"), b"CERTIFICATE")
            try:
                cert = x509.load_pem_x509_certificate(raw)
            except ValueError as exc:
                raise CertificateLoadError(
                    name, f"damaged PEM certificate block ({_short(exc)})", "export it again"
                ) from None
            certs.append(checked_certificate(cert, name))
        elif label in ("PKCS7", "CERTIFICATE CHAIN"):
            certs.extend(_pkcs7(raw.replace(label.encode("ascii"), b"PKCS7"), name, pem=True))
            fmt = "pkcs7-pem"
            _check_count(len(certs), name)
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
    from cryptography.hazmat.primitives import serialization  # not at import: check's start-up

    if b"ENCRYPTED PRIVATE KEY" in raw:
        from sectigo_chain.x509.pfx import pkcs8_kdf_costs

        _check_kdf(pkcs8_kdf_costs(raw), name, "private key")
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


def _check_kdf(costs: tuple[int, int], name: str, what: str) -> None:
    iterations, scrypt_cost = costs
    if iterations > MAX_KDF_ITERATIONS or scrypt_cost > MAX_SCRYPT_COST:
        count = iterations if iterations > MAX_KDF_ITERATIONS else scrypt_cost
        raise CertificateLoadError(
            name,
            f"the {what} asks for {count} key-derivation iterations, more than the "
            f"{MAX_KDF_ITERATIONS} (scrypt cost {MAX_SCRYPT_COST}) accepted",
            "export it again with the tool's default protection",
        )


def _load_pfx(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    from cryptography.hazmat.primitives.serialization import pkcs12

    from sectigo_chain.x509.pfx import pfx_kdf_costs, read_pfx_protection

    _check_kdf(pfx_kdf_costs(data), name, "PFX")
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
    _check_count(len(certs), name)
    certs = [checked_certificate(c, name) for c in certs]
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
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

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
