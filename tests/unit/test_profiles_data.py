"""profiles_data.py: the packaged dated trust stores (pins, lazy loading) and real structure."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, VerificationError

import sectigo_chain
from sectigo_chain.errors import CatalogError, InputError
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.trust import snapshots as profiles_data
from sectigo_chain.trust.profiles import anchor_path, load_profiles, snapshot_profile, validate
from sectigo_chain.trust.snapshots import load_snapshot, snapshot_index
from sectigo_chain.x509.catalog import default_catalog
from sectigo_chain.x509.certs import sha256_hex

LEGACY = ["android-14", "mozilla-2023-05", "ios-17", "jdk-17", "windows-2023-02"]
MODERN = ["android-15", "mozilla-current"]
AT = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def shared_manifest(trust_store_manifest_path: Path) -> dict[str, dict[str, object]]:
    """The manifest the snapshots were built from (a pinned copy in tests/data)."""
    manifest = json.loads(trust_store_manifest_path.read_text())
    return {s["name"]: s for s in manifest["stores"]}


def _real(cid: str) -> x509.Certificate:
    return default_catalog().certificate(cid)


def test_index_is_derived_from_the_shared_manifest(
    shared_manifest: dict[str, dict[str, object]],
) -> None:
    index = snapshot_index()
    assert sorted(index) == sorted(shared_manifest) == sorted(LEGACY + MODERN)
    for name, info in index.items():
        src = shared_manifest[name]
        assert (info.file, info.platform, info.version, info.date) == (
            src["file"], src["platform"], src["version"], src["date_fetched"],
        )  # fmt: skip
        assert info.sectigo_class == src["sectigo_class"]
        assert info.certificates == src["reconstructed_count"]
        assert info.source_commit == src["source_commit"]
        packaged = (profiles_data._package_dir() / info.file).read_bytes()
        assert info.sha256 == hashlib.sha256(packaged).hexdigest().upper()


def test_package_data_lives_inside_the_package() -> None:
    folder = profiles_data._package_dir().resolve()
    assert folder.is_relative_to(Path(sectigo_chain.__file__).resolve().parent)
    assert (folder / "index.json").is_file()
    assert (folder / "NOTICE.md").is_file()


@pytest.mark.parametrize("name", LEGACY + MODERN)
def test_each_snapshot_loads_quietly_and_completely(
    name: str, shared_manifest: dict[str, dict[str, object]]
) -> None:
    info = snapshot_index()[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a fresh parse (data_dir bypasses the cache), touching what validation reads
        loaded = load_snapshot(name, data_dir=profiles_data._package_dir())
        for cert in loaded.certificates:
            _ = cert.subject, cert.issuer
    assert [str(w.message) for w in caught] == []
    assert loaded.skipped == 0
    assert len(loaded.certificates) == info.certificates
    warned = shared_manifest[name]["parsed_with_cryptography_warnings"]
    assert isinstance(warned, list)
    shas = {sha256_hex(c) for c in loaded.certificates}
    assert {w["fingerprint"].upper() for w in warned} <= shas  # kept, not skipped
    profile = snapshot_profile(name)
    assert profile.skipped_certificates == 0
    assert set(profile.anchor_sha256s) == shas
    assert profile is snapshot_profile(name)  # cached, so its Store is built once


def test_snapshot_classes_checked_with_the_real_sectigo_roots() -> None:
    cat = default_catalog()
    pins = {k: cat.entry(f"{k}-root-selfsigned").sha256 for k in ("r46", "e46")}
    pins["usertrust-rsa"] = cat.entry("usertrust-rsa-root-selfsigned").sha256
    pins["usertrust-ecc"] = cat.entry("usertrust-ecc-root-selfsigned").sha256
    pins["aaa"] = cat.entry("aaa-certificate-services-root").sha256
    for name in LEGACY + MODERN:
        anchors = set(snapshot_profile(name).anchor_sha256s)
        assert pins["usertrust-rsa"] in anchors, name
        assert pins["usertrust-ecc"] in anchors, name
        has_new = pins["r46"] in anchors
        assert has_new == (name in MODERN), name
        assert (pins["e46"] in anchors) == has_new, name
        assert snapshot_index()[name].sectigo_class == ("modern" if has_new else "legacy")
        assert (pins["aaa"] in anchors) == (name != "mozilla-current"), name


def test_tampered_copy_is_refused(tmp_path: Path) -> None:
    package = profiles_data._package_dir()
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(package / "android-14.pem", good / "android-14.pem")
    copy = load_snapshot("android-14", data_dir=good)
    assert [sha256_hex(c) for c in copy.certificates] == list(
        snapshot_profile("android-14").anchor_sha256s
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    data = bytearray((package / "android-14.pem").read_bytes())
    data[2] ^= 0x20  # one letter of the first comment line changes case
    (bad / "android-14.pem").write_bytes(bytes(data))
    with pytest.raises(CatalogError, match=r"does not match its SHA-256 pin.*reinstall"):
        load_snapshot("android-14", data_dir=bad)
    with pytest.raises(CatalogError, match="reinstall"):
        snapshot_profile("android-14", data_dir=bad)
    with pytest.raises(CatalogError, match="cannot be read"):
        load_snapshot("jdk-17", data_dir=bad)


def test_unknown_snapshot_names() -> None:
    with pytest.raises(InputError, match=r"known: legacy.*android-14"):
        snapshot_profile("android-99")
    with pytest.raises(KeyError):
        load_snapshot("android-99")


def test_snapshots_load_lazily() -> None:
    profiles_data._load_packaged.cache_clear()
    profiles_data._snapshot_profile.cache_clear()
    load_profiles(["legacy", "modern", "both"])
    assert profiles_data._load_packaged.cache_info().currsize == 0
    listed = [name for name, _ in profiles_data.list_profiles()]
    assert len(listed) == 6 + len(snapshot_index())  # 4 backtracking built-ins, 2 OpenSSL ones
    assert {"openssl-legacy", "openssl-1.0-legacy"} <= set(listed)
    assert profiles_data._load_packaged.cache_info().currsize == 0
    (p,) = load_profiles(["jdk-17"])
    assert p.name == "jdk-17"
    assert len(p.anchors) == snapshot_index()["jdk-17"].certificates
    assert profiles_data._load_packaged.cache_info().currsize == 1


@pytest.mark.parametrize("name", LEGACY)
@pytest.mark.parametrize(
    ("issuing", "cross", "root"),
    [
        ("ca-dv-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-root-selfsigned"),
        ("ca-dv-e36", "e46-cross-usertrust-ecc", "usertrust-ecc-root-selfsigned"),
    ],
)
def test_real_issuing_ca_reaches_usertrust_only_through_the_cross(
    name: str, issuing: str, cross: str, root: str
) -> None:
    profile = snapshot_profile(name)
    ca, xs = _real(issuing), _real(cross)
    path = anchor_path([ca, xs], profile)
    assert path is not None
    assert [sha256_hex(c) for c in path] == [
        sha256_hex(ca),
        sha256_hex(xs),
        sha256_hex(_real(root)),
    ]
    assert anchor_path([ca], profile) is None  # the short chain: no path in a legacy store
    # the catalog's known intermediates supply the cross: what "incomplete_fixable" relies on
    known = default_catalog().certificates()
    fixed = anchor_path([ca], profile, extra=known)
    assert fixed is not None
    assert sha256_hex(fixed[1]) == sha256_hex(xs)


@pytest.mark.parametrize("name", MODERN)
def test_real_issuing_ca_reaches_r46_directly_in_modern_stores(name: str) -> None:
    profile = snapshot_profile(name)
    for issuing, root in (
        ("ca-dv-r36", "r46-root-selfsigned"),
        ("ca-dv-e36", "e46-root-selfsigned"),
    ):
        path = anchor_path([_real(issuing)], profile)
        assert path is not None
        assert sha256_hex(path[-1]) == sha256_hex(_real(root))


def test_real_paths_confirmed_by_cryptography_verifier() -> None:
    # cryptography's verifier needs a leaf; with a permissive end-entity policy the real
    # issuing CA can stand in for it, so real signatures and webpki CA rules are checked.
    def verify(name: str, chain: list[x509.Certificate]) -> list[x509.Certificate]:
        builder = (
            PolicyBuilder()
            .store(snapshot_profile(name).store)
            .time(AT)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
        )
        return builder.build_client_verifier().verify(chain[0], chain[1:]).chain

    r36, cross = _real("ca-dv-r36"), _real("r46-cross-usertrust-rsa")
    built = verify("android-14", [r36, cross])
    assert sha256_hex(built[-1]) == sha256_hex(_real("usertrust-rsa-root-selfsigned"))
    with pytest.raises(VerificationError):
        verify("android-14", [r36])
    assert sha256_hex(verify("android-15", [r36])[-1]) == sha256_hex(_real("r46-root-selfsigned"))


def test_older_sectigo_hierarchy_is_anchored_everywhere() -> None:
    old = _real("sectigo-rsa-dv-secure-server-ca")
    for name in LEGACY + MODERN:
        path = anchor_path([old], snapshot_profile(name))
        assert path is not None, name
        assert sha256_hex(path[-1]) == sha256_hex(_real("usertrust-rsa-root-selfsigned"))


def test_lab_chain_is_not_trusted_by_a_real_store(lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(
        ["www.example.test"],
        not_before=dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc),
        not_after=dt.datetime(2025, 8, 1, tzinfo=dt.timezone.utc),
    )
    (android,) = load_profiles(["android-15"], catalog=lab.catalog)
    result = validate(lab.served_chain(leaf, "selfsigned"), android, at=AT)
    assert not result.valid
    assert result.classification == "untrusted_root"


@pytest.mark.parametrize(
    "content",
    [b"not json", b'{"no_stores": []}', b'{"stores": {"a": 1}}', b'{"stores": [{"file": "x"}]}'],
)
def test_a_damaged_index_is_a_catalog_error_for_every_reader(
    content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lab: LabHierarchy
) -> None:
    """The snapshot index read whole (``snapshot_index``) and for its names alone (a user
    bundle's name is checked against them) fails the same way on a damaged ``index.json``."""
    (tmp_path / "index.json").write_bytes(content)
    bundle = tmp_path / "mine.pem"
    bundle.write_bytes(lab.usertrust_rsa.cert.public_bytes(Encoding.PEM))
    monkeypatch.setattr(profiles_data, "_package_dir", lambda: tmp_path)
    for cached in (profiles_data._index_stores, profiles_data.snapshot_index,
                   profiles_data._snapshot_names):  # fmt: skip
        cached.cache_clear()
    try:
        with pytest.raises(CatalogError, match=r"trust-store index .* is missing or damaged"):
            snapshot_index()
        with pytest.raises(CatalogError, match=r"trust-store index .* is missing or damaged"):
            load_profiles([f"mine={bundle}"])
    finally:
        for cached in (profiles_data._index_stores, profiles_data.snapshot_index,
                       profiles_data._snapshot_names):  # fmt: skip
            cached.cache_clear()
