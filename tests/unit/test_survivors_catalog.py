"""x509/catalog.py: the decisions and texts that the full mutation run of the module showed
unpinned (issue 20; each test names the decision it pins)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

import sectigo_chain.x509.catalog as catalog_mod
from sectigo_chain.testing.lab import LabHierarchy, make_certificate
from sectigo_chain.x509.catalog import Catalog, catalog_from_pem, cross_sign_for, default_catalog
from sectigo_chain.x509.certs import PrivateKey, sha256_hex

UTC = dt.timezone.utc
NB = dt.datetime(2024, 1, 1, tzinfo=UTC)
NA = dt.datetime(2034, 1, 1, tzinfo=UTC)


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name.from_rfc4514_string(f"CN={cn},O=Somebody")


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    *,
    ski: bytes,
    aki: bytes | None = None,
    ca: bool = True,
) -> x509.Certificate:
    """A certificate whose SKI (and AKI) are given, not computed from the key: a CA may name
    one key by two identifiers in two certificates (RFC 5280 leaves the method open)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NB)
        .not_valid_after(NA)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    )
    if aki is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(aki, None, None), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def test_of_two_certificates_of_the_issuers_key_the_one_the_aki_names_is_followed(
    lab: LabHierarchy,
) -> None:
    """One issuing key in two certificates with one subject, one under R46 (SKI 01...) and one
    under a foreign root (SKI 02...); the leaf's AKI names the first. Both verify the leaf's
    signature, so only the AKI tells which one the leaf's issuer is: the walk follows it to
    R46, whatever order the chain lists them in."""
    ica_key = _ec()
    foreign_key = _ec()
    foreign = make_certificate(
        subject=_name("Foreign Root"),
        public_key=foreign_key.public_key(),
        issuer=_name("Foreign Root"),
        issuer_key=foreign_key,
        not_before=NB,
        not_after=NA,
        ca=True,
    )
    twin = _name("Twin Issuing CA")
    under_r46 = _cert(twin, ica_key, lab.r46_root.cert.subject, lab.r46_root.key, ski=b"\1" * 20)
    under_foreign = _cert(twin, ica_key, foreign.subject, foreign_key, ski=b"\2" * 20)
    leaf = _cert(
        _name("twin.example.test"),
        _ec(),
        twin,
        ica_key,
        ski=b"\3" * 20,
        aki=b"\1" * 20,
        ca=False,
    )
    for chain in ([leaf, under_foreign, under_r46, foreign], [leaf, under_r46, under_foreign]):
        answer = cross_sign_for(chain, lab.catalog)
        assert answer.status == "needs_cross_sign"
        assert answer.root == "R46"
        assert answer.method == "signature"


def _ladder(lab: LabHierarchy, cas: int) -> list[x509.Certificate]:
    """A leaf under ``cas`` unshipped CAs in a row, the top one issued by the lab's R46."""
    issuer, issuer_key = lab.r46_root.cert, lab.r46_root.key
    chain: list[x509.Certificate] = []
    for i in range(cas + 1):
        key = _ec()
        cert = make_certificate(
            subject=_name(f"Step {i}" if i < cas else "deep.example.test"),
            public_key=key.public_key(),
            issuer=issuer.subject,
            issuer_key=issuer_key,
            not_before=NB,
            not_after=NA,
            ca=i < cas,
            issuer_ski=x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest,
        )
        chain.insert(0, cert)
        issuer, issuer_key = cert, key
    return chain


def test_the_signature_walk_follows_at_most_eight_issuers(lab: LabHierarchy) -> None:
    """Seven CAs between the leaf and R46: eight signatures verified up to R46. Eight CAs: the
    walk stops at the eighth issuer (a bound that ends cross-signing loops) and recognises its
    issuer by key identifier, with the signature not checked."""
    seven = cross_sign_for(_ladder(lab, 7), lab.catalog)
    assert (seven.root, seven.method) == ("R46", "signature")
    eight = cross_sign_for(_ladder(lab, 8), lab.catalog)
    assert (eight.root, eight.method) == ("R46", "issuer_key_id")
    assert "signature not checked" in eight.explanation


def test_an_empty_chain_is_refused_with_what_is_needed() -> None:
    with pytest.raises(
        ValueError, match=r"^cross_sign_for needs a certificate or a non-empty chain$"
    ):
        cross_sign_for([])


def test_each_answer_says_which_issuer_it_went_through_and_how(lab: LabHierarchy) -> None:
    r36 = lab.r36.cert
    leaf = lab.issue_leaf(["how.example.test"], family="RSA").cert
    # the issuing CA in the chain: signatures checked up to R46 (via: the last issuer's name)
    verified = cross_sign_for([leaf, r36], lab.catalog)
    assert verified.explanation.startswith(
        "chains to R46 via Sectigo Public Server Authentication Root R46 "
        "(issuer signature verified): needs "
    )
    # the issuing CA's copy missing: recognised by the leaf's AKI among the entries
    copies = {e.id: lab.catalog.certificate(e.id) for e in lab.catalog.entries}
    del copies["ca-dv-r36"]
    by_key = cross_sign_for(leaf, Catalog(lab.catalog.entries, copies))
    assert by_key.method == "issuer_key_id"
    assert by_key.explanation.startswith(
        "chains to R46 via Sectigo Public Server Authentication CA DV R36 "
        "(issuer recognised by key identifier, signature not checked): needs "
    )
    # the real catalog does not know the lab's keys: recognised by the issuer's name
    by_name = cross_sign_for(leaf)
    assert by_name.method == "issuer_name"
    assert by_name.explanation.startswith(
        "chains to R46 via Sectigo Public Server Authentication CA DV R36 "
        "(issuer recognised by name, signature not checked): needs "
    )


