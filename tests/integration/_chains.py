"""Tiny certificate chains for the loopback TLS tests (root -> intermediate -> leaf).

Built with ``cryptography`` only, so the tests depend on nothing else. Keys are small and
fast (P-256, or RSA-2048 when asked); the certificates are valid for a day around now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


@dataclass(frozen=True)
class TestChain:
    """A leaf with its key, its intermediate and its root (leaf first, like a server sends it)."""

    __test__ = False  # not a pytest test class

    leaf: x509.Certificate
    key: PrivateKey
    intermediate: x509.Certificate
    root: x509.Certificate

    @property
    def served(self) -> list[x509.Certificate]:
        """What a correctly configured server sends: leaf, then the intermediate."""
        return [self.leaf, self.intermediate]


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sectigo_chain tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    subject: str,
    key: PrivateKey,
    *,
    issuer: x509.Certificate | None = None,
    issuer_key: PrivateKey | None = None,
    ca: bool,
    dns_names: tuple[str, ...] = (),
) -> x509.Certificate:
    """Issue one certificate; self-signed when ``issuer`` is None."""
    now = dt.datetime.now(dt.timezone.utc)
    signer = issuer_key if issuer_key is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    usage = dict.fromkeys(_USAGES, False)
    usage.update(key_cert_sign=ca, crl_sign=ca, digital_signature=not ca)
    builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if not ca:
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        builder = builder.add_extension(eku, critical=False)
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def make_chain(name: str = "localhost", *, kind: str = "ec", label: str = "Test") -> TestChain:
    """A fresh root -> intermediate -> leaf chain; ``label`` keeps subjects of chains apart."""
    root_key, inter_key, leaf_key = new_key(kind), new_key(kind), new_key(kind)
    root = issue(f"{label} Root", root_key, ca=True)
    inter = issue(f"{label} Intermediate", inter_key, issuer=root, issuer_key=root_key, ca=True)
    leaf = issue(name, leaf_key, issuer=inter, issuer_key=inter_key, ca=False, dns_names=(name,))
    return TestChain(leaf=leaf, key=leaf_key, intermediate=inter, root=root)
