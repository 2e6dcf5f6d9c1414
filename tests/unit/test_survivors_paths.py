"""x509/paths.py: the decisions and texts that the full mutation run of the module showed
unpinned (issue 20; each test names the decision it pins)."""

from __future__ import annotations

import datetime as dt

import pytest
from _lab_certs import AT, YEAR, Key
from _lab_certs import ca as _ca
from _lab_certs import keys as _keys
from _lab_certs import name as _name
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sectigo_chain.testing.lab import make_certificate
from sectigo_chain.x509.paths import build_paths, competing_paths, predict_windows_chain


def _ladder(cas: int) -> tuple[x509.Certificate, list[x509.Certificate], x509.Certificate]:
    """(root, the CAs below it top first, the leaf): ``cas + 2`` certificates in a row."""
    root_key, *ca_keys, leaf_key = _keys(cas + 2)
    root = _ca("Root", root_key, "Root", root_key)
    chain, issuer, issuer_key = [], "Root", root_key
    for i, key in enumerate(ca_keys):
        chain.append(_ca(f"CA{i}", key, issuer, issuer_key))
        issuer, issuer_key = f"CA{i}", key
    return root, chain, _ca("leaf", leaf_key, issuer, issuer_key, ca=False)


def test_paths_hold_at_most_eight_certificates_by_default() -> None:
    root, cas, leaf = _ladder(6)  # 8 certificates with the root
    assert [p.depth for p in build_paths(leaf, cas, [root])] == [8]
    assert predict_windows_chain(leaf, root=[root], ca=cas, at=AT).trusted is True
    root, cas, leaf = _ladder(7)  # 9
    assert build_paths(leaf, cas, [root]) == []
    too_deep = predict_windows_chain(leaf, root=[root], ca=cas, at=AT)
    assert too_deep.trusted is False
    assert len(too_deep.built) == 8


def test_max_depth_below_one_is_refused_with_the_reason() -> None:
    root, cas, leaf = _ladder(1)
    with pytest.raises(ValueError, match=r"^max_depth must be at least 1$"):
        build_paths(leaf, cas, [root], max_depth=0)


def _without_basic_constraints(cn: str, key: Key, issuer: str, issuer_key: Key) -> x509.Certificate:
    """A CA certificate as version 1 certificates were: no basicConstraints extension."""
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(AT - YEAR)
        .not_valid_after(AT + YEAR)
        .sign(issuer_key, hashes.SHA256())
    )


def test_an_issuer_without_basic_constraints_may_issue() -> None:
    root_key, ica_key, leaf_key = _keys(3)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _without_basic_constraints("ICA", ica_key, "Root", root_key)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    assert [p.certificates for p in build_paths(leaf, [ica], [root])] == [(leaf, ica, root)]


def test_the_partial_chain_never_takes_a_key_twice_in_a_cross_signing_loop() -> None:
    """Two CAs that cross-signed each other and no trusted root: the partial chain stops when
    the next issuer's key is already on it, instead of going round to max_depth."""
    a_key, b_key, leaf_key = _keys(3)
    a_by_b = _ca("A", a_key, "B", b_key)
    b_by_a = _ca("B", b_key, "A", a_key)
    leaf = _ca("leaf", leaf_key, "A", a_key, ca=False)
    prediction = predict_windows_chain(leaf, root=[], ca=[a_by_b, b_by_a], at=AT)
    assert prediction.built == (leaf, a_by_b, b_by_a)
    assert prediction.reason == (
        "no trusted path: the issuer of B (A) is in no store; Windows serves what it built"
    )


def test_the_partial_chain_skips_a_same_name_certificate_that_did_not_sign() -> None:
    ica_key, other_key, leaf_key, root_key = _keys(4)
    impostor = _ca("ICA", other_key, "Root", root_key)  # the issuer's name, another key
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    prediction = predict_windows_chain(leaf, root=[], ca=[impostor], at=AT)
    assert prediction.built == (leaf,)


