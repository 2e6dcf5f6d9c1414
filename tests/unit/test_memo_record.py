"""``CertPairMemo.record``: a fact established elsewhere (the verifier checked a signature)
is remembered, so the analysis does not check it again (issue 15)."""

from __future__ import annotations

import datetime as dt

from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.trust.profiles import load_profiles, validate
from sectigo_chain.x509._memo import CertPairMemo
from sectigo_chain.x509.findings import issued_by


def test_a_recorded_pair_is_answered_without_calling_the_function(lab: LabHierarchy) -> None:
    calls: list[object] = []

    def fn(first: object, second: object) -> bool:
        calls.append((first, second))
        return False

    memo = CertPairMemo(fn, maxsize=2)
    a, b, c = lab.r36.cert, lab.r46_cross, lab.usertrust_rsa.cert
    memo.record(a, b, True)
    assert memo(a, b) is True
    assert calls == []
    assert memo(b, a) is False  # the other order is another fact
    assert calls == [(b, a)]
    memo.record(b, c, True)  # beyond maxsize: the oldest goes
    assert memo.cache_info().currsize == 2
    assert memo(a, b) is False
    assert calls[-1] == (a, b)


def test_validation_records_the_signatures_of_the_path_it_built(lab: LabHierarchy) -> None:
    at = max(c.not_valid_before_utc for c in lab.catalog.certificates()) + dt.timedelta(days=30)
    leaf = lab.issue_leaf(["www.example.test"], not_before=at - dt.timedelta(days=1),
                          not_after=at + dt.timedelta(days=90))  # fmt: skip
    chain = lab.served_chain(leaf, "cross")
    legacy = load_profiles(["legacy"], catalog=lab.catalog)[0]
    issued_by.cache_clear()
    assert validate(chain, legacy, at=at, hostname="www.example.test").valid
    before = issued_by.cache_info()
    assert issued_by(chain[0], chain[1])  # leaf by R36
    assert issued_by(chain[1], chain[2])  # R36 by the cross-signed R46
    after = issued_by.cache_info()
    assert after.misses == before.misses  # no signature checked again
    assert after.hits == before.hits + 2
