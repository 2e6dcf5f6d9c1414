"""Certificate builders shared by the survivor tests of x509/ (issue 20): names with only a
CN, and certificates valid a year either side of ``AT``, the instant those tests judge at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_chain.testing.lab import make_certificate, new_key

UTC = dt.timezone.utc
AT = dt.datetime(2026, 6, 1, tzinfo=UTC)
YEAR = dt.timedelta(days=365)
Key = ec.EllipticCurvePrivateKey


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca(
    cn: str,
    key: Key,
    issuer: str,
    issuer_key: Key,
    nb: dt.datetime = AT - YEAR,
    na: dt.datetime = AT + YEAR,
    *,
    ca: bool = True,
    dns_names: Sequence[str] = (),
    key_ids: bool = False,
) -> x509.Certificate:
    """``cn`` issued by ``issuer`` (signed with ``issuer_key``); a leaf with ``ca=False``.
    ``key_ids``: with the issuer's key identifier too (webpki verifiers require it)."""
    issuer_ski = (
        x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key()).digest
        if key_ids
        else None
    )
    return make_certificate(
        subject=name(cn),
        public_key=key.public_key(),
        issuer=name(issuer),
        issuer_key=issuer_key,
        not_before=nb,
        not_after=na,
        ca=ca,
        dns_names=dns_names,
        issuer_ski=issuer_ski,
    )


def keys(n: int) -> list[Key]:
    return [new_key("ECC") for _ in range(n)]  # type: ignore[misc]
