"""A Sectigo-shaped lab hierarchy with real keys, for tests, the demo and the simulated host.

The lab certificates copy the *names and shape* of the real hierarchy (USERTrust RSA/ECC roots,
AAA Certificate Services, R46/E46 self-signed and cross-signed with the same subject and key,
CA DV R36/E36 issuing CAs) but have their own keys, so leaves can be issued and TLS served.
``lab.catalog`` is the matching :class:`~sectigo_chain.x509.catalog.Catalog` (same ids and roles,
lab fingerprints). Nothing here is trusted anywhere: it is test material.

:func:`default_lab` is the *pinned* lab (``LabHierarchy.create(pinned=True)``): its keys are
shipped in ``lab_keys.pem`` beside this module, its serial numbers are fixed and its signatures
deterministic (RSA PKCS#1 v1.5; ECDSA per RFC 6979), so every process on every machine builds
byte-identical lab CA certificates. That is what lets a simulated host behind a loopback WinRM
endpoint in one process be judged by a controller (an Ansible worker) in another with the same
lab catalog.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sectigo_chain.x509.catalog import Catalog
from sectigo_chain.x509.certs import PrivateKey
from sectigo_chain.x509.load import to_legacy_pfx

__all__ = [
    "LabCA",
    "LabHierarchy",
    "LabLeaf",
    "default_lab",
    "make_certificate",
    "new_key",
]

Family = Literal["RSA", "ECC"]
UTC = dt.timezone.utc

_USERTRUST_RSA = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "New Jersey"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Jersey City"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "The USERTRUST Network"),
        x509.NameAttribute(NameOID.COMMON_NAME, "USERTrust RSA Certification Authority"),
    ]
)
_USERTRUST_ECC = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "New Jersey"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Jersey City"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "The USERTRUST Network"),
        x509.NameAttribute(NameOID.COMMON_NAME, "USERTrust ECC Certification Authority"),
    ]
)
_AAA = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Greater Manchester"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Salford"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Comodo CA Limited"),
        x509.NameAttribute(NameOID.COMMON_NAME, "AAA Certificate Services"),
    ]
)


def _sectigo(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sectigo Limited"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def new_key(
    family: Family, *, bits: int = 2048, curve: ec.EllipticCurve | None = None
) -> PrivateKey:
    """A fresh RSA or EC private key (RSA 2048 / P-256 by default: fast for tests)."""
    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return ec.generate_private_key(curve or ec.SECP256R1())


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def make_certificate(
    *,
    subject: x509.Name,
    public_key: object,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    path_length: int | None = None,
    dns_names: Sequence[str] = (),
    serial: int | None = None,
    issuer_ski: bytes | None = None,
) -> x509.Certificate:
    """Sign one certificate with the usual extensions (SKI from the key, AKI from the issuer)."""
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)  # type: ignore[arg-type]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(ski, critical=False)
    )
    if issuer_ski is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(issuer_ski, None, None), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        if dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
            )
    if ca and issuer != subject:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        # Deterministic ECDSA (RFC 6979): the same key and contents give the same certificate.
        return builder.sign(
            issuer_key,
            _hash_for(issuer_key),  # type: ignore[arg-type]
            ecdsa_deterministic=True,
        )
    return builder.sign(issuer_key, _hash_for(issuer_key))  # type: ignore[arg-type]


def _ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


@dataclass(frozen=True)
class LabCA:
    """A lab CA certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)


@dataclass(frozen=True)
class LabLeaf:
    """A lab leaf with its key and the issuing CA that signed it."""

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)
    issuer: LabCA
    family: Family

    def pfx(self, password: str, *, legacy: bool = True, with_chain: bool = False) -> bytes:
        """The leaf and its key as a PFX (3DES/SHA-1 "legacy" protection by default)."""
        chain = [self.issuer.cert] if with_chain else []
        if legacy:
            return to_legacy_pfx(self.key, self.cert, password, chain=chain)
        from cryptography.hazmat.primitives.serialization import (
            BestAvailableEncryption,
            pkcs12,
        )

        return pkcs12.serialize_key_and_certificates(
            None, self.key, self.cert, chain or None, BestAvailableEncryption(password.encode())
        )