def test_a_guess_says_it_is_one_and_names_the_unknown_issuer() -> None:
    key = _ec()
    leaf = make_certificate(
        subject=_name("guess.example.test"),
        public_key=key.public_key(),
        issuer=x509.Name.from_rfc4514_string("CN=Sectigo Future CA Z99,O=Sectigo Limited"),
        issuer_key=key,
        not_before=NB,
        not_after=NA,
        ca=False,
    )
    answer = cross_sign_for(leaf)
    assert answer.explanation.startswith(
        "chains to E46 via Sectigo Future CA Z99 (GUESSED from the leaf's key type: the "
        "issuer is unknown): needs "
    )


def test_a_foreign_certificate_is_told_the_fix_does_not_apply() -> None:
    key = _ec()
    leaf = make_certificate(
        subject=_name("le.example.test"),
        public_key=key.public_key(),
        issuer=x509.Name.from_rfc4514_string("CN=R11,O=Let's Encrypt,C=US"),
        issuer_key=key,
        not_before=NB,
        not_after=NA,
        ca=False,
    )
    assert cross_sign_for(leaf).explanation == (
        "not a Sectigo R46/E46 certificate (issuer: CN=R11,O=Let's Encrypt,C=US); "
        "the R46/E46 IIS fix does not apply"
    )


def test_a_certificate_under_another_root_says_how_its_root_was_found() -> None:
    cat = default_catalog()
    answer = cross_sign_for(cat.certificate("sectigo-rsa-dv-secure-server-ca"))
    assert answer.status == "not_r46_e46"
    assert answer.method == "signature"
    assert answer.explanation == (
        "chains to USERTrust RSA directly (USERTrust RSA Certification Authority); "
        "no R46/E46 cross-sign is needed"
    )


def test_a_catalog_without_a_cross_or_root_says_which_is_missing(lab: LabHierarchy) -> None:
    only_r36 = Catalog.from_certificates({"ca-dv-r36": lab.r36.cert})
    with pytest.raises(KeyError, match="no R46 cross-sign in this catalog"):
        only_r36.cross_sign("R46")
    with pytest.raises(KeyError, match="no self-signed E46 in this catalog"):
        only_r36.self_signed("E46")


def test_a_fresh_catalog_finds_entries_by_id_and_keeps_its_own_copy(lab: LabHierarchy) -> None:
    certs = {"ca-dv-r36": lab.r36.cert, "r46-root-selfsigned": lab.r46_root.cert}
    cat = Catalog.from_certificates(certs)
    assert cat.entry("ca-dv-r36").sha256 == sha256_hex(lab.r36.cert)
    del certs["ca-dv-r36"]  # the caller's mapping changes afterwards: the catalog does not
    assert cat.certificate("ca-dv-r36") is lab.r36.cert
    assert len(cat.certificates()) == 2


def test_an_entry_without_a_copy_shows_a_dash_for_its_thumbprint(lab: LabHierarchy) -> None:
    cat = Catalog.from_certificates({"ca-dv-r36": lab.r36.cert}, pinned_only=True)
    pinned = cat.entry("ca-ov-e36")
    assert pinned.thumbprint is None
    assert str(pinned).endswith("belongs in LocalMachine\\CA; SHA-1 -)")


def test_a_packaged_certificate_is_read_once_then_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first use reads and checks the file; later uses need it no more."""
    src = catalog_mod.package_data("sectigo") / "ca-dv-r36.pem"
    copy = tmp_path / "ca-dv-r36.pem"
    copy.write_bytes(src.read_bytes())
    monkeypatch.setattr(catalog_mod, "package_data", lambda folder: tmp_path)
    files = catalog_mod._PackagedFiles(catalog_mod._SHIPPED)
    first = files["ca-dv-r36"]
    copy.unlink()
    assert files["ca-dv-r36"] is first


def _pem(lab: LabHierarchy) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in lab.catalog.certificates())


def test_each_pem_file_gets_its_own_catalog(tmp_path: Path) -> None:
    one, two = LabHierarchy.create(), LabHierarchy.create()
    (tmp_path / "one.pem").write_bytes(_pem(one))
    (tmp_path / "two.pem").write_bytes(_pem(two))
    first = catalog_from_pem(tmp_path / "one.pem")
    second = catalog_from_pem(tmp_path / "two.pem")
    assert first.identify(one.r36.cert) is not None
    assert second.identify(two.r36.cert) is not None
    assert second.identify(one.r36.cert) is None


def test_an_unchanged_pem_file_is_not_read_again(tmp_path: Path) -> None:
    """Loaded once per file version (path, size, modification time): the same version is not
    read again, so every host of a run shares one catalog without re-parsing the file."""
    lab = LabHierarchy.create()
    path = tmp_path / "lab.pem"
    path.write_bytes(_pem(lab))
    catalog = catalog_from_pem(path)
    facts = os.stat(path)
    # the same size and modification time: the same version, as far as the cache can tell
    path.write_bytes(b"x" * facts.st_size)
    os.utime(path, ns=(facts.st_atime_ns, facts.st_mtime_ns))
    assert catalog_from_pem(path) is catalog
