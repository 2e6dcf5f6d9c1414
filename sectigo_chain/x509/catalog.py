"""The Sectigo hierarchy as data: which certificate is which, and where it belongs on Windows.

The real CA certificates ship inside the package (``sectigo_chain/data/sectigo/``); each is
pinned by SHA-256. The packaged catalog is built from the pins without reading a file: each
certificate is read, parsed and checked against its pin the first time it is used (a damaged
file raises :class:`~sectigo_chain.errors.CatalogError` then), and the thumbprints and key
identifiers of the entries are precomputed (``_SHIPPED_FACTS``, checked by a test). Sectigo CAs
whose PEM we do not ship are still recognised by fingerprint and name (``shipped=False``).

Roles: a *self-signed root* (R46, E46, USERTrust RSA/ECC, AAA), a *cross-signed root* (the same
subject and key as a root, issued by another root: R46 by USERTrust RSA, E46 by USERTrust ECC,
the AAA crosses) and an *issuing CA* (DV/OV/EV R36, DV E36, ...).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from sectigo_chain.errors import CatalogError, InputError
from sectigo_chain.x509._record import Record
from sectigo_chain.x509.certs import (
    Encoding,
    PublicFormat,
    aki_hex,
    common_name,
    sha256_hex,
    signed_by,
    ski_hex,
    thumbprint,
)

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = [
    "Catalog",
    "CatalogEntry",
    "CrossSignAnswer",
    "Role",
    "RootKey",
    "catalog_from_pem",
    "cross_sign_for",
    "default_catalog",
    "identify",
    "package_data",
]

Role = Literal["self_signed_root", "cross_signed_root", "issuing_ca"]
RootKey = Literal["R46", "E46", "USERTrust RSA", "USERTrust ECC", "AAA"]
StoreName = Literal["Root", "CA"]
CrossSignMethod = Literal["signature", "issuer_key_id", "issuer_name", "key_type_guess", "none"]


class _Meta(Record):
    id: str
    name: str
    subject_cn: str
    issuer_cn: str
    role: Role
    root: RootKey  # the key this certificate is, or chains up to first (R36 -> R46)
    sha256: str
    ski: str | None = None  # only for pinned-only entries; shipped ones read it from the cert


# Shipped certificates: id (= file stem), display name, subject, issuer, role, root key, SHA-256.
_SHIPPED: tuple[_Meta, ...] = tuple(
    _Meta(id=i, name=n, subject_cn=s, issuer_cn=iss, role=cast(Role, r), root=cast(RootKey, k),
          sha256=h)
    for i, n, s, iss, r, k, h in (
        ("r46-root-selfsigned", "Sectigo R46 (self-signed root)",
         "Sectigo Public Server Authentication Root R46",
         "Sectigo Public Server Authentication Root R46", "self_signed_root", "R46",
         "7BB647A62AEEAC88BF257AA522D01FFEA395E0AB45C73F93F65654EC38F25A06"),
        ("r46-cross-usertrust-rsa", "Sectigo R46 cross-signed by USERTrust RSA",
         "Sectigo Public Server Authentication Root R46",
         "USERTrust RSA Certification Authority", "cross_signed_root", "R46",
         "92F351BF3D54164DFA8DD8F9E1139D3150349786485D2B9EECD00E2971C1E6C5"),
        ("e46-root-selfsigned", "Sectigo E46 (self-signed root)",
         "Sectigo Public Server Authentication Root E46",
         "Sectigo Public Server Authentication Root E46", "self_signed_root", "E46",
         "C90F26F0FB1B4018B22227519B5CA2B53E2CA5B3BE5CF18EFE1BEF47380C5383"),
        ("e46-cross-usertrust-ecc", "Sectigo E46 cross-signed by USERTrust ECC",
         "Sectigo Public Server Authentication Root E46",
         "USERTrust ECC Certification Authority", "cross_signed_root", "E46",
         "EA6B89ED6907A209FF9188676FB164E7ACED894B8996DFBE5CE5BBCC22DE4DDD"),
        ("e46-cross-aaa", "Sectigo E46 cross-signed by AAA Certificate Services",
         "Sectigo Public Server Authentication Root E46", "AAA Certificate Services",
         "cross_signed_root", "E46",
         "6802701F0FD0960FF2B51F39AAEB20A778D83261A959AD0D7FF0BE54240F673D"),
        ("ca-dv-r36", "Sectigo CA DV R36", "Sectigo Public Server Authentication CA DV R36",
         "Sectigo Public Server Authentication Root R46", "issuing_ca", "R46",
         "8C54C334B66BA4E426772AF4A3F9136C19A1AEC729FDB28C535C07A5A4EF22E0"),
        ("ca-ov-r36", "Sectigo CA OV R36", "Sectigo Public Server Authentication CA OV R36",
         "Sectigo Public Server Authentication Root R46", "issuing_ca", "R46",
         "6542D176BED50F193C0CE297AE44ECD8A0A86BEC2EDE682769344059B4E78530"),
        ("ca-ev-r36", "Sectigo CA EV R36", "Sectigo Public Server Authentication CA EV R36",
         "Sectigo Public Server Authentication Root R46", "issuing_ca", "R46",
         "7A1A24285E25E94DF27CE8B344B1BB6B32F0254FF0D7B5AB6E856AE90CFDE55C"),
        ("ca-dv-e36", "Sectigo CA DV E36", "Sectigo Public Server Authentication CA DV E36",
         "Sectigo Public Server Authentication Root E46", "issuing_ca", "E46",
         "873F0BA80E3AC222656DFD04158CC15C2927D42D5D05F01DEE4A47EB43A916DF"),
        ("usertrust-rsa-root-selfsigned", "USERTrust RSA (self-signed root)",
         "USERTrust RSA Certification Authority", "USERTrust RSA Certification Authority",
         "self_signed_root", "USERTrust RSA",
         "E793C9B02FD8AA13E21C31228ACCB08119643B749C898964B1746D46C3D4CBD2"),
        ("usertrust-ecc-root-selfsigned", "USERTrust ECC (self-signed root)",
         "USERTrust ECC Certification Authority", "USERTrust ECC Certification Authority",
         "self_signed_root", "USERTrust ECC",
         "4FF460D54B9C86DABFBCFC5712E0400D2BED3FBC4D4FBDAA86E06ADCD2A9AD7A"),
        ("usertrust-rsa-cross-aaa", "USERTrust RSA cross-signed by AAA Certificate Services",
         "USERTrust RSA Certification Authority", "AAA Certificate Services",
         "cross_signed_root", "USERTrust RSA",
         "68B9C761219A5B1F0131784474665DB61BBDB109E00F05CA9F74244EE5F5F52B"),
        ("usertrust-ecc-cross-aaa", "USERTrust ECC cross-signed by AAA Certificate Services",
         "USERTrust ECC Certification Authority", "AAA Certificate Services",
         "cross_signed_root", "USERTrust ECC",
         "A6CF64DBB4C8D5FD19CE48896068DB03B533A8D1336C6256A87D00CBB3DEF3EA"),
        ("aaa-certificate-services-root", "AAA Certificate Services (self-signed root)",
         "AAA Certificate Services", "AAA Certificate Services", "self_signed_root", "AAA",
         "D7A7A0FB5D7E2731D771E9484EBCDEF71D5F0C3E0A2948782BC83EE0EA699EF4"),
        ("sectigo-rsa-dv-secure-server-ca", "Sectigo RSA DV Secure Server CA (older hierarchy)",
         "Sectigo RSA Domain Validation Secure Server CA",
         "USERTrust RSA Certification Authority", "issuing_ca", "USERTrust RSA",
         "7FA4FF68EC04A99D7528D5085F94907F4D1DD1C5381BACDC832ED5C960214676"),
    )
)  # fmt: skip

# Windows thumbprint (SHA-1) and subject key identifier of each shipped certificate, so that the
# packaged catalog's entries need no file read; tests/unit/test_catalog.py checks them against
# the files (which are themselves checked against their SHA-256 pins when first used).
_SHIPPED_FACTS: dict[str, tuple[str, str | None]] = {
    "r46-root-selfsigned": (
        "AD98F9F3E47D753B65D482B3A45217BB6EF5E438",
        "5673586495F9921AB0122A046279A14015882149",
    ),
    "r46-cross-usertrust-rsa": (
        "2B18947A6A9FC7764FD8B5FB18A863B0C6DAC24F",
        "5673586495F9921AB0122A046279A14015882149",
    ),
    "e46-root-selfsigned": (
        "EC8A396C40F02EBC4275D49FAB1C1A5B67BED29A",
        "D122DA4C59F14B5F2638AA9DD6EEEB0DC3FBA961",
    ),
    "e46-cross-usertrust-ecc": (
        "3F969989F5310E9C050DFFD7ABC15530E3C13AA0",
        "D122DA4C59F14B5F2638AA9DD6EEEB0DC3FBA961",
    ),
    "e46-cross-aaa": (
        "8A7EEC444904F9D0234F5456EE71F0F7DDE7C561",
        "D122DA4C59F14B5F2638AA9DD6EEEB0DC3FBA961",
    ),
    "ca-dv-r36": (
        "DD55B4520291E276588F0DD02FAFD83A7368E0FA",
        "68C01216180EAFCEF687A63257A346515DCB0727",
    ),
    "ca-ov-r36": (
        "321CA056E4E48D57F179A3BDDECBC5213B9916C0",
        "E36674BB70688D2C5D4E0EA64A8F9B37229C8292",
    ),
    "ca-ev-r36": (
        "9924CA1790C918AB1A43B7AD9B4FA16006FBAEDC",
        "982D5E1E8FEB54F4B9FF5595AD4CC77EA498AE7B",
    ),
    "ca-dv-e36": (
        "566348E656E1FA6C4E2EE6725916E8F4E3738A07",
        "1799A804C16FE42D70A80A103D03D3E91AB82663",
    ),
    "usertrust-rsa-root-selfsigned": (
        "2B8F1B57330DBBA2D07A6C51F70EE90DDAB9AD8E",
        "5379BF5AAA2B4ACF5480E1D89BC09DF2B20366CB",
    ),
    "usertrust-ecc-root-selfsigned": (
        "D1CBCA5DB2D52A7F693B674DE5F05A1D0C957DF0",
        "3AE10986D4CF19C29676744976DCE035C663639A",
    ),
    "usertrust-rsa-cross-aaa": (
        "D89E3BD43D5D909B47A18977AA9D5CE36CEE184C",
        "5379BF5AAA2B4ACF5480E1D89BC09DF2B20366CB",
    ),
    "usertrust-ecc-cross-aaa": (
        "CA7788C32DA1E4B7863A4FB57D00B55DDACBC7F9",
        "3AE10986D4CF19C29676744976DCE035C663639A",
    ),
    "aaa-certificate-services-root": (
        "D1EB23A46D17D68FD92564C2F1F1601764D8E349",
        "A0110A233E96F107ECE2AF29EF82A57FD030A4B4",
    ),
    "sectigo-rsa-dv-secure-server-ca": (
        "33E4E80807204C2B6182A3A14B591ACD25B5F0DB",
        "8D8C5EC454AD8AE177E99BF99B05E1B8018D61E1",
    ),
}

# Known by fingerprint only (listed by Sectigo, no copy shipped). Source: Sectigo's published CA
# list (sectigo/ca_certificate_lists, cp_cps_and_self_assessment/list_for_cp_cps_and_self_assessment
# .csv at commit 0081bec3ba83 for the E36 SKIs), as recorded in shared/sectigo/manifest.json.
_PINNED_ONLY: tuple[_Meta, ...] = tuple(
    _Meta(id=i, name=n, subject_cn=s, issuer_cn=iss, role=cast(Role, r), root=cast(RootKey, k),
          sha256=h, ski=ski)
    for i, n, s, iss, r, k, h, ski in (
        ("ca-ov-e36", "Sectigo CA OV E36", "Sectigo Public Server Authentication CA OV E36",
         "Sectigo Public Server Authentication Root E46", "issuing_ca", "E46",
         "4102BB08B7EA19E567EB6710384C540AFDAD993AF0D9DFBF91CA6273755B8BA0",
         "4C387A25346BFDF98F1A601C9271AA67F98237EB"),
        ("ca-ev-e36", "Sectigo CA EV E36", "Sectigo Public Server Authentication CA EV E36",
         "Sectigo Public Server Authentication Root E46", "issuing_ca", "E46",
         "FD917B0D094FAA4DB1BBAF9ED7AC55BE5162D971C227B34E7085CA537A4A4B47",
         "E27166C73AE506B65D9B410A156A2DC5B1E63774"),
        ("r46-cross-aaa", "Sectigo R46 cross-signed by AAA Certificate Services",
         "Sectigo Public Server Authentication Root R46", "AAA Certificate Services",
         "cross_signed_root", "R46",
         "CE75580BC6796D3B3EA2C3E74259D0D403072408E960C77139C2FB5A3D9419E4",
         "5673586495F9921AB0122A046279A14015882149"),
    )
)  # fmt: skip


# Newer issuing CAs that Sectigo's list names under R46/E46 (shared/sectigo/MANIFEST.md: DV/OV/EV
# R35 2025-08-01..2035-07-31, DV/OV/EV R40 and E40 2025-05-14..2040-05-13). Neither a copy nor a
# fingerprint could be obtained here, so they are known by NAME only: a leaf under one of them is
# recognised as R46/E46 ("issuer recognised by name"), never by fingerprint. TODO: pin them.
_KNOWN_BY_NAME_ONLY: dict[str, RootKey] = {
    f"Sectigo Public Server Authentication CA {level} {gen}": ("E46" if gen == "E40" else "R46")
    for gen, levels in (("R35", "DV OV EV"), ("R40", "DV OV EV"), ("E40", "DV OV EV"))
    for level in levels.split()
}


class CatalogEntry(Record):
    """One known Sectigo CA certificate: its role and the Windows store it belongs in."""

    id: str
    name: str
    subject_cn: str
    issuer_cn: str
    role: Role
    root: RootKey
    sha256: str
    thumbprint: str | None
    ski: str | None
    shipped: bool
    store_location: Literal["LocalMachine"] = "LocalMachine"
    store_name: StoreName
    remove_for_iis_fix: bool = False
    note: str = ""

    @property
    def store(self) -> str:
        """``LocalMachine\\CA`` or ``LocalMachine\\Root``."""
        return f"{self.store_location}\\{self.store_name}"

    def __str__(self) -> str:
        remove = "; removed by the IIS fix" if self.remove_for_iis_fix else ""
        return (
            f"{self.name} ({self.role}, issued by {self.issuer_cn}; belongs in "
            f"{self.store}{remove}; SHA-1 {self.thumbprint or '-'})"
        )


def _entry(
    meta: _Meta,
    cert: x509.Certificate | None,
    facts: tuple[str, str | None] | None = None,
) -> CatalogEntry:
    """The entry of ``meta``: shipped when ``cert`` (or its precomputed ``facts``: thumbprint,
    SKI) is given."""
    is_root = meta.role == "self_signed_root"
    remove = is_root and meta.root in ("R46", "E46")
    note = ""
    if remove:
        cross = "USERTrust RSA" if meta.root == "R46" else "USERTrust ECC"
        note = (
            f"remove from LocalMachine\\Root for the IIS fix: while it is there Windows serves the "
            f"short chain; import the {meta.root} cross-signed by {cross} into LocalMachine\\CA"
        )
    elif meta.role == "cross_signed_root" and meta.root in ("R46", "E46"):
        note = "intermediate for the IIS fix: belongs in LocalMachine\\CA, never in Root"
    return CatalogEntry(
        id=meta.id,
        name=meta.name,
        subject_cn=meta.subject_cn,
        issuer_cn=meta.issuer_cn,
        role=meta.role,
        root=meta.root,
        sha256=meta.sha256,
        thumbprint=facts[0] if facts else thumbprint(cert) if cert is not None else None,
        ski=facts[1] if facts else ski_hex(cert) if cert is not None else meta.ski,
        shipped=cert is not None or facts is not None,
        store_name="Root" if is_root else "CA",
        remove_for_iis_fix=remove,
        note=note,
    )


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


class Catalog:
    """Known CA certificates with their roles; lookups by fingerprint, key and name."""

    def __init__(
        self,
        entries: Iterable[CatalogEntry],
        certificates: Mapping[str, x509.Certificate],
    ) -> None:
        self.entries: tuple[CatalogEntry, ...] = tuple(entries)
        self._by_sha = {e.sha256: e for e in self.entries}
        self._by_id = {e.id: e for e in self.entries}
        # id -> certificate (shipped entries only); the packaged files load on first use
        self._certs: Mapping[str, x509.Certificate] = (
            certificates if isinstance(certificates, _PackagedFiles) else dict(certificates)
        )

    @functools.cached_property
    def _root_spki(self) -> dict[bytes, RootKey]:
        """Root keys by SPKI (parses the shipped roots and crosses on first use)."""
        out: dict[bytes, RootKey] = {}
        for e in self.entries:
            if e.role != "issuing_ca" and e.id in self._certs:
                out.setdefault(_spki(self._certs[e.id]), e.root)
        return out

    @classmethod
    def from_certificates(
        cls, certificates: Mapping[str, x509.Certificate], *, pinned_only: bool = False
    ) -> Catalog:
        """Build a catalog whose entries use the standard ids (see ``_SHIPPED``) but these
        certificates, e.g. a lab hierarchy from :mod:`sectigo_chain.testing.lab`."""
        metas = {m.id: m for m in _SHIPPED}
        entries = []
        for cid, cert in certificates.items():
            meta = metas[cid].model_copy(update={"sha256": sha256_hex(cert)})
            entries.append(_entry(meta, cert))
        if pinned_only:
            entries.extend(_entry(m, None) for m in _PINNED_ONLY)
        return cls(entries, certificates)

    def identify(self, cert: x509.Certificate) -> CatalogEntry | None:
        """The entry for exactly this certificate (by SHA-256), or None."""
        return self._by_sha.get(sha256_hex(cert))

    def entry(self, entry_id: str) -> CatalogEntry:
        """The entry with this id; KeyError if unknown."""
        return self._by_id[entry_id]

    def certificate(self, entry_id: str) -> x509.Certificate:
        """The shipped certificate of an entry; KeyError if not shipped."""
        return self._certs[entry_id]

    def certificates(self) -> list[x509.Certificate]:
        """Every shipped certificate."""
        return list(self._certs.values())

    def root_key_of(self, cert: x509.Certificate) -> RootKey | None:
        """Which root key (R46, E46, USERTrust ...) ``cert``'s public key is, if any."""
        return self._root_spki.get(_spki(cert))

    def cross_sign(self, root: Literal["R46", "E46"]) -> CatalogEntry:
        """The cross-sign the IIS fix installs: R46 by USERTrust RSA, E46 by USERTrust ECC."""
        issuer = (
            "USERTrust RSA Certification Authority"
            if root == "R46"
            else ("USERTrust ECC Certification Authority")
        )
        for e in self.entries:
            if e.role == "cross_signed_root" and e.root == root and e.issuer_cn == issuer:
                return e
        raise KeyError(f"no {root} cross-sign in this catalog")

    def self_signed(self, root: RootKey) -> CatalogEntry:
        """The self-signed root certificate of a root key."""
        for e in self.entries:
            if e.role == "self_signed_root" and e.root == root:
                return e
        raise KeyError(f"no self-signed {root} in this catalog")

    def root_by_name(self, subject_cn: str) -> RootKey | None:
        """The root key of a known CA (issuing CA, cross or root), by its common name."""
        for e in self.entries:
            if e.subject_cn == subject_cn:
                return e.root
        return _KNOWN_BY_NAME_ONLY.get(subject_cn)

    def __repr__(self) -> str:
        return f"Catalog({len(self.entries)} entries, {len(self._certs)} certificates)"