@dataclass(frozen=True)
class LabHierarchy:
    """The lab copy of the Sectigo hierarchy; ``catalog`` knows it by the standard ids."""

    aaa: LabCA
    usertrust_rsa: LabCA
    usertrust_ecc: LabCA
    usertrust_rsa_cross_aaa: x509.Certificate
    usertrust_ecc_cross_aaa: x509.Certificate
    r46_root: LabCA
    r46_cross: x509.Certificate
    e46_root: LabCA
    e46_cross: x509.Certificate
    r36: LabCA
    e36: LabCA
    catalog: Catalog = field(repr=False)

    @classmethod
    def create(cls, *, at: dt.datetime | None = None, pinned: bool = False) -> LabHierarchy:
        """Make a lab hierarchy: new random keys (well under a second), or with ``pinned`` the
        keys shipped in ``lab_keys.pem`` and fixed serial numbers, which gives the same
        certificates in every process (that is :func:`default_lab`).

        The CA certificates copy the validity dates of the real ones (R46/E46 from 2021-03-22,
        the cross-signs to 2038-01-18, R36/E36 to 2036, AAA to 2028), whatever ``at`` is:
        ``at`` is accepted for symmetry with :meth:`issue_leaf` (where it sets the leaf's
        validity) and has no effect here."""
        t0 = dt.datetime(2021, 3, 22, tzinfo=UTC)
        old = dt.datetime(2010, 2, 1, tzinfo=UTC)
        end_2038 = dt.datetime(2038, 1, 18, 23, 59, 59, tzinfo=UTC)
        end_2046 = dt.datetime(2046, 3, 21, 23, 59, 59, tzinfo=UTC)
        end_2036 = dt.datetime(2036, 3, 21, 23, 59, 59, tzinfo=UTC)
        end_2028 = dt.datetime(2028, 12, 31, 23, 59, 59, tzinfo=UTC)
        shipped = _pinned_keys() if pinned else {}

        def key(name: str, family: Family, curve: ec.EllipticCurve | None = None) -> PrivateKey:
            return shipped[name] if pinned else new_key(family, curve=curve)

        def serial(cert_id: str) -> int | None:
            return _PINNED_SERIALS[cert_id] if pinned else None

        def root(
            cert_id: str, name: x509.Name, key: PrivateKey, nb: dt.datetime, na: dt.datetime
        ) -> LabCA:
            cert = make_certificate(
                subject=name,
                public_key=key.public_key(),
                issuer=name,
                issuer_key=key,
                not_before=nb,
                not_after=na,
                ca=True,
                serial=serial(cert_id),
            )
            return LabCA(cert, key)

        def issued(
            cert_id: str,
            name: x509.Name,
            key: PrivateKey,
            by: LabCA,
            nb: dt.datetime,
            na: dt.datetime,
            path_length: int | None = None,
        ) -> x509.Certificate:
            return make_certificate(
                subject=name,
                public_key=key.public_key(),
                issuer=by.cert.subject,
                issuer_key=by.key,
                not_before=nb,
                not_after=na,
                ca=True,
                path_length=path_length,
                serial=serial(cert_id),
                issuer_ski=_ski(by.cert),
            )

        aaa = root(
            "aaa-certificate-services-root", _AAA, key("aaa", "RSA"),
            dt.datetime(2004, 1, 1, tzinfo=UTC), end_2028,
        )  # fmt: skip
        ut_rsa = root(
            "usertrust-rsa-root-selfsigned", _USERTRUST_RSA, key("usertrust-rsa", "RSA"),
            old, end_2038,
        )  # fmt: skip
        ut_ecc = root(
            "usertrust-ecc-root-selfsigned", _USERTRUST_ECC,
            key("usertrust-ecc", "ECC", ec.SECP384R1()), old, end_2038,
        )  # fmt: skip
        r46_name = _sectigo("Sectigo Public Server Authentication Root R46")
        e46_name = _sectigo("Sectigo Public Server Authentication Root E46")
        r46 = root("r46-root-selfsigned", r46_name, key("r46", "RSA"), t0, end_2046)
        e46 = root("e46-root-selfsigned", e46_name, key("e46", "ECC", ec.SECP384R1()), t0, end_2046)
        r36_key = key("r36", "RSA")
        e36_key = key("e36", "ECC")
        r36 = LabCA(
            issued(
                "ca-dv-r36", _sectigo("Sectigo Public Server Authentication CA DV R36"),
                r36_key, r46, t0, end_2036, path_length=0,
            ),
            r36_key,
        )  # fmt: skip
        e36 = LabCA(
            issued(
                "ca-dv-e36", _sectigo("Sectigo Public Server Authentication CA DV E36"),
                e36_key, e46, t0, end_2036, path_length=0,
            ),
            e36_key,
        )  # fmt: skip
        lab_certs = {
            "aaa-certificate-services-root": aaa.cert,
            "usertrust-rsa-root-selfsigned": ut_rsa.cert,
            "usertrust-ecc-root-selfsigned": ut_ecc.cert,
            "usertrust-rsa-cross-aaa": issued(
                "usertrust-rsa-cross-aaa", _USERTRUST_RSA, ut_rsa.key, aaa, t0, end_2028
            ),
            "usertrust-ecc-cross-aaa": issued(
                "usertrust-ecc-cross-aaa", _USERTRUST_ECC, ut_ecc.key, aaa, t0, end_2028
            ),
            "r46-root-selfsigned": r46.cert,
            "r46-cross-usertrust-rsa": issued(
                "r46-cross-usertrust-rsa", r46_name, r46.key, ut_rsa, t0, end_2038
            ),
            "e46-root-selfsigned": e46.cert,
            "e46-cross-usertrust-ecc": issued(
                "e46-cross-usertrust-ecc", e46_name, e46.key, ut_ecc, t0, end_2038
            ),
            "ca-dv-r36": r36.cert,
            "ca-dv-e36": e36.cert,
        }
        return cls(
            aaa=aaa,
            usertrust_rsa=ut_rsa,
            usertrust_ecc=ut_ecc,
            usertrust_rsa_cross_aaa=lab_certs["usertrust-rsa-cross-aaa"],
            usertrust_ecc_cross_aaa=lab_certs["usertrust-ecc-cross-aaa"],
            r46_root=r46,
            r46_cross=lab_certs["r46-cross-usertrust-rsa"],
            e46_root=e46,
            e46_cross=lab_certs["e46-cross-usertrust-ecc"],
            r36=r36,
            e36=e36,
            catalog=Catalog.from_certificates(lab_certs),
        )

    def issuing_ca(self, family: Family) -> LabCA:
        """CA DV R36 (RSA) or CA DV E36 (ECC)."""
        return self.r36 if family == "RSA" else self.e36

    def self_signed_root(self, family: Family) -> LabCA:
        """The self-signed R46 (RSA) or E46 (ECC)."""
        return self.r46_root if family == "RSA" else self.e46_root

    def cross(self, family: Family) -> x509.Certificate:
        """R46 cross-signed by USERTrust RSA, or E46 by USERTrust ECC."""
        return self.r46_cross if family == "RSA" else self.e46_cross

    def usertrust(self, family: Family) -> LabCA:
        """USERTrust RSA or ECC (the legacy anchor)."""
        return self.usertrust_rsa if family == "RSA" else self.usertrust_ecc

    def issue_leaf(
        self,
        dns_names: Sequence[str] = ("www.example.test",),
        *,
        family: Family = "RSA",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: PrivateKey | None = None,
        at: dt.datetime | None = None,
    ) -> LabLeaf:
        """A server certificate for ``dns_names`` under CA DV R36 (RSA) or E36 (ECC).

        Valid from one day before ``at`` to 90 days after it; ``at`` defaults to the wall clock.
        A test that judges the leaf at a fixed instant passes that instant here (one clock per
        test), or sets ``not_before``/``not_after`` itself."""
        now = at if at is not None else dt.datetime.now(UTC)
        ca = self.issuing_ca(family)
        leaf_key = key or new_key(family)
        cn = dns_names[0] if dns_names else "lab leaf"
        cert = make_certificate(
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]),
            public_key=leaf_key.public_key(),
            issuer=ca.cert.subject,
            issuer_key=ca.key,
            not_before=not_before or now - dt.timedelta(days=1),
            not_after=not_after or now + dt.timedelta(days=90),
            ca=False,
            dns_names=dns_names,
            issuer_ski=_ski(ca.cert),
        )
        return LabLeaf(cert, leaf_key, ca, family)

    def served_chain(
        self,
        leaf: LabLeaf,
        kind: Literal["cross", "short", "selfsigned", "with_root"] = "cross",
    ) -> list[x509.Certificate]:
        """Typical served chains: ``cross`` = leaf, R36, R46-cross (the fixed IIS chain);
        ``short`` = leaf, R36 (the broken IIS chain); ``selfsigned`` = leaf, R36, self-signed
        R46; ``with_root`` = the cross chain plus the USERTrust root."""
        base = [leaf.cert, leaf.issuer.cert]
        if kind == "short":
            return base
        if kind == "selfsigned":
            return [*base, self.self_signed_root(leaf.family).cert]
        chain = [*base, self.cross(leaf.family)]
        if kind == "with_root":
            chain.append(self.usertrust(leaf.family).cert)
        return chain


