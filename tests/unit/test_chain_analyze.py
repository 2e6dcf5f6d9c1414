"""chain.analyze / compare_versions: one case per finding code, good chains, real certificates."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sectigo_chain.testing.lab import LabLeaf, default_lab, make_certificate, new_key
from sectigo_chain.x509.catalog import Catalog, default_catalog
from sectigo_chain.x509.certs import sha256_hex
from sectigo_chain.x509.paths import (
    FINDING_CODES,
    ChainAnalysis,
    Finding,
    analyze,
    compare_versions,
    hostname_matches,
)

UTC = dt.timezone.utc
AT = dt.datetime(2026, 6, 1, tzinfo=UTC)
NB, NA = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)
HOST = "www.example.test"


def _real(cid: str) -> x509.Certificate:
    return default_catalog().certificate(cid)


def _leaf(family: str = "RSA", nb: dt.datetime = NB, na: dt.datetime = NA) -> LabLeaf:
    return _cached_leaf(family, nb, na)


@functools.cache
def _cached_leaf(family: str, nb: dt.datetime, na: dt.datetime) -> LabLeaf:
    fam: Literal["RSA", "ECC"] = "RSA" if family == "RSA" else "ECC"
    names = [HOST, "*.apps.example.test"]
    return default_lab().issue_leaf(names, family=fam, not_before=nb, not_after=na)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sha1_resigned(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``cert`` re-signed with SHA-1. cryptography refuses to *sign* certificates with SHA-1,
    so the TBS is rewritten with asn1crypto and signed with the raw RSA key (PKCS#1 v1.5)."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = asn1_x509.SignedDigestAlgorithm({"algorithm": "sha1_rsa"})
    tbs_der = tbs.dump(force=True)
    signature = issuer_key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1())
    rebuilt = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": {"algorithm": "sha1_rsa"},
            "signature_value": signature,
        }
    )
    return x509.load_der_x509_certificate(rebuilt.dump())


def _foreign_chain() -> list[x509.Certificate]:
    """leaf -> intermediate of a hierarchy the catalog does not know (root not sent)."""
    root_key, ca_key, leaf_key = new_key("ECC"), new_key("ECC"), new_key("ECC")
    ca = make_certificate(
        subject=_name("Other Issuing CA"), public_key=ca_key.public_key(),
        issuer=_name("Other Root"), issuer_key=root_key, not_before=NB, not_after=NA, ca=True,
    )  # fmt: skip
    leaf = make_certificate(
        subject=_name(HOST), public_key=leaf_key.public_key(), issuer=ca.subject,
        issuer_key=ca_key, not_before=NB, not_after=NA, ca=False, dns_names=[HOST],
    )  # fmt: skip
    return [leaf, ca]


# Each case: the served chain (built lazily), analyze kwargs, the code and severity expected.
Case = tuple[Callable[[], list[x509.Certificate]], dict[str, object], str, str]
_LAB = default_lab


def _good(family: str = "RSA") -> list[x509.Certificate]:
    return _LAB().served_chain(_leaf(family), "cross")


CASES: dict[str, Case] = {
    "incomplete_leaf_only": (lambda: [_leaf().cert], {}, "INCOMPLETE", "error"),
    "incomplete_foreign_leaf": (lambda: _foreign_chain()[:1], {}, "INCOMPLETE", "error"),
    "short_chain_rsa": (
        lambda: _LAB().served_chain(_leaf(), "short"), {}, "SHORT_CHAIN_R46", "error",
    ),
    "short_chain_ecc": (
        lambda: _LAB().served_chain(_leaf("ECC"), "short"), {}, "SHORT_CHAIN_R46", "error",
    ),
    "self_signed_r46": (
        lambda: _LAB().served_chain(_leaf(), "selfsigned"), {}, "SELF_SIGNED_R46_SENT", "error",
    ),
    "self_signed_e46_next_to_cross": (
        lambda: [*_good("ECC"), _LAB().e46_root.cert], {}, "SELF_SIGNED_R46_SENT", "warning",
    ),
    "contains_anchor": (
        lambda: _LAB().served_chain(_leaf(), "with_root"), {}, "CONTAINS_ANCHOR", "warning",
    ),
    "expired_leaf": (
        lambda: [_leaf(nb=dt.datetime(2025, 1, 1, tzinfo=UTC), na=NB).cert, *_good()[1:]],
        {}, "EXPIRED_SENT", "error",
    ),
    "expired_cross_later": (
        lambda: _good(), {"at": dt.datetime(2038, 6, 1, tzinfo=UTC)}, "EXPIRED_SENT", "error",
    ),
    "not_yet_valid": (
        lambda: [_leaf(nb=dt.datetime(2026, 7, 1, tzinfo=UTC)).cert, *_good()[1:]],
        {}, "NOT_YET_VALID", "error",
    ),
    "hostname_mismatch": (_good, {"hostname": "other.example.test"}, "HOSTNAME_MISMATCH", "error"),
    "duplicate": (
        lambda: [_good()[0], _good()[1], _good()[1], _good()[2]], {}, "DUPLICATE", "warning",
    ),
    "incorrect_order": (
        lambda: [_good()[0], _good()[2], _good()[1]], {}, "INCORRECT_ORDER", "error",
    ),
    "leaf_not_first": (
        lambda: [_good()[1], _good()[0], _good()[2]], {}, "INCORRECT_ORDER", "error",
    ),
    "extra_certs": (lambda: [*_good(), _LAB().e36.cert], {}, "EXTRA_CERTS", "warning"),
    "weak_sha1_leaf": (
        lambda: [_sha1_resigned(_leaf().cert, _LAB().r36.key), *_good()[1:]],  # type: ignore[arg-type]
        {}, "WEAK_SIGNATURE", "warning",
    ),
    "weak_rsa_1024_leaf": (
        lambda: [_LAB().issue_leaf([HOST], key=new_key("RSA", bits=1024), not_before=NB,
                                   not_after=NA).cert, *_good()[1:]],
        {}, "WEAK_SIGNATURE", "warning",
    ),
    "cross_sign_missing_aaa": (
        lambda: [_real("ca-dv-e36"), _real("e46-cross-aaa")], {"catalog": "real"},
        "CROSS_SIGN_MISSING", "error",
    ),
    "unknown_issuer": (_foreign_chain, {}, "UNKNOWN_ISSUER", "info"),
}  # fmt: skip


def _run(served: list[x509.Certificate], kwargs: dict[str, object]) -> ChainAnalysis:
    at = kwargs.get("at", AT)
    catalog = default_catalog() if kwargs.get("catalog") == "real" else _LAB().catalog
    hostname = kwargs.get("hostname")
    assert isinstance(at, dt.datetime)
    assert hostname is None or isinstance(hostname, str)
    assert isinstance(catalog, Catalog)
    return analyze(served, at=at, catalog=catalog, hostname=hostname)


@pytest.mark.parametrize("case", sorted(CASES))
def test_finding_fires(case: str) -> None:
    build, kwargs, code, severity = CASES[case]
    served = build()
    analysis = _run(served, kwargs)
    hits = [f for f in analysis.findings if f.code == code]
    assert hits, f"{code} missing; got {[str(f) for f in analysis.findings]}"
    assert hits[0].severity == severity
    assert set(hits[0].certificates) <= {sha256_hex(c) for c in served}
    assert analysis.served == tuple(sha256_hex(c) for c in served)


def test_every_documented_code_has_a_case() -> None:
    covered = {code for _, _, code, _ in CASES.values()} | {"INCONSISTENT_ACROSS_VERSIONS"}
    assert covered == set(FINDING_CODES)
    for severity, meaning in FINDING_CODES.values():
        assert severity in ("error", "warning", "info")
        assert meaning


def test_docs_table_lists_every_code() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "chains.md").read_text("utf-8")
    for code, (severity, _) in FINDING_CODES.items():
        assert f"| `{code}` | {severity} |" in docs


@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_complete_good_chain_has_no_findings(family: str) -> None:
    lab = _LAB()
    served = _good(family)
    analysis = analyze(served, at=AT, catalog=lab.catalog, hostname=HOST)
    assert analysis.findings == ()
    assert analysis.ok
    assert analysis.family == ("R46" if family == "RSA" else "E46")
    assert analysis.path == tuple(sha256_hex(c) for c in served)
    assert "cross-signed by USERTrust" in analysis.path_names[-1]
    assert "no findings" in str(analysis)


def test_one_primary_code_per_r46_problem() -> None:
    lab = _LAB()
    short = analyze(lab.served_chain(_leaf(), "short"), at=AT, catalog=lab.catalog)
    assert short.codes == {"SHORT_CHAIN_R46"}
    selfsigned = analyze(lab.served_chain(_leaf(), "selfsigned"), at=AT, catalog=lab.catalog)
    assert selfsigned.codes == {"SELF_SIGNED_R46_SENT"}
    aaa = analyze([_real("ca-dv-e36"), _real("e46-cross-aaa")], at=AT)
    assert aaa.codes == {"CROSS_SIGN_MISSING"}
    assert aaa.family == "E46"
    # the wrong family's cross does not help: short chain plus an extra certificate
    wrong = analyze([_leaf().cert, lab.r36.cert, lab.e46_cross], at=AT, catalog=lab.catalog)
    assert wrong.codes == {"SHORT_CHAIN_R46", "EXTRA_CERTS"}


def test_self_signed_next_to_cross_keeps_the_cross_on_the_path() -> None:
    lab = _LAB()
    served = [*_good(), lab.r46_root.cert]
    analysis = analyze(served, at=AT, catalog=lab.catalog)
    assert analysis.path == tuple(sha256_hex(c) for c in _good())
    assert analysis.ok
    assert analysis.codes == {"SELF_SIGNED_R46_SENT"}


def test_expired_extra_certificate_is_only_a_warning() -> None:
    lab = _LAB()
    old = _leaf(
        "ECC", nb=dt.datetime(2024, 1, 1, tzinfo=UTC), na=dt.datetime(2025, 1, 1, tzinfo=UTC)
    )
    analysis = analyze([*_good(), old.cert], at=AT, catalog=lab.catalog)
    expired = [f for f in analysis.findings if f.code == "EXPIRED_SENT"]
    assert [f.severity for f in expired] == ["warning"]
    assert expired[0].certificates == (sha256_hex(old.cert),)
    assert analysis.ok


def test_findings_are_sorted_errors_first() -> None:
    lab = _LAB()
    served = [_leaf().cert, lab.r36.cert, lab.r36.cert, lab.usertrust_rsa.cert]
    analysis = analyze(served, at=AT, catalog=lab.catalog, hostname="nope.test")
    ranks = [("error", "warning", "info").index(f.severity) for f in analysis.findings]
    assert ranks == sorted(ranks)
    assert {"SHORT_CHAIN_R46", "HOSTNAME_MISMATCH", "DUPLICATE", "EXTRA_CERTS"} <= analysis.codes
    assert not analysis.ok
    assert len(analysis.errors) == 2
    assert str(analysis.errors[0]).startswith("ERROR ")


def test_sha1_leaf_still_chains_and_sha1_roots_are_not_flagged() -> None:
    lab = _LAB()
    sha1_leaf = _sha1_resigned(_leaf().cert, lab.r36.key)  # type: ignore[arg-type]
    analysis = analyze([sha1_leaf, *_good()[1:]], at=AT, catalog=lab.catalog)
    assert len(analysis.path) == 3  # SHA-1 signature verified, so the path is complete
    weak = [f for f in analysis.findings if f.code == "WEAK_SIGNATURE"]
    assert "sha1" in weak[0].detail.lower()
    # the real AAA root is self-signed with SHA-1: its own signature does not matter
    real = analyze(
        [_real("sectigo-rsa-dv-secure-server-ca"), _real("usertrust-rsa-cross-aaa"),
         _real("aaa-certificate-services-root")],
        at=AT,
    )  # fmt: skip
    assert real.codes == {"CONTAINS_ANCHOR"}
    assert real.family is None


# --- real certificates (structure) ---------------------------------------------------------


def test_real_r36_alone_is_the_short_chain() -> None:
    analysis = analyze([_real("ca-dv-r36")], at=AT)
    assert analysis.codes == {"SHORT_CHAIN_R46"}
    assert analysis.family == "R46"
    assert analysis.path == (sha256_hex(_real("ca-dv-r36")),)
    assert "Sectigo R46 cross-signed by USERTrust RSA" in analysis.findings[0].detail


@pytest.mark.parametrize(
    ("served", "codes", "family"),
    [
        (["ca-dv-r36", "r46-cross-usertrust-rsa"], set(), "R46"),
        (["ca-ev-r36", "r46-root-selfsigned"], {"SELF_SIGNED_R46_SENT"}, "R46"),
        (["ca-dv-e36", "e46-cross-usertrust-ecc"], set(), "E46"),
        (["ca-dv-e36", "e46-cross-usertrust-ecc", "usertrust-ecc-root-selfsigned"],
         {"CONTAINS_ANCHOR"}, "E46"),
        (["ca-dv-e36"], {"SHORT_CHAIN_R46"}, "E46"),
        (["r46-cross-usertrust-rsa", "ca-ov-r36"], {"INCORRECT_ORDER"}, "R46"),
        (["sectigo-rsa-dv-secure-server-ca"], set(), None),
        (["ca-dv-r36", "r46-cross-usertrust-rsa", "ca-dv-e36"], {"EXTRA_CERTS"}, "R46"),
    ],
)  # fmt: skip
def test_real_chains(served: list[str], codes: set[str], family: str | None) -> None:
    analysis = analyze([_real(c) for c in served], at=AT)
    assert analysis.codes == codes
    assert analysis.family == family


def test_real_aaa_cross_expires_end_of_2028() -> None:
    served = [_real("ca-dv-e36"), _real("e46-cross-aaa")]
    later = analyze(served, at=dt.datetime(2029, 1, 1, tzinfo=UTC))
    assert later.codes == {"CROSS_SIGN_MISSING", "EXPIRED_SENT"}
    early = analyze(served, at=dt.datetime(2021, 1, 1, tzinfo=UTC))  # before 2021-03-22
    assert "NOT_YET_VALID" in early.codes


def test_nothing_served() -> None:
    analysis = analyze([], at=AT)
    assert analysis.codes == {"INCOMPLETE"}
    assert analysis.path == ()


# --- host names ----------------------------------------------------------------------------


def _ip_leaf() -> x509.Certificate:
    key = new_key("ECC")
    return (
        x509.CertificateBuilder()
        .subject_name(_name("10.0.0.5"))
        .issuer_name(_name("10.0.0.5"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NB)
        .not_valid_after(NA)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("10.0.0.5")), x509.DNSName("*.example.test")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        (HOST, True),
        ("WWW.Example.Test.", True),
        ("a.apps.example.test", True),
        ("apps.example.test", False),
        ("a.b.apps.example.test", False),
        ("example.test", False),
        ("other.example.test", False),
    ],
)
def test_hostname_rules(hostname: str, expected: bool) -> None:
    assert hostname_matches(_leaf().cert, hostname) is expected


def test_hostname_ip_addresses_and_no_san() -> None:
    ip_leaf = _ip_leaf()
    assert hostname_matches(ip_leaf, "10.0.0.5")
    assert not hostname_matches(ip_leaf, "10.0.0.6")
    assert hostname_matches(ip_leaf, "x.example.test")
    # a wildcard never matches an IP address written as labels
    assert not hostname_matches(ip_leaf, "10.0.0.7")
    assert hostname_matches(_ip_leaf(), "[10.0.0.5]")
    no_san = _real("ca-dv-r36")
    assert not hostname_matches(no_san, "Sectigo Public Server Authentication CA DV R36")


# --- TLS versions --------------------------------------------------------------------------


def test_compare_versions() -> None:
    lab = _LAB()
    good, short = _good(), lab.served_chain(_leaf(), "short")
    assert compare_versions({"TLSv1.2": good, "TLSv1.3": list(good)}) is None
    assert compare_versions({"TLSv1.3": good}) is None
    assert compare_versions({"TLSv1.2": good, "TLSv1.3": []}) is None  # 1.3 did not connect
    finding = compare_versions({"TLSv1.2": short, "TLSv1.3": good})
    assert isinstance(finding, Finding)
    assert finding.code == "INCONSISTENT_ACROSS_VERSIONS"
    assert finding.severity == FINDING_CODES["INCONSISTENT_ACROSS_VERSIONS"][0]
    assert finding.certificates == (sha256_hex(lab.r46_cross),)
    assert "TLSv1.2" in finding.detail
    assert "TLSv1.3" in finding.detail
    reordered = compare_versions({"TLSv1.2": good, "TLSv1.3": [good[0], good[2], good[1]]})
    assert reordered is not None
    assert reordered.certificates == ()