def test_the_partial_chain_takes_the_copy_of_an_issuer_that_expires_last() -> None:
    root_key, ica_key, leaf_key = _keys(3)
    sooner = _ca("ICA", ica_key, "Root", root_key, AT - YEAR, AT + YEAR)
    later = _ca("ICA", ica_key, "Root", root_key, AT - YEAR, AT + 3 * YEAR)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    for ca in ([sooner, later], [later, sooner]):
        assert predict_windows_chain(leaf, root=[], ca=ca, at=AT).built == (leaf, later)


def test_an_untrusted_self_signed_leaf_is_still_served() -> None:
    key = _keys(1)[0]
    leaf = _ca("leaf", key, "leaf", key, ca=False)
    prediction = predict_windows_chain(leaf, root=[], ca=[], at=AT)
    assert prediction.trusted is False
    assert prediction.built == prediction.served == (leaf,)
    assert "the chain ends at the self-signed leaf, which is not in Root" in prediction.reason


def test_a_disallowed_leaf_is_untrusted_not_unknown() -> None:
    root, cas, leaf = _ladder(1)
    prediction = predict_windows_chain(leaf, root=[root], ca=cas, at=AT, disallowed=[leaf])
    assert prediction.trusted is False


def test_the_reason_names_a_cross_certificate_in_root_and_counts_every_path() -> None:
    """Two anchors: the root and a cross-certificate of its key in Root. The reason names the
    anchor chosen with what is odd about it, counts both paths and gives the others' lengths."""
    root_key, other_key, ica_key, leaf_key = _keys(4)
    root = _ca("Root", root_key, "Root", root_key)
    other = _ca("Other", other_key, "Other", other_key)
    cross = _ca("Root", root_key, "Other", other_key, AT - YEAR, AT + 2 * YEAR)
    ica = _ca("ICA", ica_key, "Root", root_key)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    prediction = predict_windows_chain(leaf, root=[cross, other], ca=[ica], at=AT)
    assert prediction.reason == (
        "1 trusted path; shortest_trusted_path chose 3 certificates anchored at Root (issued "
        "by Other: not a root, yet in Root), which is not sent"
    )
    two = predict_windows_chain(leaf, root=[root, cross], ca=[ica], at=AT)
    assert two.reason.startswith("2 trusted paths; shortest_trusted_path chose 3 certificates")
    longer = predict_windows_chain(leaf, root=[root, other], ca=[ica, cross], at=AT)
    assert [p.depth for p in longer.paths] == [3, 4]
    assert longer.reason.startswith("2 trusted paths; shortest_trusted_path chose 3 ")
    assert longer.reason.endswith(", which is not sent (other paths: 4 certificates)")


def test_the_reason_lists_the_lengths_of_every_other_path() -> None:
    root_key, other_key, third_key, ica_key, leaf_key = _keys(5)
    root = _ca("Root", root_key, "Root", root_key)
    other = _ca("Other", other_key, "Other", other_key)
    third = _ca("Third", third_key, "Third", third_key)
    by_other = _ca("Root", root_key, "Other", other_key)
    by_third = _ca("Root", root_key, "Third", third_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    prediction = predict_windows_chain(
        leaf, root=[root, other, third], ca=[ica, by_other, by_third], at=AT
    )
    assert prediction.reason.startswith("3 trusted paths; ")
    assert prediction.reason.endswith(" (other paths: 4, 4 certificates)")


def test_a_tie_broken_by_the_tie_rule_is_said_after_the_rest_of_the_reason() -> None:
    root_key, ica_key, leaf_key = _keys(3)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key, AT - YEAR, AT + YEAR)
    ica_b = _ca("ICA", ica_key, "Root", root_key, AT - 2 * YEAR, AT + 2 * YEAR)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    prediction = predict_windows_chain(leaf, root=[root], ca=[ica, ica_b], at=AT)
    assert prediction.reason.startswith("2 trusted paths; shortest_trusted_path chose 3 ")
    assert prediction.reason.endswith(
        "(other paths: 3 certificates); a tie between paths of that length was broken by the "
        "tie rule"
    )