def package_data(folder: str) -> Traversable:
    """``sectigo_chain/data/<folder>``: a plain path when the package is a folder on disk (as a
    wheel installs it; ``importlib.resources`` imports ``zipfile`` to find that out), else
    what ``importlib.resources`` gives."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # sectigo_chain/
    if os.path.isdir(os.path.join(here, "data", folder)):
        from pathlib import Path

        return Path(here, "data", folder)
    from importlib import resources

    return resources.files("sectigo_chain") / "data" / folder


class _PackagedFiles(Mapping[str, x509.Certificate]):
    """The shipped certificates by id, each read, parsed and checked against its SHA-256 pin
    on first use (then kept). Iterating lists the ids without reading a file."""

    def __init__(self, metas: Sequence[_Meta]) -> None:
        self._metas = {m.id: m for m in metas}
        self._loaded: dict[str, x509.Certificate] = {}
        self._folder = package_data("sectigo")

    def __getitem__(self, entry_id: str) -> x509.Certificate:
        cert = self._loaded.get(entry_id)
        if cert is None:
            cert = self._loaded[entry_id] = self._load(self._metas[entry_id])
        return cert

    def __iter__(self) -> Iterator[str]:
        return iter(self._metas)

    def __len__(self) -> int:
        return len(self._metas)

    def _load(self, meta: _Meta) -> x509.Certificate:
        try:
            cert = x509.load_pem_x509_certificate((self._folder / f"{meta.id}.pem").read_bytes())
        except (OSError, ValueError) as exc:
            raise CatalogError(
                f"packaged certificate {meta.id}.pem is missing or damaged ({exc}); "
                "reinstall sectigo-chain"
            ) from None
        if sha256_hex(cert) != meta.sha256:
            raise CatalogError(
                f"packaged certificate {meta.id}.pem does not match its SHA-256 pin "
                f"(got {sha256_hex(cert)}, pinned {meta.sha256}); reinstall sectigo-chain"
            )
        return cert


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The real Sectigo catalog from the package data. No file is read here: each certificate
    is read and checked against its SHA-256 pin when first used (:class:`CatalogError` if it
    does not match or cannot be read)."""
    entries = [_entry(meta, None, _SHIPPED_FACTS[meta.id]) for meta in _SHIPPED]
    entries.extend(_entry(m, None) for m in _PINNED_ONLY)
    return Catalog(entries, _PackagedFiles(_SHIPPED))


