"""Hostile certificates and files, made from real lab certificates by exact DER surgery.

cryptography parses names, extensions and the public key lazily, so each of these loads and
then raises on first use. Used by the bad-input corpus generator (tests/data/bad/make_corpus.py)
and by the regression tests of issue 13.
"""

from __future__ import annotations

from asn1crypto import cms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sectigo_chain.x509.certs import PrivateKey

__all__ = [
    "bad_key",
    "bad_string_subject",
    "duplicate_extension",
    "pkcs7_data",
    "resign",
]


def _der(cert: x509.Certificate | bytes) -> bytes:
    return cert if isinstance(cert, bytes) else cert.public_bytes(Encoding.DER)


def resign(tbs: ax509.TbsCertificate, key: PrivateKey | None, like: ax509.Certificate) -> bytes:
    """A certificate with ``tbs``, signed by ``key`` (the old signature kept when None)."""
    signature = like["signature_value"].native
    if key is not None:
        data = tbs.dump(force=True)
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return ax509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": like["signature_algorithm"],
            "signature_value": signature,
        }
    ).dump(force=True)


def duplicate_extension(cert: x509.Certificate | bytes, key: PrivateKey | None = None) -> bytes:
    """``cert`` with its first extension twice (RFC 5280 forbids it; parsing it raises)."""
    parsed = ax509.Certificate.load(_der(cert))
    tbs = parsed["tbs_certificate"].copy()
    exts = list(tbs["extensions"])
    tbs["extensions"] = ax509.Extensions([*exts, exts[0]])
    return resign(tbs, key, parsed)


def bad_key(cert: x509.Certificate | bytes) -> bytes:
    """``cert`` whose public key does not parse (same length, well-formed DER around it): an RSA
    modulus of zeros, an EC point (0, 0), on no curve. The signature no longer matches."""
    der = bytearray(_der(cert))
    parsed = x509.load_der_x509_certificate(bytes(der))
    key = parsed.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        n = key.public_numbers().n
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        fill = bytes(len(raw))
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        raw = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        fill = b"\x04" + bytes(len(raw) - 1)
    at = der.find(raw)
    assert at > 0, "public key not found"
    der[at : at + len(raw)] = fill
    return bytes(der)


def bad_string_subject(cert: x509.Certificate | bytes, tag: int = 0x0C) -> bytes:
    """``cert`` whose subject CN is a string of type ``tag`` (0x0C UTF8String, 0x14
    TeletexString, 0x1E BMPString) holding bytes invalid for it. Same length: the DER stays
    well-formed, only the string is wrong; the signature no longer matches."""
    der = bytearray(_der(cert))
    parsed = x509.load_der_x509_certificate(bytes(der))
    cn = parsed.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    raw = cn.encode("utf-8") if isinstance(cn, str) else cn
    subject_der = parsed.subject.public_bytes()
    start = der.find(subject_der)
    at = der.find(raw, start)
    assert start >= 0, "subject not found"
    assert at > 0, "CN not found"
    assert der[at - 2] in (0x0C, 0x13, 0x14), "CN is not a string"
    der[at - 2] = tag
    der[at : at + len(raw)] = b"\xff" * (len(raw) - 1) + (b"\xd8" if tag == 0x1E else b"\xc3")
    return bytes(der)


def pkcs7_data(content: bytes = b"not certificates") -> bytes:
    """A PKCS#7 ContentInfo of type ``data`` (not ``signedData``): no certificates."""
    return cms.ContentInfo({"content_type": "data", "content": content}).dump()