def test_a_competing_path_names_each_certificate_it_differs_by() -> None:
    root_key, ica_key, sub_key, leaf_key = _keys(4)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key, AT - YEAR, AT + YEAR)
    sub = _ca("Sub", sub_key, "ICA", ica_key, AT - YEAR, AT + YEAR)
    # another copy of both CAs (same names and keys, issued earlier): a path of the same length
    ica_b = _ca("ICA", ica_key, "Root", root_key, AT - 2 * YEAR, AT + YEAR)
    sub_b = _ca("Sub", sub_key, "ICA", ica_key, AT - 2 * YEAR, AT + YEAR)
    leaf = _ca("leaf", leaf_key, "Sub", sub_key, ca=False)
    found = competing_paths(leaf, root=[root], ca=[ica, sub, ica_b, sub_b], at=AT)
    both = [c for c in found if len(c.differing) == 2]
    assert both
    assert str(both[0]).startswith(
        "a path of the same length through Sub (issued 2024-06-01, by ICA), ICA (issued "
        "2024-06-01, by Root) competes"
    )


def test_a_pool_cert_with_an_anchors_key_ends_the_path_at_the_anchor() -> None:
    """The root in Root allows no CA below it (path length 0); a cross-certificate of the same
    key in CA allows one. As documented, a pool certificate with an anchor's subject and key
    also ends a path there: the path ends with the anchor."""
    root_key, other_key, ica_key, leaf_key = _keys(4)
    root = make_certificate(
        subject=_name("Root"),
        public_key=root_key.public_key(),
        issuer=_name("Root"),
        issuer_key=root_key,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=True,
        path_length=0,
    )
    cross = _ca("Root", root_key, "Other", other_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    assert build_paths(leaf, [ica], [root]) == []
    (path,) = build_paths(leaf, [ica, cross], [root])
    assert path.certificates == (leaf, ica, root)
    assert path.anchor is root


def _mesh(
    first: int, levels: int
) -> tuple[x509.Certificate, list[x509.Certificate], x509.Certificate]:
    """A leaf under ``levels`` CA names; the first has ``first`` certificates, every other two
    (same name and key, other dates), so the partial paths double at each level; the top
    level is issued by an anchor. Returns (leaf, pool, anchor)."""
    keys = _keys(levels + 2)
    anchor = _ca("Anchor", keys[0], "Anchor", keys[0])
    pool: list[x509.Certificate] = []
    issuer = "Anchor"
    for level in range(levels, 0, -1):  # top first
        copies = first if level == 1 else 2
        for copy in range(copies):
            nb = AT - YEAR - dt.timedelta(days=copy)
            pool.append(
                _ca(f"L{level}", keys[level], issuer, keys[level + 1 if level < levels else 0], nb)
            )
        issuer = f"L{level}"
    leaf = _ca("leaf", keys[-1], "L1", keys[1], ca=False)
    return leaf, pool, anchor


def test_the_search_stops_after_max_partial_paths() -> None:
    """MAX_PARTIAL_PATHS (4096) partial paths are explored, level by level: a level starts only
    while fewer have been explored. Twelve levels of two copies: 4095 partial paths before the
    last level, so its 4096 paths to the anchor are found. One level of one copy, then twelve
    of two: 4096 explored before the last level, which is not explored: no path."""
    from sectigo_chain.x509.paths import MAX_PARTIAL_PATHS

    assert MAX_PARTIAL_PATHS == 4096
    leaf, pool, anchor = _mesh(2, 12)
    found = build_paths(leaf, pool, [anchor], max_depth=20)
    assert len(found) == 4096
    assert {p.depth for p in found} == {14}
    leaf, pool, anchor = _mesh(1, 13)
    assert build_paths(leaf, pool, [anchor], max_depth=20) == []
