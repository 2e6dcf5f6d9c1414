"""chain.build_paths: every path on the real Sectigo certificates; loops, depth, constraints."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from sectigo_chain.testing.lab import default_lab, make_certificate, new_key
from sectigo_chain.x509.catalog import default_catalog
from sectigo_chain.x509.paths import CertPath, build_paths, shortest_trusted_path

UTC = dt.timezone.utc
DER, SPKI = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
AT = dt.datetime(2026, 6, 1, tzinfo=UTC)

# The chains of shared/sectigo/MANIFEST.md, "How the chains fit": each was checked there with
# signature links in Python and `openssl verify -x509_strict` (independent of this code).
MANIFEST_CHAINS = [
    ("ca-dv-r36", "r46-root-selfsigned"),
    ("ca-dv-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-root-selfsigned"),
    ("ca-dv-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-cross-aaa",
     "aaa-certificate-services-root"),
    ("ca-ov-r36", "r46-root-selfsigned"),
    ("ca-ov-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-root-selfsigned"),
    ("ca-ov-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-cross-aaa",
     "aaa-certificate-services-root"),
    ("ca-ev-r36", "r46-root-selfsigned"),
    ("ca-ev-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-root-selfsigned"),
    ("ca-ev-r36", "r46-cross-usertrust-rsa", "usertrust-rsa-cross-aaa",
     "aaa-certificate-services-root"),
    ("ca-dv-e36", "e46-root-selfsigned"),
    ("ca-dv-e36", "e46-cross-usertrust-ecc", "usertrust-ecc-root-selfsigned"),
    ("ca-dv-e36", "e46-cross-usertrust-ecc", "usertrust-ecc-cross-aaa",
     "aaa-certificate-services-root"),
    ("ca-dv-e36", "e46-cross-aaa", "aaa-certificate-services-root"),
    ("sectigo-rsa-dv-secure-server-ca", "usertrust-rsa-root-selfsigned"),
    ("sectigo-rsa-dv-secure-server-ca", "usertrust-rsa-cross-aaa",
     "aaa-certificate-services-root"),
]  # fmt: skip
SELF_SIGNED = [
    "r46-root-selfsigned",
    "e46-root-selfsigned",
    "usertrust-rsa-root-selfsigned",
    "usertrust-ecc-root-selfsigned",
    "aaa-certificate-services-root",
]


def _ids(path: CertPath) -> tuple[str, ...]:
    cat = default_catalog()
    out = []
    for cert in path.certificates:
        entry = cat.identify(cert)
        assert entry is not None
        out.append(entry.id)
    return tuple(out)


def _real(cid: str) -> x509.Certificate:
    return default_catalog().certificate(cid)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.mark.parametrize("chain", MANIFEST_CHAINS, ids=lambda c: "->".join(c))
def test_each_manifest_chain_is_found_with_its_anchor(chain: tuple[str, ...]) -> None:
    pool = default_catalog().certificates()
    paths = build_paths(_real(chain[0]), pool, [_real(chain[-1])], at=AT)
    assert chain in [_ids(p) for p in paths]
    found = next(p for p in paths if _ids(p) == chain)
    assert found.anchor == _real(chain[-1])
    assert found.certificates[-1] is found.anchor
    assert found.depth == len(chain)


@pytest.mark.parametrize(
    "start", ["ca-dv-r36", "ca-ov-r36", "ca-ev-r36", "ca-dv-e36", "sectigo-rsa-dv-secure-server-ca"]
)
def test_all_self_signed_roots_as_anchors_give_exactly_the_manifest_paths(start: str) -> None:
    pool = default_catalog().certificates()
    anchors = [_real(c) for c in SELF_SIGNED]
    paths = build_paths(_real(start), pool, anchors, at=AT)
    expected = {c for c in MANIFEST_CHAINS if c[0] == start}
    assert {_ids(p) for p in paths} == expected
    depths = [p.depth for p in paths]
    assert depths == sorted(depths)  # shortest first


def test_result_is_deterministic_whatever_the_pool_order() -> None:
    pool = default_catalog().certificates()
    anchors = [_real(c) for c in SELF_SIGNED]
    first = build_paths(_real("ca-dv-e36"), pool, anchors, at=AT)
    shuffled = list(pool)
    random.Random(7).shuffle(shuffled)
    again = build_paths(_real("ca-dv-e36"), shuffled, list(reversed(anchors)), at=AT)
    assert [p.sha256s for p in first] == [p.sha256s for p in again]
    # the two 3-certificate E46 paths tie on length; order among them is by SHA-256
    threes = [p.sha256s for p in first if p.depth == 3]
    assert threes == sorted(threes)
    assert len(threes) == 2


def test_time_filter_drops_expired_and_not_yet_valid_issuers() -> None:
    pool = default_catalog().certificates()
    anchors = [_real(c) for c in SELF_SIGNED]
    after_aaa = dt.datetime(2029, 6, 1, tzinfo=UTC)  # AAA and its crosses end 2028-12-31
    ids = {_ids(p) for p in build_paths(_real("ca-dv-e36"), pool, anchors, at=after_aaa)}
    assert ids == {
        ("ca-dv-e36", "e46-root-selfsigned"),
        ("ca-dv-e36", "e46-cross-usertrust-ecc", "usertrust-ecc-root-selfsigned"),
    }
    before_r46 = dt.datetime(2020, 1, 1, tzinfo=UTC)  # R46 and its crosses start 2021-03-22
    assert build_paths(_real("ca-dv-r36"), pool, anchors, at=before_r46) == []
    # without a time, every structural path counts (naive times are taken as UTC)
    assert len(build_paths(_real("ca-dv-e36"), pool, anchors)) == 4
    naive = build_paths(_real("ca-dv-e36"), pool, anchors, at=dt.datetime(2029, 6, 1))
    assert {_ids(p) for p in naive} == ids


def test_depth_bound() -> None:
    pool = default_catalog().certificates()
    anchors = [_real(c) for c in SELF_SIGNED]
    r36 = _real("ca-dv-r36")
    assert [_ids(p) for p in build_paths(r36, pool, anchors, max_depth=2, at=AT)] == [
        ("ca-dv-r36", "r46-root-selfsigned")
    ]
    assert len(build_paths(r36, pool, anchors, max_depth=3, at=AT)) == 2
    assert build_paths(r36, pool, anchors, max_depth=1, at=AT) == []
    with pytest.raises(ValueError, match="max_depth"):
        build_paths(r36, pool, anchors, max_depth=0)


def test_anchor_matched_by_subject_and_key() -> None:
    cross = _real("r46-cross-usertrust-rsa")
    selfsigned = _real("r46-root-selfsigned")
    # the cross itself has R46's subject and key: it is anchored by the self-signed R46
    (only,) = build_paths(cross, [], [selfsigned])
    assert only.certificates == (cross,)
    assert only.anchor == selfsigned
    # a pool certificate equal to an anchor is not counted twice
    paths = build_paths(_real("ca-dv-r36"), [selfsigned, cross], [selfsigned], at=AT)
    assert [_ids(p) for p in paths] == [("ca-dv-r36", "r46-root-selfsigned")]
    # the leaf itself in the anchors
    (itself,) = build_paths(selfsigned, [], [selfsigned])
    assert itself.certificates == (selfsigned,)
    assert itself.anchor == selfsigned


def test_no_anchor_no_path_and_untrusted_pool_paths_are_not_returned() -> None:
    pool = default_catalog().certificates()
    assert build_paths(_real("ca-dv-r36"), pool, []) == []
    assert shortest_trusted_path([]) is None


def test_lab_leaf_paths_verify_signatures() -> None:
    lab = default_lab()
    leaf = lab.issue_leaf(
        ["paths.example.test"],
        not_before=dt.datetime(2026, 1, 1, tzinfo=UTC),
        not_after=dt.datetime(2027, 1, 1, tzinfo=UTC),
    )
    pool = [lab.r36.cert, lab.r46_cross, lab.e36.cert, lab.e46_cross]
    anchors = [lab.r46_root.cert, lab.usertrust_rsa.cert, lab.usertrust_ecc.cert]
    paths = build_paths(leaf.cert, pool, anchors, at=AT)
    assert [p.certificates for p in paths] == [
        (leaf.cert, lab.r36.cert, lab.r46_root.cert),
        (leaf.cert, lab.r36.cert, lab.r46_cross, lab.usertrust_rsa.cert),
    ]
    # a forgery with the right names and AKI but another key is never linked
    forged = make_certificate(
        subject=_name("forged.example.test"),
        public_key=new_key("ECC").public_key(),
        issuer=lab.r36.cert.subject,
        issuer_key=new_key("ECC"),
        not_before=dt.datetime(2026, 1, 1, tzinfo=UTC),
        not_after=dt.datetime(2027, 1, 1, tzinfo=UTC),
        ca=False,
        issuer_ski=lab.r36.cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest,
    )
    assert build_paths(forged, pool, anchors, at=AT) == []


def test_path_length_and_ca_constraints_are_enforced() -> None:
    lab = default_lab()
    t0, t1 = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)
    sub_key = new_key("ECC")
    sub = make_certificate(  # a CA under R36, whose pathLen is 0: may not issue this
        subject=_name("Sub CA under R36"), public_key=sub_key.public_key(),
        issuer=lab.r36.cert.subject, issuer_key=lab.r36.key,
        not_before=t0, not_after=t1, ca=True,
    )  # fmt: skip
    leaf_key = new_key("ECC")
    leaf = make_certificate(
        subject=_name("leaf.example.test"), public_key=leaf_key.public_key(),
        issuer=sub.subject, issuer_key=sub_key, not_before=t0, not_after=t1, ca=False,
    )  # fmt: skip
    pool = [sub, lab.r36.cert]
    assert build_paths(leaf, pool, [lab.r46_root.cert], at=AT) == []
    # the sub-CA itself chains fine (R36's limit counts CAs below it, and none is)
    assert len(build_paths(sub, [lab.r36.cert], [lab.r46_root.cert], at=AT)) == 1
    # an end-entity certificate cannot issue
    child = make_certificate(
        subject=_name("child"), public_key=new_key("ECC").public_key(),
        issuer=leaf.subject, issuer_key=leaf_key, not_before=t0, not_after=t1, ca=False,
    )  # fmt: skip
    assert build_paths(child, [leaf], [leaf], at=AT) == []


def test_cross_signing_loop_terminates() -> None:
    """A and B cross-sign each other (two certificates each); C anchors B."""
    t0, t1 = dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2030, 1, 1, tzinfo=UTC)
    ka, kb, kc = new_key("ECC"), new_key("ECC"), new_key("ECC")
    a, b, c = _name("Loop CA A"), _name("Loop CA B"), _name("Loop Root C")

    def ca(
        subject: x509.Name, key: object, issuer: x509.Name, issuer_key: object
    ) -> x509.Certificate:
        return make_certificate(
            subject=subject, public_key=key, issuer=issuer, issuer_key=issuer_key,  # type: ignore[arg-type]
            not_before=t0, not_after=t1, ca=True,
        )  # fmt: skip

    a_by_b = ca(a, ka.public_key(), b, kb)
    b_by_a = ca(b, kb.public_key(), a, ka)
    a_self = ca(a, ka.public_key(), a, ka)
    b_self = ca(b, kb.public_key(), b, kb)
    b_by_c = ca(b, kb.public_key(), c, kc)
    root_c = ca(c, kc.public_key(), c, kc)
    leaf = make_certificate(
        subject=_name("loop.example.test"), public_key=new_key("ECC").public_key(),
        issuer=a, issuer_key=ka, not_before=t0, not_after=t1, ca=False,
    )  # fmt: skip
    pool = [a_by_b, b_by_a, a_self, b_self, b_by_c]
    assert build_paths(leaf, pool, [], at=AT) == []  # terminates, nothing trusted
    paths = build_paths(leaf, pool, [root_c], at=AT)
    assert [p.certificates for p in paths] == [(leaf, a_by_b, b_by_c, root_c)]
    # names allow A -> B -> A -> ...; a key never appears twice in a path
    many = build_paths(leaf, pool, [root_c, a_self, b_self], at=AT, max_depth=8)
    for path in many:
        keys = [c.public_key().public_bytes(DER, SPKI) for c in path.certificates]
        assert len(set(keys)) == path.depth
    assert [p.depth for p in many] == [2, 3, 4]


def test_long_chain_is_cut_by_max_depth() -> None:
    t0, t1 = dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2030, 1, 1, tzinfo=UTC)
    keys = [new_key("ECC") for _ in range(12)]
    names = [_name(f"Level {i}") for i in range(12)]
    certs = [
        make_certificate(
            subject=names[i], public_key=keys[i].public_key(),
            issuer=names[i + 1] if i < 11 else names[i],
            issuer_key=keys[i + 1] if i < 11 else keys[i],
            not_before=t0, not_after=t1, ca=i > 0,
        )
        for i in range(12)
    ]  # fmt: skip
    leaf, pool, root = certs[0], certs[1:11], certs[11]
    assert build_paths(leaf, pool, [root], at=AT) == []  # 12 certificates > default 8
    (found,) = build_paths(leaf, pool, [root], at=AT, max_depth=12)
    assert found.certificates == tuple(certs)
    assert str(found).startswith("Level 0 -> Level 1")
