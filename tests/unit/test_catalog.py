"""catalog.py: roles, stores, pins and cross_sign_for on real and lab certificates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509

from sectigo_chain.errors import CatalogError
from sectigo_chain.testing.lab import LabHierarchy, make_certificate, new_key
from sectigo_chain.x509.catalog import Catalog, cross_sign_for, default_catalog, identify
from sectigo_chain.x509.certs import sha256_hex, ski_hex, thumbprint
from sectigo_chain.x509.load import load_file

# What each real file is, decided from the manifest's own description.
EXPECTED_ROLES = {
    "r46-root-selfsigned.pem": ("self_signed_root", "R46", "Root", True),
    "e46-root-selfsigned.pem": ("self_signed_root", "E46", "Root", True),
    "usertrust-rsa-root-selfsigned.pem": ("self_signed_root", "USERTrust RSA", "Root", False),
    "usertrust-ecc-root-selfsigned.pem": ("self_signed_root", "USERTrust ECC", "Root", False),
    "aaa-certificate-services-root.pem": ("self_signed_root", "AAA", "Root", False),
    "r46-cross-usertrust-rsa.pem": ("cross_signed_root", "R46", "CA", False),
    "e46-cross-usertrust-ecc.pem": ("cross_signed_root", "E46", "CA", False),
    "e46-cross-aaa.pem": ("cross_signed_root", "E46", "CA", False),
    "usertrust-rsa-cross-aaa.pem": ("cross_signed_root", "USERTrust RSA", "CA", False),
    "usertrust-ecc-cross-aaa.pem": ("cross_signed_root", "USERTrust ECC", "CA", False),
    "ca-dv-r36.pem": ("issuing_ca", "R46", "CA", False),
    "ca-ov-r36.pem": ("issuing_ca", "R46", "CA", False),
    "ca-ev-r36.pem": ("issuing_ca", "R46", "CA", False),
    "ca-dv-e36.pem": ("issuing_ca", "E46", "CA", False),
    "sectigo-rsa-dv-secure-server-ca.pem": ("issuing_ca", "USERTrust RSA", "CA", False),
}


def test_every_real_file_is_identified(sectigo_dir: Path, sectigo_manifest_path: Path) -> None:
    files = sorted(p.name for p in sectigo_dir.glob("*.pem"))
    assert files == sorted(EXPECTED_ROLES)
    manifest = {c["file"]: c for c in json.loads(sectigo_manifest_path.read_text())["certificates"]}
    for name, (role, root, store, remove) in EXPECTED_ROLES.items():
        cert = load_file(sectigo_dir / name).certificates[0]
        entry = identify(cert)
        assert entry is not None, name
        assert (entry.role, entry.root, entry.store_name, entry.remove_for_iis_fix) == (
            role,
            root,
            store,
            remove,
        ), name
        assert entry.store == f"LocalMachine\\{store}"
        assert entry.shipped
        assert entry.thumbprint == manifest[name]["sha1_fingerprint"]
        # The role agrees with the certificate's own structure.
        self_signed = manifest[name]["self_signed"]
        assert (role == "self_signed_root") == self_signed, name


def test_pinned_only_entries_are_known_by_fingerprint(sectigo_manifest_path: Path) -> None:
    manifest = json.loads(sectigo_manifest_path.read_text())
    cat = default_catalog()
    missing = {m["official_sha256"] for m in manifest["missing"]}
    known = {e.sha256 for e in cat.entries if not e.shipped}
    assert missing <= known
    for e in cat.entries:
        if not e.shipped:
            assert e.thumbprint is None


def test_pins_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sectigo_chain.x509.catalog as catalog_mod

    pkg = tmp_path / "sectigo_chain"
    data = pkg / "data" / "sectigo"
    data.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    src = Path(catalog_mod.__file__).parents[1] / "data" / "sectigo"
    for f in src.glob("*.pem"):
        shutil.copy(f, data / f.name)
    # Swap one certificate for another: the pin must catch it.
    shutil.copy(data / "ca-ov-r36.pem", data / "ca-dv-r36.pem")

    monkeypatch.setattr(catalog_mod, "package_data", lambda folder: pkg / "data" / folder)
    catalog_mod.default_catalog.cache_clear()
    try:
        # The catalog loads lazily: each file is checked against its pin when first used.
        cat = catalog_mod.default_catalog()
        assert cat.certificate("ca-ov-r36").subject.rfc4514_string().startswith("CN=Sectigo")
        pin = r"ca-dv-r36\.pem does not match its SHA-256 pin"
        with pytest.raises(CatalogError, match=pin):
            cat.certificate("ca-dv-r36")
        with pytest.raises(CatalogError, match=pin):
            cat.certificates()
        (data / "ca-ev-r36.pem").unlink()
        with pytest.raises(CatalogError) as info:
            cat.certificate("ca-ev-r36")
        # what is wrong, and what to do about it
        assert str(info.value).startswith(
            "packaged certificate ca-ev-r36.pem is missing or damaged ("
        )
        assert str(info.value).endswith("); reinstall sectigo-chain")
    finally:
        monkeypatch.undo()
        catalog_mod.default_catalog.cache_clear()
    assert len(catalog_mod.default_catalog().entries) > 15


def test_packaged_catalog_reads_no_file_until_a_certificate_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries, identify() and the precomputed thumbprints and SKIs need no file: an empty
    data folder only fails when a certificate itself is asked for."""
    import sectigo_chain.x509.catalog as catalog_mod

    real = catalog_mod.default_catalog()
    r36 = real.certificate("ca-dv-r36")
    pkg = tmp_path / "sectigo_chain"
    (pkg / "data" / "sectigo").mkdir(parents=True)

    monkeypatch.setattr(catalog_mod, "package_data", lambda folder: pkg / "data" / folder)
    catalog_mod.default_catalog.cache_clear()
    try:
        cat = catalog_mod.default_catalog()
        assert cat.entries == real.entries
        entry = cat.identify(r36)
        assert entry is not None
        assert entry.id == "ca-dv-r36"
        assert entry.thumbprint == thumbprint(r36)
        with pytest.raises(CatalogError, match=r"ca-dv-r36\.pem is missing or damaged"):
            cat.certificate("ca-dv-r36")
    finally:
        monkeypatch.undo()
        catalog_mod.default_catalog.cache_clear()