# Fixed serial numbers of the pinned lab (one per catalog id; any distinct positive values).
_PINNED_IDS = (
    "aaa-certificate-services-root", "usertrust-rsa-root-selfsigned",
    "usertrust-ecc-root-selfsigned", "usertrust-rsa-cross-aaa", "usertrust-ecc-cross-aaa",
    "r46-root-selfsigned", "r46-cross-usertrust-rsa", "e46-root-selfsigned",
    "e46-cross-usertrust-ecc", "ca-dv-r36", "ca-dv-e36",
)  # fmt: skip
_PINNED_SERIALS = {cert_id: 0x5EC7_1600 + n for n, cert_id in enumerate(_PINNED_IDS, start=1)}
_KEY_BLOCK = re.compile(
    r"^lab key: ([a-z0-9-]+)\n(-----BEGIN PRIVATE KEY-----\n.*?\n-----END PRIVATE KEY-----)",
    re.M | re.S,
)


@functools.lru_cache(maxsize=1)
def _pinned_keys() -> dict[str, PrivateKey]:
    """The shipped lab keys by name (``lab_keys.pem``: each block after a ``lab key: NAME``)."""
    text = resources.files("sectigo_chain.testing").joinpath("lab_keys.pem").read_text("ascii")
    keys: dict[str, PrivateKey] = {}
    for name, pem in _KEY_BLOCK.findall(text):
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
        keys[name] = key
    return keys


@functools.lru_cache(maxsize=1)
def default_lab() -> LabHierarchy:
    """The pinned lab hierarchy (the same certificates in every process; cached per process).
    A test that needs a lab of its own, unlike any other, calls ``LabHierarchy.create()``."""
    return LabHierarchy.create(pinned=True)