_pem_lock = threading.Lock()
_pem_catalogs: dict[tuple[str, int, int], Catalog] = {}


def catalog_from_pem(path: str | os.PathLike[str]) -> Catalog:
    """A catalog of stand-ins for the Sectigo CA certificates, read from a PEM bundle.

    For rehearsals against a test PKI that copies the Sectigo hierarchy's names (the lab of
    :mod:`sectigo_chain.testing.lab`, e.g. behind the loopback WinRM endpoint): each certificate
    takes the id and role of the shipped certificate with the same subject and issuer names.
    Loaded once per file version (path, size, modification time), so every host of a run shares
    one catalog. :class:`InputError` if the file cannot be read, holds no certificate, or holds
    one that stands for no Sectigo CA certificate (or two for the same one).
    """
    name = os.fspath(path)
    try:
        facts = os.stat(name)
        key = (os.path.realpath(name), facts.st_size, facts.st_mtime_ns)
        with _pem_lock:
            known = _pem_catalogs.get(key)
        if known is not None:
            return known
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read the catalog file {name}: {exc.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise InputError(f"{name} holds no PEM certificate (expected the CA certificates of a PKI)")
    shipped = default_catalog()
    by_names = {}
    for meta in _SHIPPED:
        real = shipped.certificate(meta.id)
        by_names[(real.subject, real.issuer)] = meta.id
    found: dict[str, x509.Certificate] = {}
    for cert in certs:
        entry_id = by_names.get((cert.subject, cert.issuer))
        if entry_id is None:
            raise InputError(
                f"{name}: {cert.subject.rfc4514_string()} issued by "
                f"{cert.issuer.rfc4514_string()} stands for no Sectigo CA certificate"
            )
        if entry_id in found:
            raise InputError(f"{name}: two certificates stand for {entry_id}")
        found[entry_id] = cert
    catalog = Catalog.from_certificates(found)
    with _pem_lock:
        return _pem_catalogs.setdefault(key, catalog)


def identify(cert: x509.Certificate, catalog: Catalog | None = None) -> CatalogEntry | None:
    """The catalog entry of ``cert`` (role, store), or None if it is not a known Sectigo CA."""
    return (catalog or default_catalog()).identify(cert)


class CrossSignAnswer(Record):
    """Which cross-sign a leaf needs for the IIS fix, and how that was decided."""

    status: Literal["needs_cross_sign", "not_r46_e46", "not_applicable"]
    root: Literal["R46", "E46"] | None = None
    cross_sign: CatalogEntry | None = None
    method: CrossSignMethod
    guessed: bool = False
    explanation: str

    def __str__(self) -> str:
        return self.explanation


def _find_issuer(
    cert: x509.Certificate, pool: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    aki = aki_hex(cert)
    candidates = [c for c in pool if c.subject == cert.issuer]
    candidates.sort(key=lambda c: 0 if aki is not None and ski_hex(c) == aki else 1)
    for cand in candidates:
        if cand is not cert and signed_by(cert, cand):
            return cand
    return None


def cross_sign_for(
    leaf_or_chain: x509.Certificate | Sequence[x509.Certificate],
    catalog: Catalog | None = None,
) -> CrossSignAnswer:
    """Decide which cross-sign (R46 by USERTrust RSA, or E46 by USERTrust ECC) a leaf needs.

    Follows the issuer by name, key identifier and signature through the given chain and the
    catalog, so an issuing CA we do not ship but that was signed by R46's key is still
    recognised. The signature walk follows at most eight issuers (a bound that ends
    cross-signing loops); past them, or when an issuer is not at hand, the last issuer is
    recognised by key identifier, then by a known name, then from the leaf's key type
    (``guessed``).
    A certificate from another CA gets ``status="not_r46_e46"``, never an exception.
    """
    cat = catalog or default_catalog()
    chain = [leaf_or_chain] if isinstance(leaf_or_chain, x509.Certificate) else list(leaf_or_chain)
    if not chain:
        raise ValueError("cross_sign_for needs a certificate or a non-empty chain")
    leaf = chain[0]
    own = cat.identify(leaf)
    if own is not None and own.role != "issuing_ca":
        return CrossSignAnswer(
            status="not_applicable",
            method="none",
            explanation=f"this is {own.name}, a root certificate, not a leaf",
        )
    pool = chain[1:] + cat.certificates()

    def answer(root: RootKey, method: CrossSignMethod, via: str) -> CrossSignAnswer:
        if root not in ("R46", "E46"):
            return CrossSignAnswer(
                status="not_r46_e46",
                method=method,
                explanation=(f"chains to {root} directly ({via}); no R46/E46 cross-sign is needed"),
            )
        cross = cat.cross_sign(root)
        guessed = method == "key_type_guess"
        how = {
            "signature": "issuer signature verified",
            "issuer_key_id": "issuer recognised by key identifier, signature not checked",
            "issuer_name": "issuer recognised by name, signature not checked",
            "key_type_guess": "GUESSED from the leaf's key type: the issuer is unknown",
        }[method]
        return CrossSignAnswer(
            status="needs_cross_sign",
            root=root,
            cross_sign=cross,
            method=method,
            guessed=guessed,
            explanation=(
                f"chains to {root} via {via} ({how}): needs {cross.name}, thumbprint "
                f"{cross.thumbprint}, in LocalMachine\\CA"
            ),
        )

    current = leaf
    for _ in range(8):
        issuer = _find_issuer(current, pool)
        if issuer is None:
            break
        root = cat.root_key_of(issuer)
        if root is not None:
            return answer(root, "signature", common_name(current.issuer))
        current = issuer
    # The issuer is not in the pool: recognise it by key identifier, then by name.
    aki = aki_hex(current)
    if aki is not None:
        for e in cat.entries:
            if e.ski == aki:
                return answer(e.root, "issuer_key_id", common_name(current.issuer))
    root_by_name = cat.root_by_name(common_name(current.issuer))
    if root_by_name is not None:
        return answer(root_by_name, "issuer_name", common_name(current.issuer))
    issuer_text = current.issuer.rfc4514_string()
    if "sectigo" in issuer_text.lower():
        is_ec = isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
        root_guess: RootKey = "E46" if is_ec else "R46"
        return answer(root_guess, "key_type_guess", common_name(current.issuer))
    return CrossSignAnswer(
        status="not_r46_e46",
        method="none",
        explanation=(
            f"not a Sectigo R46/E46 certificate (issuer: {issuer_text}); "
            "the R46/E46 IIS fix does not apply"
        ),
    )