def test_precomputed_facts_match_the_packaged_files() -> None:
    """``_SHIPPED_FACTS`` (thumbprint, SKI) agree with the certificates themselves."""
    import sectigo_chain.x509.catalog as catalog_mod

    folder = Path(catalog_mod.__file__).parents[1] / "data" / "sectigo"
    assert set(catalog_mod._SHIPPED_FACTS) == {m.id for m in catalog_mod._SHIPPED}
    for meta in catalog_mod._SHIPPED:
        cert = x509.load_pem_x509_certificate((folder / f"{meta.id}.pem").read_bytes())
        assert sha256_hex(cert) == meta.sha256
        assert catalog_mod._SHIPPED_FACTS[meta.id] == (thumbprint(cert), ski_hex(cert))


def test_cross_sign_named_with_real_thumbprint_for_lab_leaves(lab: LabHierarchy) -> None:
    rsa_leaf = lab.issue_leaf(["rsa.example.test"], family="RSA")
    ecc_leaf = lab.issue_leaf(["ecc.example.test"], family="ECC")
    rsa = cross_sign_for(rsa_leaf.cert)
    ecc = cross_sign_for(ecc_leaf.cert)
    assert rsa.status == ecc.status == "needs_cross_sign"
    assert rsa.cross_sign is not None
    assert ecc.cross_sign is not None
    assert rsa.cross_sign.thumbprint == "2B18947A6A9FC7764FD8B5FB18A863B0C6DAC24F"
    assert ecc.cross_sign.thumbprint == "3F969989F5310E9C050DFFD7ABC15530E3C13AA0"
    assert rsa.root == "R46"
    assert ecc.root == "E46"
    assert not rsa.guessed
    assert rsa.method == "issuer_name"


def test_cross_sign_follows_signatures_not_key_type(lab: LabHierarchy) -> None:
    # An ECC leaf issued by an RSA CA under R46: the signature path says R46, not E46.
    ca_key = new_key("RSA")
    ca = make_certificate(
        subject=x509.Name.from_rfc4514_string("CN=Unshipped Issuing CA X1,O=Somebody"),
        public_key=ca_key.public_key(),
        issuer=lab.r46_root.cert.subject,
        issuer_key=lab.r46_root.key,
        not_before=lab.r36.cert.not_valid_before_utc,
        not_after=lab.r36.cert.not_valid_after_utc,
        ca=True,
    )
    leaf_key = new_key("ECC")
    leaf = make_certificate(
        subject=x509.Name.from_rfc4514_string("CN=odd.example.test"),
        public_key=leaf_key.public_key(),
        issuer=ca.subject,
        issuer_key=ca_key,
        not_before=lab.r36.cert.not_valid_before_utc,
        not_after=lab.r36.cert.not_valid_after_utc,
        ca=False,
        dns_names=["odd.example.test"],
    )
    answer = cross_sign_for([leaf, ca], lab.catalog)
    assert answer.root == "R46"
    assert answer.method == "signature"
    assert answer.cross_sign is not None
    assert answer.cross_sign.sha256 == sha256_hex(lab.r46_cross)


