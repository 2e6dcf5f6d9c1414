"""Where client trust profiles come from: built-in roots, pinned dated snapshots, user bundles.

A :class:`Profile` is a named set of trust anchors (pinned by SHA-256) plus options (extra
preloaded intermediates, maximum depth). Built in: ``legacy`` (USERTrust RSA/ECC),
``legacy+aaa`` (plus AAA Certificate Services), ``modern`` (Sectigo R46/E46 only), ``both``,
defined against a :class:`~sectigo_chain.x509.catalog.Catalog` so tests can use the lab hierarchy.

Dated snapshots of real clients ship as package data, pinned by SHA-256 and loaded lazily.

``sectigo_chain/data/trust-stores/`` holds one PEM bundle per snapshot (Android 14/15, Mozilla
2023-05 and current, iOS 17, JDK 17, Windows 2023-02) and ``index.json``, which pins each FILE
by SHA-256 and records its certificate count, platform, version, date and class (``legacy``:
USERTrust RSA/ECC but no Sectigo R46/E46; ``modern``: R46/E46 present). A file that does not
match its pin raises :class:`~sectigo_chain.errors.CatalogError`. Nothing is parsed until a
snapshot is asked for; each parsed snapshot is cached for the life of the process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store

from sectigo_chain.errors import CatalogError, CertificateLoadError, InputError
from sectigo_chain.x509._record import Frozen, Record, field, replace
from sectigo_chain.x509.builders import BUILDERS, BuilderName, builder_for_name, strip_builder
from sectigo_chain.x509.catalog import Catalog, RootKey, default_catalog, package_data
from sectigo_chain.x509.certs import sha256_hex
from sectigo_chain.x509.load import load_file

__all__ = [
    "BUILTIN_PROFILES",
    "LoadedSnapshot",
    "Profile",
    "SnapshotInfo",
    "builtin_profile",
    "list_profiles",
    "load_profiles",
    "load_snapshot",
    "snapshot_index",
    "snapshot_names",
    "snapshot_profile",
    "user_profile",
]

SnapshotClass = Literal["legacy", "modern"]

BUILTIN_PROFILES: dict[str, str] = {
    "legacy": "clients that trust USERTrust RSA/ECC but not Sectigo R46/E46 (e.g. Android 14 "
    "and older, Java 17, iOS 17)",
    "legacy+aaa": "legacy plus AAA Certificate Services (Comodo's 2004 root)",
    "modern": "clients that trust only Sectigo R46/E46 (no USERTrust)",
    "both": "clients that trust USERTrust RSA/ECC and Sectigo R46/E46",
    "openssl-legacy": "legacy with OpenSSL 1.1.1/3.x's path builder (old Linux clients, curl, "
    "Python: a bundle without R46/E46)",
    "openssl-1.0-legacy": "legacy with OpenSSL 1.0.2's path builder (untrusted first)",
}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL)
_REINSTALL = "reinstall sectigo-chain"


class SnapshotInfo(Record):
    """One dated trust store as recorded in the pinned index (no certificate parsed)."""

    name: str
    file: str
    platform: str
    platform_label: str
    version: str | None
    date: str
    sha256: str
    certificates: int
    markers: dict[str, bool]
    source_commit: str
    source_path: str
    upstream_url: str
    sectigo_class: SnapshotClass

    @property
    def description(self) -> str:
        """One line for listings: platform, version, date and the legacy/modern class."""
        version = f" {self.version}" if self.version else ""
        what = (
            "legacy: USERTrust RSA/ECC, no Sectigo R46/E46"
            if self.sectigo_class == "legacy"
            else "modern: Sectigo R46/E46 present"
        )
        return f"{self.platform_label}{version}, root list of {self.date} ({what})"


class LoadedSnapshot(Frozen):
    """A parsed snapshot: its index entry, its certificates and how many could not be parsed."""

    info: SnapshotInfo
    certificates: tuple[x509.Certificate, ...]
    skipped: int


def _package_dir() -> Path:
    return Path(str(package_data("trust-stores")))


def _damaged_index(path: Path, exc: Exception) -> CatalogError:
    return CatalogError(
        f"packaged trust-store index {path} is missing or damaged ({exc}); {_REINSTALL}"
    )


@functools.lru_cache(maxsize=1)
def _index_stores() -> tuple[Path, list[Any]]:
    """``index.json``'s path and its ``stores`` list, as read."""
    path = _package_dir() / "index.json"
    try:
        stores = json.loads(path.read_bytes())["stores"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _damaged_index(path, exc) from None
    if not isinstance(stores, list):
        raise _damaged_index(path, TypeError("'stores' is not a list"))
    return path, stores


@functools.lru_cache(maxsize=1)
def snapshot_index() -> dict[str, SnapshotInfo]:
    """The pinned index of packaged snapshots, by name (reads only ``index.json``)."""
    path, raw = _index_stores()
    try:
        stores = [SnapshotInfo.model_validate(s) for s in raw]
    except (ValueError, KeyError, TypeError) as exc:
        raise _damaged_index(path, exc) from None
    return {s.name: s for s in stores}


@functools.lru_cache(maxsize=1)
def _snapshot_names() -> frozenset[str]:
    """The snapshot names alone: enough to tell what kind a profile spec is, without
    validating every index entry (``check --profile NAME=PEMFILE`` at start-up)."""
    path, raw = _index_stores()
    try:
        return frozenset(str(s["name"]) for s in raw)
    except (KeyError, TypeError) as exc:
        raise _damaged_index(path, exc) from None


def snapshot_names() -> list[str]:
    """Names of the packaged snapshots, in index order."""
    return list(snapshot_index())


def _parse_bundle(data: bytes) -> tuple[list[x509.Certificate], int, int]:
    """(certificates, PEM blocks seen, blocks skipped because they do not parse)."""
    certs: list[x509.Certificate] = []
    blocks = _PEM_CERT.findall(data)
    skipped = 0
    with warnings.catch_warnings():
        # Some public roots carry a zero or negative serial (or an over-long CN): cryptography
        # still parses them but warns. They are real roots of these stores: keep them quietly.
        # (Reading such a certificate's serial_number later warns again; this module never does.)
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        for block in blocks:
            try:
                cert = x509.load_pem_x509_certificate(block)
                _ = cert.subject, cert.issuer  # names parse lazily (and warn): do it here, once
            except ValueError:
                skipped += 1
                continue
            certs.append(cert)
    return certs, len(blocks), skipped


def _load(info: SnapshotInfo, folder: Path) -> LoadedSnapshot:
    path = folder / info.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(
            f"trust-store snapshot {info.name} ({path}) cannot be read ({exc.strerror}); "
            f"{_REINSTALL}"
        ) from None
    digest = hashlib.sha256(data).hexdigest().upper()
    if digest != info.sha256.upper():
        raise CatalogError(
            f"trust-store snapshot {info.name} ({path}) does not match its SHA-256 pin "
            f"(got {digest}, pinned {info.sha256}); the file was changed or damaged: "
            f"{_REINSTALL}"
        )
    certs, blocks, skipped = _parse_bundle(data)
    if blocks != info.certificates:
        raise CatalogError(
            f"trust-store snapshot {info.name} holds {blocks} certificates, the index says "
            f"{info.certificates}; {_REINSTALL}"
        )
    return LoadedSnapshot(info=info, certificates=tuple(certs), skipped=skipped)


@functools.cache
def _load_packaged(name: str) -> LoadedSnapshot:
    return _load(snapshot_index()[name], _package_dir())


def load_snapshot(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> LoadedSnapshot:
    """Parse one snapshot after checking the file against its pin in the packaged index.

    ``data_dir`` reads the PEM file from another folder (a copy) but still checks it against
    the *packaged* pin, so a changed copy is refused. Packaged loads are cached.
    Raises :class:`KeyError` for an unknown name and :class:`CatalogError` for a bad file.
    """
    info = snapshot_index()[name]
    if data_dir is None:
        return _load_packaged(name)
    return _load(info, Path(data_dir))


# --- profiles ---------------------------------------------------------------------------------


class Profile(Frozen, kw_only=True):
    """A named set of trust anchors (pinned by SHA-256) plus validation options.

    ``anchor_sha256s`` defaults to the anchors' SHA-256 (upper-case hex); when given it is a pin
    and must match the anchors exactly (else :class:`CatalogError`). ``intermediates`` are
    certificates the client already holds (e.g. a cached cross-sign), used as if served.
    ``catalog`` is the CA catalog used to explain failures (default: the real Sectigo one).
    ``builder`` is how the client builds paths (:data:`~sectigo_chain.x509.builders.BUILDERS`);
    empty means "from the name": ``openssl-*`` uses OpenSSL's, ``openssl-1.0-*`` OpenSSL
    1.0.2's, anything else backtracks. The :class:`Store` is built once per profile and cached.
    """

    name: str
    description: str
    anchors: tuple[x509.Certificate, ...]
    anchor_sha256s: tuple[str, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    max_depth: int = 8
    source: str = ""
    skipped_certificates: int = 0
    catalog: Catalog | None = field(default=None, repr=False, compare=False)
    builder: BuilderName | Literal[""] = ""

    def __str__(self) -> str:
        """The name, what it stands for and its anchors' names (not their DER)."""
        names = ", ".join(a.subject.rfc4514_string() for a in self.anchors[:3])
        more = f" and {len(self.anchors) - 3} more" if len(self.anchors) > 3 else ""
        return (
            f"profile {self.name}: {self.description} ({len(self.anchors)} anchor(s): "
            f"{names}{more})"
        )

    def __post_init__(self) -> None:
        if not self.builder:
            object.__setattr__(self, "builder", builder_for_name(self.name))
        elif self.builder not in BUILDERS:
            raise InputError(f"profile {self.name!r}: unknown builder {self.builder!r}")
        object.__setattr__(self, "anchors", tuple(self.anchors))
        object.__setattr__(self, "intermediates", tuple(self.intermediates))
        if not self.anchors:
            raise InputError(f"profile {self.name!r} has no trust anchors; give it certificates")
        if not 1 <= self.max_depth <= 32:
            raise InputError(
                f"profile {self.name!r}: max_depth must be 1..32, not {self.max_depth}"
            )
        actual = tuple(sha256_hex(c) for c in self.anchors)
        if self.anchor_sha256s:
            pins = {p.upper() for p in self.anchor_sha256s}
            if pins != set(actual):
                raise CatalogError(
                    f"profile {self.name!r}: its anchors do not match their SHA-256 pins "
                    f"({len(pins ^ set(actual))} differ); reload the profile's certificates"
                )
        object.__setattr__(self, "anchor_sha256s", actual)

    @functools.cached_property
    def store(self) -> Store:
        """The ``cryptography`` trust store of the anchors (built once)."""
        return Store(list(self.anchors))

    @functools.cached_property
    def anchor_set(self) -> frozenset[str]:
        """The anchors' SHA-256 values, for membership tests."""
        return frozenset(self.anchor_sha256s)

    @functools.cached_property
    def anchors_by_subject(self) -> dict[x509.Name, tuple[x509.Certificate, ...]]:
        """Anchors indexed by subject name (for structural path search)."""
        out: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in self.anchors:
            out.setdefault(cert.subject, []).append(cert)
        return {k: tuple(v) for k, v in out.items()}

    def trusts(self, cert: x509.Certificate) -> bool:
        """True if exactly this certificate is one of the anchors."""
        return sha256_hex(cert) in self.anchor_set

    def with_catalog(self, catalog: Catalog | None) -> Profile:
        """The same profile explaining failures with another catalog (e.g. a lab one)."""
        if catalog is None or catalog is self.catalog:
            return self
        return replace(self, catalog=catalog, anchor_sha256s=self.anchor_sha256s)

    def with_builder(self, name: str, description: str | None = None) -> Profile:
        """The same anchors under another name; the builder follows the name (``openssl-*``)."""
        label = BUILDERS[builder_for_name(name)].label
        return replace(
            self,
            name=name,
            builder="",
            description=description or f"{self.description}; path builder: {label}",
        )


# --- built-in profiles -------------------------------------------------------------------------

_ROOT_SETS: dict[str, tuple[RootKey, ...]] = {
    "legacy": ("USERTrust RSA", "USERTrust ECC"),
    "modern": ("R46", "E46"),
    "both": ("USERTrust RSA", "USERTrust ECC", "R46", "E46"),
}


def builtin_profile(
    name: str, catalog: Catalog | None = None, *, include_aaa: bool = False
) -> Profile:
    """``legacy``, ``legacy+aaa``, ``modern`` or ``both`` with the self-signed roots of
    ``catalog`` (default: the real packaged ones; pass ``lab.catalog`` for lab chains)."""
    if (base := strip_builder(name)) != name:
        base_profile = builtin_profile(base, catalog, include_aaa=include_aaa)
        return base_profile.with_builder(name, BUILTIN_PROFILES.get(name))
    if name == "legacy+aaa":
        name, include_aaa = "legacy", True
    if name not in _ROOT_SETS:
        raise InputError(f"unknown built-in profile {name!r}; known: {', '.join(BUILTIN_PROFILES)}")
    cat = catalog or default_catalog()
    keys: list[RootKey] = list(_ROOT_SETS[name])
    if include_aaa and name != "modern":
        keys.append("AAA")
    try:
        anchors = tuple(cat.certificate(cat.self_signed(k).id) for k in keys)
    except KeyError as exc:
        raise CatalogError(f"the catalog lacks a root for profile {name!r}: {exc}") from None
    shown = f"{name}+aaa" if include_aaa and name == "legacy" else name
    description = BUILTIN_PROFILES.get(shown, BUILTIN_PROFILES[name])
    if include_aaa and name == "both":
        description += ", plus AAA Certificate Services"
    origin = "the packaged Sectigo catalog" if catalog is None else repr(cat)
    return Profile(
        name=shown,
        description=description,
        anchors=anchors,
        source=f"built in: self-signed {', '.join(keys)} from {origin}",
        catalog=catalog,
    )


@functools.cache
def _snapshot_profile(name: str) -> Profile:
    loaded = load_snapshot(name)
    info = loaded.info
    return Profile(
        name=name,
        description=info.description,
        anchors=loaded.certificates,
        source=(
            f"packaged snapshot {info.file} (file SHA-256 {info.sha256}, {info.certificates} "
            f"certificates) from trust_stores_observatory commit {info.source_commit[:12]}"
        ),
        skipped_certificates=loaded.skipped,
    )


def snapshot_profile(
    name: str,
    *,
    catalog: Catalog | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Profile:
    """A dated real-client profile (e.g. ``android-14``); the file is checked against its pin.

    ``data_dir`` reads a copy of the PEM file from elsewhere (still checked against the packaged
    pin; not cached). Unknown names raise :class:`InputError`.
    """
    if name not in snapshot_index():
        raise InputError(f"unknown trust-store snapshot {name!r}; known: {_known_names()}")
    if data_dir is None:
        return _snapshot_profile(name).with_catalog(catalog)
    loaded = load_snapshot(name, data_dir=data_dir)
    return Profile(
        name=name,
        description=loaded.info.description,
        anchors=loaded.certificates,
        source=f"snapshot {loaded.info.file} read from {os.fspath(data_dir)}",
        skipped_certificates=loaded.skipped,
        catalog=catalog,
    )


def user_profile(
    name: str, path: str | os.PathLike[str], *, catalog: Catalog | None = None
) -> Profile:
    """A profile from a user bundle (PEM, DER, P7B: every certificate becomes an anchor)."""
    try:
        loaded = load_file(path)
    except CertificateLoadError as exc:
        raise InputError(
            f"profile {name}={os.fspath(path)}: cannot load the bundle: {exc}"
        ) from None
    anchors: dict[str, x509.Certificate] = {}
    for cert in loaded.certificates:
        anchors.setdefault(sha256_hex(cert), cert)
    return Profile(
        name=name,
        description=f"user bundle {os.fspath(path)} ({len(anchors)} anchors)",
        anchors=tuple(anchors.values()),
        source=f"user bundle {os.fspath(path)}",
        catalog=catalog,
    )


def _known_names() -> str:
    plain = [n for n in BUILTIN_PROFILES if strip_builder(n) == n]
    builders = [n for n in BUILTIN_PROFILES if strip_builder(n) != n]
    return (
        ", ".join([*plain, *snapshot_index(), *builders])
        + ", any of them prefixed with openssl- or openssl-1.0-, or NAME=PEMFILE"
    )


def list_profiles() -> list[tuple[str, str]]:
    """Every named profile with a one-line description (parses no certificate)."""
    out = list(BUILTIN_PROFILES.items())
    out.extend((name, info.description) for name, info in snapshot_index().items())
    return out


def load_profiles(specs: Sequence[str], *, catalog: Catalog | None = None) -> list[Profile]:
    """Resolve profile specs: a built-in name, a snapshot name, or ``NAME=PEMFILE``.

    Only the snapshots asked for are parsed. Raises :class:`InputError` for unknown names,
    unreadable bundles, bad or duplicate names.
    """
    profiles: list[Profile] = []
    seen: set[str] = set()
    for raw in specs:
        spec = raw.strip()
        if "=" in spec:
            name, _, path = spec.partition("=")
            name, path = name.strip(), path.strip()
            if not _NAME_RE.fullmatch(name) or not path:
                raise InputError(
                    f"bad profile spec {raw!r}: expected NAME=PEMFILE with a NAME of letters, "
                    "digits, '.', '_', '+' or '-'"
                )
            if name in BUILTIN_PROFILES or name in _snapshot_names():
                raise InputError(
                    f"profile name {name!r} is already a built-in or snapshot profile; "
                    "pick another NAME for your bundle"
                )
            profile = user_profile(name, path, catalog=catalog)
        elif spec in BUILTIN_PROFILES:
            profile = builtin_profile(spec, catalog)
        elif spec in snapshot_index():
            profile = snapshot_profile(spec, catalog=catalog)
        elif (base := strip_builder(spec)) in BUILTIN_PROFILES or base in snapshot_index():
            profile = load_profiles([base], catalog=catalog)[0].with_builder(spec)
        else:
            raise InputError(f"unknown profile {raw!r}; known: {_known_names()}")
        if profile.name in seen:
            raise InputError(f"profile {profile.name!r} is given twice; give each profile once")
        seen.add(profile.name)
        profiles.append(profile)
    return profiles
