"""``CertSummary.to_json`` is written out field by field (speed, issue 15): it must stay what
``model_dump(mode="json")`` gives, with ``der_b64`` only when asked."""

from __future__ import annotations

import datetime as dt

import pytest

from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.tls.report import CertSummary


@pytest.mark.parametrize("layout", ["cross", "with_root"])
def test_to_json_is_model_dump(lab: LabHierarchy, layout: str) -> None:
    leaf = lab.issue_leaf(["www.example.test"], family="ECC")
    for cert in lab.served_chain(leaf, layout):  # type: ignore[arg-type]
        summary = CertSummary.of(cert)
        assert summary.to_json(include_der=True) == summary.model_dump(mode="json")
        assert list(summary.to_json(include_der=True)) == list(summary.model_dump(mode="json"))
        assert summary.to_json() == summary.model_dump(mode="json", exclude={"der_b64"})


def test_to_json_of_a_summary_outside_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    summary = CertSummary(
        subject="CN=a",
        issuer="CN=b",
        common_name="a",
        sha256="00",
        thumbprint="11",
        not_before=dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=plus_two),
        not_after=dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        der_b64="AA==",
    )
    assert summary.to_json() == {
        "subject": "CN=a",
        "issuer": "CN=b",
        "common_name": "a",
        "sha256": "00",
        "thumbprint": "11",
        "not_before": "2030-01-02T03:04:05+02:00",
        "not_after": "2031-01-02T03:04:05Z",
    }
    assert summary.to_json(include_der=True) == summary.model_dump(mode="json")
