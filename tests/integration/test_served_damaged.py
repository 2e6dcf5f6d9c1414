"""Issue 13, defect 9: a served intermediate that does not parse (a broken key, a duplicate
extension) is a chain problem of a reachable server: a finding and exit 1, never exit 3 or a
raw ``ValueError``. Real TLS servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt

import hostile
import pytest
from cryptography import x509

from sectigo_chain.cli.main import main
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.testing.tls_servers import LoopbackTLSServer
from sectigo_chain.tls.check import check_endpoint, check_many
from sectigo_chain.tls.report import ChainReport

pytestmark = pytest.mark.timeout(60)
AT = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def lab() -> LabHierarchy:
    return LabHierarchy.create(at=AT)


def _damaged(lab: LabHierarchy, kind: str) -> bytes:
    if kind == "bad-key":  # an EC point off the curve (OpenSSL refuses to serve a 0 RSA key)
        return hostile.bad_key(lab.e36.cert)
    return hostile.duplicate_extension(lab.r36.cert, lab.usertrust_rsa.key)


@pytest.mark.parametrize("kind", ["bad-key", "duplicate-extension"])
def test_damaged_intermediate_is_a_finding(lab: LabHierarchy, kind: str) -> None:
    family = "ECC" if kind == "bad-key" else "RSA"
    leaf = lab.issue_leaf(("www.example.test",), family=family, at=AT)
    bad = x509.load_der_x509_certificate(_damaged(lab, kind))
    with LoopbackTLSServer([leaf.cert, bad, lab.cross(family)], leaf.key) as server:
        report = check_endpoint(
            "127.0.0.1", server.port, servername="www.example.test", at=AT, catalog=lab.catalog
        )
        (many,) = check_many(
            [f"127.0.0.1:{server.port}"],
            servername="www.example.test",
            at=AT,
            catalog=lab.catalog,
        )
    assert report.verdict == "fail"
    codes = [f.code for f in report.findings]
    assert "damaged-certificate" in codes
    detail = next(f.detail for f in report.findings if f.code == "damaged-certificate")
    assert "#2" in detail
    assert isinstance(many, ChainReport)
    assert "damaged-certificate" in [f.code for f in many.findings]


def test_cli_exit_1_with_a_finding(lab: LabHierarchy, capsys: pytest.CaptureFixture[str]) -> None:
    leaf = lab.issue_leaf(("www.example.test",), family="ECC", at=AT)
    bad = x509.load_der_x509_certificate(_damaged(lab, "bad-key"))
    with LoopbackTLSServer([leaf.cert, bad], leaf.key) as server:
        code = main(["check", f"127.0.0.1:{server.port}", "--servername", "www.example.test"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "damaged-certificate" in out
    assert "Traceback" not in err
