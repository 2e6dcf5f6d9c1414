"""chain.predict_windows_chain: the served chain from Root/CA/My (modelled, reported behaviour)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Literal

import pytest
from cryptography import x509

from sectigo_chain.testing.lab import LabLeaf, default_lab
from sectigo_chain.x509.catalog import default_catalog
from sectigo_chain.x509.certs import sha256_hex
from sectigo_chain.x509.findings import issued_by
from sectigo_chain.x509.paths import (
    CertPath,
    WindowsChainPrediction,
    analyze,
    predict_windows_chain,
    shortest_trusted_path,
)

Family = Literal["RSA", "ECC"]

UTC = dt.timezone.utc
AT = dt.datetime(2026, 6, 1, tzinfo=UTC)


def _real(cid: str) -> x509.Certificate:
    return default_catalog().certificate(cid)


@functools.cache
def _leaf(family: Family) -> LabLeaf:
    return default_lab().issue_leaf(
        [f"{family.lower()}.example.test"],
        family=family,
        not_before=dt.datetime(2026, 1, 1, tzinfo=UTC),
        not_after=dt.datetime(2027, 1, 1, tzinfo=UTC),
    )


# --- real certificates (structure): the R36/E36 CA stands in for a leaf ---------------------


def test_real_r36_with_self_signed_r46_in_root_serves_the_short_chain() -> None:
    root = [_real(c) for c in ("r46-root-selfsigned", "usertrust-rsa-root-selfsigned",
                               "aaa-certificate-services-root")]  # fmt: skip
    ca = [_real("r46-cross-usertrust-rsa"), _real("usertrust-rsa-cross-aaa")]
    p = predict_windows_chain(_real("ca-dv-r36"), root=root, ca=ca, at=AT)
    assert p.trusted
    assert p.built == (_real("ca-dv-r36"), _real("r46-root-selfsigned"))
    assert p.served == (_real("ca-dv-r36"),)
    assert p.anchor == _real("r46-root-selfsigned")
    assert sorted(x.depth for x in p.paths) == [2, 3, 4]


def test_real_r36_without_r46_in_root_serves_the_cross() -> None:
    root = [_real("usertrust-rsa-root-selfsigned"), _real("aaa-certificate-services-root")]
    ca = [_real("r46-cross-usertrust-rsa"), _real("usertrust-rsa-cross-aaa")]
    p = predict_windows_chain(_real("ca-ov-r36"), root=root, ca=ca, at=AT)
    assert p.trusted
    assert p.served == (_real("ca-ov-r36"), _real("r46-cross-usertrust-rsa"))
    assert p.anchor == _real("usertrust-rsa-root-selfsigned")
    assert "USERTrust RSA" in p.reason


def test_real_e36_tie_goes_to_the_anchor_that_lasts_longer() -> None:
    """E36 -> E46 (AAA cross) -> AAA and E36 -> E46 (USERTrust cross) -> USERTrust ECC are both
    three certificates; USERTrust ECC (2038) outlives AAA (2028), so its path is chosen."""
    root = [_real("usertrust-ecc-root-selfsigned"), _real("aaa-certificate-services-root")]
    ca = [_real("e46-cross-aaa"), _real("e46-cross-usertrust-ecc")]
    p = predict_windows_chain(_real("ca-dv-e36"), root=root, ca=ca, at=AT)
    assert [x.depth for x in p.paths] == [3, 3]
    assert p.served == (_real("ca-dv-e36"), _real("e46-cross-usertrust-ecc"))
    assert p.anchor == _real("usertrust-ecc-root-selfsigned")
    # after AAA expired only the USERTrust path is left, whatever the tie rule
    later = predict_windows_chain(
        _real("ca-dv-e36"), root=root, ca=ca, at=dt.datetime(2030, 1, 1, tzinfo=UTC)
    )
    assert [x.depth for x in later.paths] == [3]


# --- lab chains (real keys) ----------------------------------------------------------------


@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_lab_self_signed_root_in_root_gives_leaf_and_issuing_ca(family: Family) -> None:
    lab, leaf = default_lab(), _leaf(family)
    fam = family
    p = predict_windows_chain(
        leaf.cert,
        root=[lab.self_signed_root(fam).cert, lab.usertrust(fam).cert],
        ca=[lab.issuing_ca(fam).cert, lab.cross(fam)],
        my=[leaf.cert],
        at=AT,
    )
    assert p.served == (leaf.cert, lab.issuing_ca(fam).cert)
    assert p.built[-1] == lab.self_signed_root(fam).cert
    assert analyze(p.served, at=AT, catalog=lab.catalog).has("SHORT_CHAIN_R46")


@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_lab_fixed_store_serves_the_cross_anchored_at_usertrust(family: Family) -> None:
    lab, leaf = default_lab(), _leaf(family)
    fam = family
    p = predict_windows_chain(
        leaf.cert,
        root=[lab.usertrust(fam).cert, lab.aaa.cert],
        ca=[lab.issuing_ca(fam).cert, lab.cross(fam), lab.usertrust_rsa_cross_aaa],
        my=[leaf.cert],
        at=AT,
    )
    assert p.trusted
    assert p.served == (leaf.cert, lab.issuing_ca(fam).cert, lab.cross(fam))
    assert p.anchor == lab.usertrust(fam).cert
    analysis = analyze(
        p.served, at=AT, catalog=lab.catalog, hostname=f"{family.lower()}.example.test"
    )
    assert analysis.findings == ()


def test_lab_cross_misplaced_in_root_is_an_anchor_and_gives_a_short_chain() -> None:
    lab, leaf = default_lab(), _leaf("RSA")
    p = predict_windows_chain(
        leaf.cert,
        root=[lab.usertrust_rsa.cert, lab.r46_cross],
        ca=[lab.r36.cert],
        at=AT,
    )
    assert p.trusted
    assert p.anchor == lab.r46_cross
    assert p.built == (leaf.cert, lab.r36.cert, lab.r46_cross)
    assert p.served == (leaf.cert, lab.r36.cert)  # the anchor is not sent
    assert "not a root, yet in Root" in p.reason
    assert analyze(p.served, at=AT, catalog=lab.catalog).has("SHORT_CHAIN_R46")


def test_lab_nothing_trusted_serves_what_was_built() -> None:
    lab, leaf = default_lab(), _leaf("RSA")
    p = predict_windows_chain(leaf.cert, root=[], ca=[lab.r36.cert, lab.r46_cross], at=AT)
    assert not p.trusted
    assert p.anchor is None
    assert p.paths == ()
    assert p.served == (leaf.cert, lab.r36.cert, lab.r46_cross)
    assert "USERTrust RSA" in p.reason  # the missing issuer is named
    # a self-signed root found outside Root is built on but never sent
    q = predict_windows_chain(leaf.cert, root=[], ca=[lab.r36.cert, lab.r46_root.cert], at=AT)
    assert not q.trusted
    assert q.built == (leaf.cert, lab.r36.cert, lab.r46_root.cert)
    assert q.served == (leaf.cert, lab.r36.cert)
    # nothing at all: just the leaf
    bare = predict_windows_chain(leaf.cert, root=[lab.usertrust_ecc.cert], ca=[], at=AT)
    assert bare.served == (leaf.cert,)
    assert not bare.trusted


def test_expired_anchor_is_not_trusted() -> None:
    lab, leaf = default_lab(), _leaf("RSA")
    after_2038 = dt.datetime(2039, 1, 1, tzinfo=UTC)  # lab USERTrust RSA and the cross end 2038
    p = predict_windows_chain(
        leaf.cert, root=[lab.usertrust_rsa.cert], ca=[lab.r36.cert, lab.r46_cross], at=after_2038
    )
    assert not p.trusted
    assert "not valid" in p.reason


def test_disallowed_self_signed_root_is_never_used() -> None:
    lab, leaf = default_lab(), _leaf("ECC")
    p = predict_windows_chain(
        leaf.cert,
        root=[lab.e46_root.cert, lab.usertrust_ecc.cert],
        ca=[lab.e36.cert, lab.e46_cross],
        disallowed=[lab.e46_root.cert],
        at=AT,
    )
    assert p.served == (leaf.cert, lab.e36.cert, lab.e46_cross)
    banned_leaf = predict_windows_chain(
        leaf.cert, root=[lab.usertrust_ecc.cert], ca=[lab.e36.cert, lab.e46_cross],
        disallowed=[leaf.cert], at=AT,
    )  # fmt: skip
    assert not banned_leaf.trusted
    assert banned_leaf.served == (leaf.cert,)


def test_intermediates_in_my_are_used_and_order_of_stores_does_not_matter() -> None:
    lab, leaf = default_lab(), _leaf("RSA")
    a = predict_windows_chain(
        leaf.cert,
        root=[lab.usertrust_rsa.cert],
        ca=[],
        my=[leaf.cert, lab.r46_cross, lab.r36.cert],
        at=AT,
    )
    b = predict_windows_chain(
        leaf.cert, root=[lab.usertrust_rsa.cert], ca=[lab.r36.cert, lab.r46_cross], my=[], at=AT
    )
    assert a.served == b.served == (leaf.cert, lab.r36.cert, lab.r46_cross)


def _longest(paths: Sequence[CertPath]) -> CertPath | None:
    return max(paths, key=lambda p: (p.depth, p.sha256s), default=None)


def test_a_swapped_policy_changes_the_answer() -> None:
    lab, leaf = default_lab(), _leaf("RSA")
    root = [lab.r46_root.cert, lab.usertrust_rsa.cert]
    ca = [lab.r36.cert, lab.r46_cross]
    default = predict_windows_chain(leaf.cert, root=root, ca=ca, at=AT)
    longest = predict_windows_chain(leaf.cert, root=root, ca=ca, at=AT, policy=_longest)
    assert default.served == (leaf.cert, lab.r36.cert)
    assert longest.served == (leaf.cert, lab.r36.cert, lab.r46_cross)
    assert "_longest" in longest.reason
    refuse = predict_windows_chain(leaf.cert, root=root, ca=ca, at=AT, policy=lambda paths: None)
    assert not refuse.trusted


def test_prediction_is_pure_and_memoised() -> None:
    lab, leaf = default_lab(), _leaf("RSA")
    root, ca = [lab.usertrust_rsa.cert], [lab.r36.cert, lab.r46_cross]
    first: WindowsChainPrediction = predict_windows_chain(leaf.cert, root=root, ca=ca, at=AT)
    hits = issued_by.cache_info().hits
    second = predict_windows_chain(leaf.cert, root=root, ca=ca, at=AT)
    assert issued_by.cache_info().hits > hits  # signature checks came from the cache
    assert first == second
    assert "served" in str(first)
    assert "trusted" in str(first)
    assert first.served_sha256s == tuple(sha256_hex(c) for c in first.served)


def test_shortest_policy_ties_break_deterministically() -> None:
    lab = default_lab()
    leaf = _leaf("RSA")
    both = [
        CertPath((leaf.cert, lab.r36.cert, lab.r46_root.cert), lab.r46_root.cert),
        CertPath((leaf.cert, lab.r36.cert, lab.r46_cross), lab.r46_cross),
    ]
    # same length: the anchor with the later notAfter (self-signed R46, 2046) wins
    assert shortest_trusted_path(both) == both[0]
    assert shortest_trusted_path(list(reversed(both))) == both[0]
