"""The pure part of ``check``: verdicts of already fetched chains, no network.

The real Sectigo CA certificates (the package's pinned copies) drive the analysis cases: no real
leaf exists here, so these chains start at the issuing CA and no profile is selected (the analysis
alone decides). Lab chains (with leaves) cover profiles and chains that differ per TLS version.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509

from sectigo_chain.errors import InputError
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.tls.check import (
    ChainReport,
    check_many,
    parse_target,
    report_for_chain,
    resolve_profiles,
    verdict_for,
    worst_verdict,
)
from sectigo_chain.trust.profiles import ProfileResult
from sectigo_chain.x509.catalog import default_catalog
from sectigo_chain.x509.findings import Finding, Severity

AT = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)

# chain (file names, wire order) -> expected (verdict, {code: severity})
REAL_CASES = {
    "r36_with_cross": (["ca-dv-r36", "r46-cross-usertrust-rsa"], "pass", {}),
    "e36_with_cross": (["ca-dv-e36", "e46-cross-usertrust-ecc"], "pass", {}),
    "old_hierarchy": (["sectigo-rsa-dv-secure-server-ca"], "pass", {}),
    "r36_alone": (["ca-dv-r36"], "fail", {"SHORT_CHAIN_R46": "error"}),
    "e36_alone": (["ca-dv-e36"], "fail", {"SHORT_CHAIN_R46": "error"}),
    "r36_self_signed_r46": (
        ["ca-dv-r36", "r46-root-selfsigned"],
        "fail",
        {"SELF_SIGNED_R46_SENT": "error"},
    ),
    "root_sent": (
        ["ca-dv-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-root-selfsigned"],
        "warn",
        {"CONTAINS_ANCHOR": "warning"},
    ),
    "wrong_order": (["r46-cross-usertrust-rsa", "ca-dv-r36"], "fail", {"INCORRECT_ORDER": "error"}),
    "e46_via_aaa": (["ca-dv-e36", "e46-cross-aaa"], "fail", {"CROSS_SIGN_MISSING": "error"}),
    "extra_unrelated": (
        ["ca-dv-r36", "r46-cross-usertrust-rsa", "ca-dv-e36"],
        "warn",
        {"EXTRA_CERTS": "warning"},
    ),
}


def _real(sectigo_dir: Path, *names: str) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate((sectigo_dir / f"{n}.pem").read_bytes()) for n in names]


def _pairs(report: ChainReport) -> list[tuple[str, str]]:
    return sorted((f.code, f.severity) for f in report.findings)


@pytest.mark.parametrize("case", list(REAL_CASES))
def test_real_chains(case: str, sectigo_dir: Path) -> None:
    names, verdict, codes = REAL_CASES[case]
    chain = _real(sectigo_dir, *names)
    report = report_for_chain(chain, target=case, at=AT, profiles=())
    assert report.verdict == verdict, [str(f) for f in report.findings]
    assert _pairs(report) == sorted(codes.items())
    assert report.profiles == {}
    catalog = default_catalog()
    thumbs = [catalog.identify(c).thumbprint for c in chain]  # type: ignore[union-attr]
    assert [c.thumbprint for c in report.served_chain] == thumbs
    assert report.certificates == chain


def test_real_chain_judged_at_a_later_date(sectigo_dir: Path) -> None:
    chain = _real(sectigo_dir, "ca-dv-r36", "r46-cross-usertrust-rsa")
    later = dt.datetime(2037, 1, 1, tzinfo=dt.timezone.utc)  # R36 ends 2036-03-21
    report = report_for_chain(chain, at=later, profiles=())
    assert report.verdict == "fail"
    assert ("EXPIRED_SENT", "error") in _pairs(report)
    assert report.checked_at == later


def test_real_chains_differing_per_tls_version(sectigo_dir: Path) -> None:
    short = _real(sectigo_dir, "ca-dv-r36")
    full = _real(sectigo_dir, "ca-dv-r36", "r46-cross-usertrust-rsa")
    report = report_for_chain(full, at=AT, profiles=(), by_version={"1.3": full, "1.2": short})
    assert _pairs(report) == [
        ("INCONSISTENT_ACROSS_VERSIONS", "warning"),
        ("SHORT_CHAIN_R46", "error"),
    ]
    short_finding = next(f for f in report.findings if f.code == "SHORT_CHAIN_R46")
    assert short_finding.detail.startswith("TLS 1.2: ")
    assert report.verdict == "fail"
    same = report_for_chain(full, at=AT, profiles=(), by_version={"1.2": full, "1.3": full})
    assert same.verdict == "pass"
    assert same.findings == ()


def test_lab_profile_fails_if_any_version_fails(lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(["www.example.test"])
    cross, short = lab.served_chain(leaf, "cross"), lab.served_chain(leaf, "short")
    report = report_for_chain(
        cross,
        at=dt.datetime.now(dt.timezone.utc),
        profiles=["legacy", "modern"],
        hostname="www.example.test",
        catalog=lab.catalog,
        by_version={"1.2": short, "1.3": cross},
    )
    assert report.profiles["legacy"].valid is False
    assert (report.profiles["legacy"].reason or "").startswith("TLS 1.2: ")
    assert report.profiles["modern"].valid is True
    assert report.verdict == "fail"
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["profiles"]["legacy"]["valid"] is False
    assert doc["findings"][0]["severity"] == "error"


def test_lab_report_document_and_round_trip(lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(["www.example.test"])
    chain = lab.served_chain(leaf, "cross")
    at = leaf.cert.not_valid_before_utc + dt.timedelta(days=1)  # one clock: the leaf's own
    report = report_for_chain(chain, target="t", at=at, hostname=None, catalog=lab.catalog)
    assert list(report.profiles) == ["legacy", "modern"]
    assert report.hostname is None
    assert report.profiles["legacy"].hostname == "www.example.test"  # taken from the leaf
    doc = report.to_json()
    assert set(doc) >= {"target", "servername", "verdict", "served_chain", "findings", "profiles"}
    assert set(doc["served_chain"][0]) >= {"subject", "issuer", "sha256", "thumbprint"}
    assert set(doc["profiles"]["legacy"]) >= {"valid", "anchor", "path", "reason"}
    with_der = report.to_json(include_der=True)
    assert with_der["served_chain"][0]["der_b64"]
    again = ChainReport.model_validate(report.model_dump())
    assert again == report
    assert again.certificates == chain
    assert str(report).splitlines()[0] == f"t: {report.verdict.upper()}"


def _finding(severity: Severity) -> Finding:
    return Finding(code="X", severity=severity, detail="d")


def _profile(valid: bool) -> ProfileResult:
    return ProfileResult(profile="p", valid=valid, classification="ok" if valid else "incomplete")


@pytest.mark.parametrize(
    ("severities", "valid", "verdict"),
    [
        ([], [True, True], "pass"),
        (["info"], [True], "pass"),
        (["info", "warning"], [True], "warn"),
        (["warning", "error"], [True], "fail"),
        ([], [True, False], "fail"),
        (["warning"], [False], "fail"),
        ([], [], "pass"),
    ],
)
def test_verdict_rule(severities: list[Severity], valid: list[bool], verdict: str) -> None:
    findings = [_finding(s) for s in severities]
    assert verdict_for(findings, [_profile(v) for v in valid]) == verdict


def test_worst_verdict() -> None:
    assert worst_verdict([]) == "pass"
    assert worst_verdict(["pass", "warn"]) == "warn"
    assert worst_verdict(["fail", "warn", "pass"]) == "fail"
    assert worst_verdict(["fail", "error"]) == "error"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("example.com", "example.com", 443),
        ("  example.com:8443 ", "example.com", 8443),
        ("127.0.0.1:65535", "127.0.0.1", 65535),
        ("[::1]:4443", "::1", 4443),
        ("[::1]", "::1", 443),
        ("::1", "::1", 443),
        ("2001:db8::7", "2001:db8::7", 443),
        ("bücher.example", "bücher.example", 443),
    ],
)
def test_parse_target(text: str, host: str, port: int) -> None:
    target = parse_target(text)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "https://example.com",
        "example.com/path",
        "example.com:",
        "example.com:0",
        "example.com:65536",
        "example.com:https",
        ":443",
        "[::1",
        "[::1]443",
        "[example.com]:443",
        "a b",
        "host:1:2",
    ],
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_target(text)


def test_resolve_profiles() -> None:
    assert [p.name for p in resolve_profiles()] == ["legacy", "modern"]
    assert resolve_profiles([]) == []
    loaded = resolve_profiles(["both"])
    mixed = resolve_profiles(["legacy", loaded[0]])
    assert [p.name for p in mixed] == ["legacy", "both"]
    assert mixed[1] is loaded[0]
    with pytest.raises(InputError, match="given twice"):
        resolve_profiles(["both", loaded[0]])
    with pytest.raises(InputError, match="unknown profile"):
        resolve_profiles(["nope"])


def test_empty_chain_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty chain"):
        report_for_chain([], at=AT)


def test_check_many_rejects_bad_input_before_connecting() -> None:
    with pytest.raises(InputError):
        check_many(["good.example:443", "bad:port"])
    with pytest.raises(InputError):
        check_many(["127.0.0.1:1"], profiles=["nope"])