def test_cross_sign_guess_and_foreign_ca(lab: LabHierarchy) -> None:
    key = new_key("ECC")
    unknown_sectigo = make_certificate(
        subject=x509.Name.from_rfc4514_string("CN=guess.example.test"),
        public_key=key.public_key(),
        issuer=x509.Name.from_rfc4514_string("CN=Sectigo Future CA Z99,O=Sectigo Limited,C=GB"),
        issuer_key=key,
        not_before=lab.r36.cert.not_valid_before_utc,
        not_after=lab.r36.cert.not_valid_after_utc,
        ca=False,
    )
    guess = cross_sign_for(unknown_sectigo)
    assert guess.guessed
    assert guess.root == "E46"
    assert "GUESSED" in guess.explanation
    foreign = make_certificate(
        subject=x509.Name.from_rfc4514_string("CN=le.example.test"),
        public_key=key.public_key(),
        issuer=x509.Name.from_rfc4514_string("CN=R11,O=Let's Encrypt,C=US"),
        issuer_key=key,
        not_before=lab.r36.cert.not_valid_before_utc,
        not_after=lab.r36.cert.not_valid_after_utc,
        ca=False,
    )
    answer = cross_sign_for(foreign)
    assert answer.status == "not_r46_e46"
    assert answer.cross_sign is None
    assert "not a Sectigo R46/E46 certificate" in answer.explanation


def test_old_hierarchy_needs_no_cross(sectigo_dir: Path) -> None:
    ca = load_file(sectigo_dir / "sectigo-rsa-dv-secure-server-ca.pem").certificates[0]
    answer = cross_sign_for(ca)
    assert answer.status == "not_r46_e46"
    assert "USERTrust RSA" in answer.explanation


def test_lab_catalog_mirrors_roles(lab: LabHierarchy) -> None:
    cat: Catalog = lab.catalog
    assert cat.identify(lab.r46_root.cert) is not None
    assert cat.identify(lab.r46_root.cert).remove_for_iis_fix  # type: ignore[union-attr]
    assert cat.cross_sign("R46").sha256 == sha256_hex(lab.r46_cross)
    assert cat.cross_sign("E46").sha256 == sha256_hex(lab.e46_cross)
    assert cat.root_key_of(lab.r46_cross) == "R46"
    assert default_catalog().identify(lab.r46_root.cert) is None


def test_newer_issuing_cas_known_by_name(lab: LabHierarchy) -> None:
    # R35/R40/E40 are named in Sectigo's list but neither copy nor fingerprint is shipped:
    # recognised by name (and said so), not guessed.
    key = new_key("ECC")
    for cn, root in (
        ("Sectigo Public Server Authentication CA DV R35", "R46"),
        ("Sectigo Public Server Authentication CA OV R40", "R46"),
        ("Sectigo Public Server Authentication CA EV E40", "E46"),
    ):
        leaf = make_certificate(
            subject=x509.Name.from_rfc4514_string("CN=new.example.test"),
            public_key=key.public_key(),
            issuer=x509.Name.from_rfc4514_string(f"CN={cn},O=Sectigo Limited,C=GB"),
            issuer_key=key,
            not_before=lab.r36.cert.not_valid_before_utc,
            not_after=lab.r36.cert.not_valid_after_utc,
            ca=False,
        )
        answer = cross_sign_for(leaf)
        assert answer.root == root, cn
        assert answer.method == "issuer_name", cn
        assert not answer.guessed


def test_package_data_is_the_packages_own_data_folder() -> None:
    """On disk it is a plain path; a folder that is not there (as in a zipped install, where
    nothing is a folder) comes from importlib.resources, for this package, not another."""
    import sectigo_chain
    from sectigo_chain.x509.catalog import package_data

    data = Path(sectigo_chain.__file__).parent / "data"
    assert package_data("sectigo") == data / "sectigo"
    assert isinstance(package_data("sectigo"), Path)
    missing = package_data("no-such-folder")
    assert str(missing) == str(data / "no-such-folder")
    assert not missing.is_dir()
