"""Path builders: OpenSSL-builder profiles, the findings that follow from who fails, names.

Lab chains with real keys, judged at the fixed instant AT the lab leaves are issued around. The
emulation itself is checked cell by cell against the real ``openssl verify`` in
``tests/integration/test_openssl_oracle.py``; these tests pin the stories the library tells.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sectigo_chain.errors import InputError
from sectigo_chain.testing.lab import LabHierarchy, make_certificate
from sectigo_chain.tls.judge import report_for_chain
from sectigo_chain.trust.profiles import Profile, load_profiles, validate, validate_many
from sectigo_chain.x509.builders import (
    BUILDERS,
    builder_for_name,
    first_match_path,
    openssl_verify,
    strip_builder,
)
from sectigo_chain.x509.paths import analyze

UTC = dt.timezone.utc
AT = dt.datetime(2026, 6, 1, tzinfo=UTC)


def _leaf(lab: LabHierarchy) -> x509.Certificate:
    return lab.issue_leaf(["www.example.test"], at=AT).cert


def _expired_cross(lab: LabHierarchy) -> x509.Certificate:
    ski = lab.usertrust_rsa.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return make_certificate(
        subject=lab.r46_root.cert.subject,
        public_key=lab.r46_root.key.public_key(),
        issuer=lab.usertrust_rsa.cert.subject,
        issuer_key=lab.usertrust_rsa.key,
        not_before=dt.datetime(2021, 3, 22, tzinfo=UTC),
        not_after=dt.datetime(2024, 1, 1, tzinfo=UTC),
        ca=True,
        issuer_ski=ski.value.digest,
    )


def test_self_signed_before_cross_fails_for_openssl_legacy_only(lab: LabHierarchy) -> None:
    chain = [_leaf(lab), lab.r36.cert, lab.r46_root.cert, lab.r46_cross]
    names = ["legacy", "openssl-legacy", "openssl-1.0-legacy", "modern", "openssl-modern"]
    results = validate_many(chain, load_profiles(names, catalog=lab.catalog), at=AT)
    assert results["legacy"].valid  # backtracking clients: unchanged
    assert results["modern"].valid
    assert results["openssl-modern"].valid
    for name in ("openssl-legacy", "openssl-1.0-legacy"):
        result = results[name]
        assert not result.valid
        assert result.classification == "openssl_path"
        assert result.reason is not None
        assert "error 19" in result.reason
        assert "stop sending the self-signed Sectigo Public Server Authentication Root R46" in (
            result.reason
        )
    analysis = analyze(chain, at=AT, catalog=lab.catalog)
    (finding,) = [f for f in analysis.findings if f.code == "SELF_SIGNED_R46_SENT"]
    assert finding.severity == "error"
    assert "OpenSSL-based clients" in finding.detail
    assert "curl" in finding.detail
    assert "send the cross-sign before it" in finding.detail
    report = report_for_chain(chain, at=AT, profiles=["openssl-legacy"], catalog=lab.catalog)
    assert report.verdict == "fail"


def test_self_signed_after_cross_stays_a_warning(lab: LabHierarchy) -> None:
    chain = [_leaf(lab), lab.r36.cert, lab.r46_cross, lab.r46_root.cert]
    analysis = analyze(chain, at=AT, catalog=lab.catalog)
    (finding,) = analysis.findings
    assert (finding.code, finding.severity) == ("SELF_SIGNED_R46_SENT", "warning")
    assert "after the cross-sign" in finding.detail
    (result,) = validate_many(
        chain, load_profiles(["openssl-legacy"], catalog=lab.catalog), at=AT
    ).values()
    assert result.valid


def test_order_findings_say_who_tolerates_the_order(lab: LabHierarchy) -> None:
    leaf = _leaf(lab)
    tolerated = analyze([leaf, lab.r46_cross, lab.r36.cert], at=AT, catalog=lab.catalog)
    (order,) = [f for f in tolerated.findings if f.code == "INCORRECT_ORDER"]
    assert "OpenSSL 1.0.x-3.x search every sent certificate and tolerate this order" in (
        order.detail
    )
    misled = analyze(
        [leaf, lab.r46_root.cert, lab.r46_cross, lab.r36.cert], at=AT, catalog=lab.catalog
    )
    (order,) = [f for f in misled.findings if f.code == "INCORRECT_ORDER"]
    assert "OpenSSL-based clients take the first matching issuer and follow" in order.detail
    assert {f.code: f.severity for f in misled.findings}["SELF_SIGNED_R46_SENT"] == "error"
    not_first = analyze([lab.r36.cert, leaf, lab.r46_cross], at=AT, catalog=lab.catalog)
    (order,) = [f for f in not_first.findings if f.code == "INCORRECT_ORDER"]
    assert "no client tolerates this" in order.detail


def test_first_match_path_prefers_a_valid_issuer(lab: LabHierarchy) -> None:
    leaf, expired = _leaf(lab), _expired_cross(lab)
    # OpenSSL 3 skips the expired cross-sign for the valid self-signed R46 behind it
    path = first_match_path([leaf, lab.r36.cert, expired, lab.r46_root.cert], at=AT)
    assert path == [leaf, lab.r36.cert, lab.r46_root.cert]
    path = first_match_path([leaf, lab.r36.cert, lab.r46_cross, lab.r46_root.cert], at=AT)
    assert path == [leaf, lab.r36.cert, lab.r46_cross]


def test_openssl_1_0_differs_where_the_sources_say(lab: LabHierarchy) -> None:
    leaf = _leaf(lab)
    both = [lab.usertrust_rsa.cert, lab.r46_root.cert]
    expired = [leaf, lab.r36.cert, _expired_cross(lab)]
    # trusted first (1.1.0+) finds R46 in the store; 1.0.2 follows the expired cross-sign
    assert openssl_verify(leaf, expired[1:], both, at=AT, hostname="www.example.test").ok
    old = openssl_verify(leaf, expired[1:], both, at=AT, builder="openssl-1.0")
    assert (old.error, old.depth) == (10, 2)
    profile = Profile(name="openssl-1.0-both", description="test", anchors=tuple(both))
    result = validate(expired, profile, at=AT)
    assert result.classification == "openssl_path"
    assert result.reason is not None
    assert "stop sending" in result.reason
    # alternative chains (1.0.1n/1.0.2b) rescue the cross chain for an R46-only store
    modern = [lab.r46_root.cert]
    cross = [lab.r36.cert, lab.r46_cross]
    assert openssl_verify(leaf, cross, modern, at=AT, builder="openssl-1.0").ok
    no_alt = openssl_verify(leaf, cross, modern, at=AT, builder="openssl-1.0", alt_chains=False)
    assert no_alt.error == 20


def test_profile_names_choose_the_builder(lab: LabHierarchy, tmp_path: Path) -> None:
    assert builder_for_name("openssl-1.0-legacy") == "openssl-1.0"
    assert builder_for_name("openssl-jdk-17") == "openssl"
    assert builder_for_name("android-14") == "backtracking"
    assert strip_builder("openssl-1.0-legacy") == "legacy"
    bundle = tmp_path / "corp.pem"
    bundle.write_bytes(lab.usertrust_rsa.cert.public_bytes(serialization.Encoding.PEM))
    specs = ["legacy", "openssl-legacy", "openssl-jdk-17", f"openssl-corp={bundle}", "corp2="
             f"{bundle}"]  # fmt: skip
    builders = {p.name: p.builder for p in load_profiles(specs, catalog=lab.catalog)}
    assert builders == {
        "legacy": "backtracking",
        "openssl-legacy": "openssl",
        "openssl-jdk-17": "openssl",
        "openssl-corp": "openssl",
        "corp2": "backtracking",
    }
    (named,) = load_profiles(["openssl-legacy"], catalog=lab.catalog)
    assert "OpenSSL" in named.description
    assert len(named.anchors) == 2
    with pytest.raises(InputError, match="unknown builder"):
        Profile(name="x", description="x", anchors=(lab.aaa.cert,), builder="gnutls")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="prefixed with openssl-"):
        load_profiles(["openssl-nope"])
    assert set(BUILDERS) == {"backtracking", "openssl", "openssl-1.0"}


def test_openssl_profile_reports_its_other_failures_with_the_diagnosis(
    lab: LabHierarchy,
) -> None:
    chain = lab.served_chain(lab.issue_leaf(["www.example.test"], at=AT), "short")
    (result,) = validate_many(
        chain, load_profiles(["openssl-legacy"], catalog=lab.catalog), at=AT
    ).values()
    assert result.classification == "incomplete_fixable"
    assert result.reason is not None
    assert "error 20" in result.reason
    mismatch = validate(
        lab.served_chain(lab.issue_leaf(["www.example.test"], at=AT)),
        load_profiles(["openssl-legacy"], catalog=lab.catalog)[0],
        at=AT,
        hostname="other.example.test",
    )
    assert mismatch.classification == "hostname"
    assert mismatch.reason is not None
    assert "error 62" in mismatch.reason
