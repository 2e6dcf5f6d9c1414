"""profiles.py on lab chains (real keys) at fixed times: verdicts, paths and classifications."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sectigo_chain.errors import CatalogError, InputError
from sectigo_chain.testing.lab import LabHierarchy, LabLeaf, make_certificate, new_key
from sectigo_chain.trust.profiles import (
    Profile,
    ProfileResult,
    builtin_profile,
    list_profiles,
    load_profiles,
    validate,
    validate_many,
)
from sectigo_chain.x509.catalog import default_catalog
from sectigo_chain.x509.certs import sha256_hex, thumbprint

UTC = dt.timezone.utc
NB = dt.datetime(2025, 1, 1, tzinfo=UTC)
NA = dt.datetime(2025, 4, 1, tzinfo=UTC)
AT = dt.datetime(2025, 2, 1, tzinfo=UTC)
HOST = "www.example.test"
Family = Literal["RSA", "ECC"]


@pytest.fixture(scope="module")
def leaves(lab: LabHierarchy) -> dict[str, LabLeaf]:
    return {
        f: lab.issue_leaf([HOST], family=f, not_before=NB, not_after=NA) for f in ("RSA", "ECC")
    }


@pytest.fixture(scope="module")
def profiles(lab: LabHierarchy) -> dict[str, Profile]:
    return {p.name: p for p in load_profiles(["legacy", "modern", "both"], catalog=lab.catalog)}


def _shas(certs: list[x509.Certificate]) -> list[str]:
    return [sha256_hex(c) for c in certs]


@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_cross_chain_valid_for_legacy_modern_both(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile], family: Family
) -> None:
    leaf = leaves[family]
    chain = lab.served_chain(leaf, "cross")
    results = validate_many(chain, profiles.values(), at=AT, hostname=HOST)
    assert list(results) == ["legacy", "modern", "both"]
    assert all(r.valid and r.classification == "ok" and r.reason is None for r in results.values())
    usertrust = lab.usertrust(family).cert
    assert results["legacy"].path == _shas([*chain, usertrust])
    assert results["legacy"].anchor == usertrust.subject.rfc4514_string()
    assert results["legacy"].anchor_sha256 == sha256_hex(usertrust)
    r46 = lab.self_signed_root(family).cert
    assert results["modern"].path == _shas([leaf.cert, leaf.issuer.cert, r46])
    assert results["both"].valid


@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_short_chain_fails_legacy_fixable_with_cross_and_passes_modern(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile], family: Family
) -> None:
    chain = lab.served_chain(leaves[family], "short")
    cross = lab.cross(family)
    legacy = validate(chain, profiles["legacy"], at=AT, hostname=HOST)
    assert not legacy.valid
    assert legacy.classification == "incomplete_fixable"
    assert legacy.missing_intermediates == [thumbprint(cross)]
    assert legacy.path == []
    assert legacy.anchor is None
    assert legacy.reason is not None
    assert "legacy clients fail" in legacy.reason
    assert thumbprint(cross) in legacy.reason
    assert "cross-signed by USERTrust" in legacy.reason
    assert validate(chain, profiles["modern"], at=AT, hostname=HOST).valid
    assert validate(chain, profiles["both"], at=AT, hostname=HOST).valid


def test_self_signed_r46_sent_fails_legacy_and_names_it(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    chain = lab.served_chain(leaves["RSA"], "selfsigned")
    legacy = validate(chain, profiles["legacy"], at=AT, hostname=HOST)
    assert not legacy.valid
    assert legacy.classification == "incomplete_fixable"
    assert legacy.missing_intermediates == [thumbprint(lab.r46_cross)]
    assert legacy.reason is not None
    assert "self-signed" in legacy.reason
    modern = validate(chain, profiles["modern"], at=AT, hostname=HOST)
    assert modern.valid
    assert modern.anchor_sha256 == sha256_hex(lab.r46_root.cert)


@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_self_signed_r46_sent_before_the_cross_is_left_out_of_the_path(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile], family: Family
) -> None:
    """cryptography's verifier takes a served self-signed R46 as its own issuer again and
    again: with it before the cross-signed R46 it built the legacy path leaf, R36, R46 six
    times, cross, USERTrust. A self-signed certificate that is not an anchor is not offered
    to it, so the path is the one a client builds."""
    leaf = leaves[family]
    r46, cross = lab.self_signed_root(family).cert, lab.cross(family)
    served = [leaf.cert, leaf.issuer.cert, r46, cross]
    legacy = validate(served, profiles["legacy"], at=AT, hostname=HOST)
    assert legacy.valid
    assert legacy.path == _shas([leaf.cert, leaf.issuer.cert, cross, lab.usertrust(family).cert])
    modern = validate(served, profiles["modern"], at=AT, hostname=HOST)
    assert modern.path == _shas([leaf.cert, leaf.issuer.cert, r46])  # an anchor stays one


def test_chain_with_usertrust_root_is_valid_for_legacy(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    chain = lab.served_chain(leaves["RSA"], "with_root")
    assert validate(chain, profiles["legacy"], at=AT, hostname=HOST).valid


def test_leaf_only_is_fixable_by_the_issuing_ca(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    result = validate([leaves["ECC"].cert], profiles["modern"], at=AT, hostname=HOST)
    assert result.classification == "incomplete_fixable"
    assert result.missing_intermediates == [thumbprint(lab.e36.cert)]


def test_preloaded_intermediate_completes_the_short_chain(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    legacy = profiles["legacy"]
    cached = Profile(
        name="legacy-cached",
        description="legacy client that already holds the cross-sign",
        anchors=legacy.anchors,
        intermediates=(lab.r46_cross,),
        source="test",
    )
    result = validate(lab.served_chain(leaves["RSA"], "short"), cached, at=AT, hostname=HOST)
    assert result.valid
    assert result.path[2] == sha256_hex(lab.r46_cross)


@pytest.mark.parametrize(
    ("at", "classification", "word"),
    [
        (dt.datetime(2026, 1, 1, tzinfo=UTC), "expired", "expired 2025-04-01"),
        (dt.datetime(2024, 6, 1, tzinfo=UTC), "not_yet_valid", "valid from 2025-01-01"),
    ],
)
def test_leaf_outside_validity(
    lab: LabHierarchy,
    leaves: dict[str, LabLeaf],
    profiles: dict[str, Profile],
    at: dt.datetime,
    classification: str,
    word: str,
) -> None:
    chain = lab.served_chain(leaves["RSA"], "cross")
    result = validate(chain, profiles["legacy"], at=at, hostname=HOST)
    assert not result.valid
    assert result.classification == classification
    assert result.reason is not None
    assert HOST in result.reason
    assert word in result.reason


def test_expired_intermediate_is_named(lab: LabHierarchy, profiles: dict[str, Profile]) -> None:
    # The lab R36 ends 2036-03-21: a leaf issued later cannot validate through it.
    late = lab.issue_leaf(
        [HOST],
        not_before=dt.datetime(2037, 1, 1, tzinfo=UTC),
        not_after=dt.datetime(2037, 6, 1, tzinfo=UTC),
    )
    at = dt.datetime(2037, 2, 1, tzinfo=UTC)
    result = validate(lab.served_chain(late, "cross"), profiles["legacy"], at=at, hostname=HOST)
    assert result.classification == "expired"
    assert result.reason is not None
    assert "CA DV R36 (expired 2036-03-21)" in result.reason
    assert HOST not in result.reason.split("(on the path")[0]


def test_expired_and_short_reports_both(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    chain = lab.served_chain(leaves["RSA"], "short")
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    result = validate(chain, profiles["legacy"], at=at, hostname=HOST)
    assert result.classification == "expired"
    assert result.missing_intermediates == [thumbprint(lab.r46_cross)]
    assert result.reason is not None
    assert "fixable by serving" in result.reason


@pytest.mark.parametrize("hostname", ["other.test", "127.0.0.1"])
def test_wrong_hostname(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile], hostname: str
) -> None:
    chain = lab.served_chain(leaves["RSA"], "cross")
    result = validate(chain, profiles["both"], at=AT, hostname=hostname)
    assert not result.valid
    assert result.classification == "hostname"
    assert result.hostname == hostname
    assert not result.hostname_from_leaf
    assert result.reason is not None
    assert hostname in result.reason
    assert HOST in result.reason


def test_hostname_defaults_to_the_leaf_san_and_says_so(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    result = validate(lab.served_chain(leaves["RSA"], "cross"), profiles["legacy"], at=AT)
    assert result.valid
    assert result.hostname == HOST
    assert result.hostname_from_leaf
    assert any(HOST in n and "no hostname given" in n for n in result.notes)


def test_wildcard_leaf_is_checked_under_its_domain(
    lab: LabHierarchy, profiles: dict[str, Profile]
) -> None:
    leaf = lab.issue_leaf(["*.example.test"], not_before=NB, not_after=NA)
    result = validate(lab.served_chain(leaf, "cross"), profiles["legacy"], at=AT)
    assert result.valid
    assert result.hostname == "www.example.test"


def _other_ca(*, leaf_aki: bool = True) -> tuple[x509.Certificate, x509.Certificate]:
    key = new_key("RSA")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unrelated Test Root")])
    root = make_certificate(
        subject=name, public_key=key.public_key(), issuer=name, issuer_key=key,
        not_before=dt.datetime(2020, 1, 1, tzinfo=UTC),
        not_after=dt.datetime(2030, 1, 1, tzinfo=UTC), ca=True,
    )  # fmt: skip
    leaf_key = new_key("RSA")
    leaf = make_certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]),
        public_key=leaf_key.public_key(), issuer=name, issuer_key=key,
        not_before=NB, not_after=NA, ca=False, dns_names=[HOST],
        issuer_ski=root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        if leaf_aki else None,
    )  # fmt: skip
    return leaf, root


def test_unrelated_ca(profiles: dict[str, Profile]) -> None:
    leaf, root = _other_ca()
    sent_root = validate([leaf, root], profiles["both"], at=AT, hostname=HOST)
    assert sent_root.classification == "untrusted_root"
    assert sent_root.reason is not None
    assert "Unrelated Test Root" in sent_root.reason
    leaf_only = validate([leaf], profiles["both"], at=AT, hostname=HOST)
    assert leaf_only.classification == "incomplete"
    assert leaf_only.reason is not None
    assert "was not served" in leaf_only.reason
    # The same chain is valid for a user bundle holding that root.
    own = Profile(name="own", description="own root", anchors=(root,), source="test")
    assert validate([leaf], own, at=AT, hostname=HOST).valid


def test_leaf_without_aki_is_a_policy_failure() -> None:
    # OpenSSL accepts a leaf without authorityKeyIdentifier; webpki (cryptography) does not.
    leaf, root = _other_ca(leaf_aki=False)
    own = Profile(name="own", description="own root", anchors=(root,), source="test")
    result = validate([leaf], own, at=AT, hostname=HOST)
    assert result.classification == "policy"
    assert result.reason is not None
    assert "a path to Unrelated Test Root exists" in result.reason
    assert "2.5.29.35" in result.reason  # cryptography's own message names the extension


def test_same_name_other_key_is_untrusted(lab: LabHierarchy, leaves: dict[str, LabLeaf]) -> None:
    # Real roots (same names as the lab ones, other keys) never anchor a lab chain.
    real_legacy = builtin_profile("legacy")
    result = validate(lab.served_chain(leaves["RSA"], "cross"), real_legacy, at=AT, hostname=HOST)
    assert result.classification == "untrusted_root"
    assert result.reason is not None
    assert "another key" in result.reason


def test_leaf_without_san_is_a_policy_failure(
    lab: LabHierarchy, profiles: dict[str, Profile]
) -> None:
    leaf = lab.issue_leaf([], not_before=NB, not_after=NA)
    result = validate(lab.served_chain(leaf, "cross"), profiles["legacy"], at=AT)
    assert result.classification == "policy"
    assert result.hostname is None
    assert result.reason is not None
    assert "subjectAltName" in result.reason
    named = validate(lab.served_chain(leaf, "cross"), profiles["legacy"], at=AT, hostname=HOST)
    assert named.classification == "policy"


def test_client_auth_only_leaf_is_a_policy_failure(
    lab: LabHierarchy, profiles: dict[str, Profile]
) -> None:
    key = new_key("RSA")
    ski = lab.r36.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(lab.r36.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NB)
        .not_valid_after(NA)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        .sign(lab.r36.key, hashes.SHA256())
    )
    chain = [leaf, lab.r36.cert, lab.r46_cross]
    result = validate(chain, profiles["legacy"], at=AT, hostname=HOST)
    assert result.classification == "policy"
    assert result.reason is not None
    assert "USERTrust RSA Certification Authority exists" in result.reason
    assert "webpki" in result.reason


def test_naive_time_is_utc(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    chain = lab.served_chain(leaves["RSA"], "cross")
    naive_late = dt.datetime(2025, 4, 1, 0, 0, 1)  # one second after not_after (UTC)
    assert validate(chain, profiles["legacy"], at=naive_late).classification == "expired"
    assert validate(chain, profiles["legacy"], at=dt.datetime(2025, 3, 31, 23, 59)).valid


def test_bad_inputs(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    with pytest.raises(InputError, match="empty chain"):
        validate([], profiles["legacy"], at=AT)
    with pytest.raises(InputError, match="not a valid hostname"):
        validate([leaves["RSA"].cert], profiles["legacy"], at=AT, hostname="bad host!")


def test_profile_pins_and_store_cache(lab: LabHierarchy) -> None:
    p = builtin_profile("legacy", lab.catalog)
    assert p.store is p.store  # built once
    assert p.anchor_sha256s == (
        sha256_hex(lab.usertrust_rsa.cert),
        sha256_hex(lab.usertrust_ecc.cert),
    )
    Profile(name="x", description="", anchors=p.anchors, anchor_sha256s=p.anchor_sha256s)
    with pytest.raises(CatalogError, match="pins"):
        Profile(name="x", description="", anchors=p.anchors, anchor_sha256s=("00" * 32,))
    with pytest.raises(InputError, match="no trust anchors"):
        Profile(name="x", description="", anchors=())


def test_builtin_profiles_real_and_lab(lab: LabHierarchy) -> None:
    cat = default_catalog()
    real = {p.name: set(p.anchor_sha256s) for p in load_profiles(["legacy", "modern", "both"])}
    ut = {
        cat.entry("usertrust-rsa-root-selfsigned").sha256,
        cat.entry("usertrust-ecc-root-selfsigned").sha256,
    }
    new = {cat.entry("r46-root-selfsigned").sha256, cat.entry("e46-root-selfsigned").sha256}
    assert real == {"legacy": ut, "modern": new, "both": ut | new}
    aaa = load_profiles(["legacy+aaa"], catalog=lab.catalog)[0]
    assert aaa.name == "legacy+aaa"
    assert sha256_hex(lab.aaa.cert) in aaa.anchor_sha256s
    assert len(aaa.anchors) == 3
    assert builtin_profile("legacy", lab.catalog, include_aaa=True).anchor_sha256s == (
        aaa.anchor_sha256s
    )


def _write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def test_user_bundle_profile(lab: LabHierarchy, leaves: dict[str, LabLeaf], tmp_path: Path) -> None:
    bundle = _write_pem(tmp_path / "corp.pem", lab.usertrust_rsa.cert, lab.usertrust_rsa.cert)
    (corp,) = load_profiles([f"corp={bundle}"], catalog=lab.catalog)
    assert corp.name == "corp"
    assert len(corp.anchors) == 1
    assert validate(lab.served_chain(leaves["RSA"], "cross"), corp, at=AT).valid
    short = validate(lab.served_chain(leaves["RSA"], "short"), corp, at=AT)
    assert short.classification == "incomplete_fixable"  # the lab catalog explains it


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown profile 'nope'; known: legacy, legacy\\+aaa, modern, both, android-14"),
        ("x=/nonexistent/bundle.pem", "cannot load the bundle"),
        ("=file.pem", "expected NAME=PEMFILE"),
        ("corp=", "expected NAME=PEMFILE"),
        ("legacy=file.pem", "already a built-in"),
        ("android-14=file.pem", "already a built-in or snapshot"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_profiles([spec])


def test_not_a_certificate_bundle_and_duplicates(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    with pytest.raises(InputError, match=r"junk\.pem"):
        load_profiles([f"j={junk}"])
    with pytest.raises(InputError, match="given twice"):
        load_profiles(["legacy", "legacy"])


def test_list_profiles_names_builtins_and_snapshots() -> None:
    names = dict(list_profiles())
    assert list(names)[:4] == ["legacy", "legacy+aaa", "modern", "both"]
    assert {"android-14", "android-15", "mozilla-2023-05", "mozilla-current", "ios-17",
            "jdk-17", "windows-2023-02"} <= set(names)  # fmt: skip
    assert "no Sectigo R46/E46" in names["android-14"]
    assert "R46/E46 present" in names["android-15"]


def test_result_is_frozen_and_serialises(
    lab: LabHierarchy, leaves: dict[str, LabLeaf], profiles: dict[str, Profile]
) -> None:
    result = validate(lab.served_chain(leaves["RSA"], "short"), profiles["legacy"], at=AT)
    again = ProfileResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert str(result).startswith("legacy: FAILS (incomplete_fixable)")
    with pytest.raises(ValueError, match="frozen"):
        result.valid = True  # type: ignore[misc]
