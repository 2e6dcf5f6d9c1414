"""x509/analyze.py: the decisions and texts that the full mutation run of the module showed
unpinned (issue 20; each test names the decision it pins)."""

from __future__ import annotations

from _lab_certs import AT, YEAR
from _lab_certs import ca as _ca
from _lab_certs import keys as _keys
from _lab_certs import name as _name
from cryptography import x509

from sectigo_chain.testing.lab import LabHierarchy, make_certificate
from sectigo_chain.x509.analyze import analyze
from sectigo_chain.x509.catalog import Catalog
from sectigo_chain.x509.findings import ChainAnalysis, Finding


def _codes(result: ChainAnalysis) -> dict[str, Finding]:
    return {f.code: f for f in result.findings}


def test_a_leaf_sent_alone_gets_the_family_of_the_known_ca_that_signed_it() -> None:
    """The issuing CA is not sent, but the catalog holds it under R46 (found by its signature:
    the leaf has no AKI, and the CA's name is not the one the catalog expects): the finding
    names it, and the family is R46, so the cross-sign advice can follow."""
    ca_key, leaf_key = _keys(2)
    my_ca = _ca("My Issuing CA", ca_key, "Somebody", _keys(1)[0])
    catalog = Catalog.from_certificates({"ca-dv-r36": my_ca})
    leaf = _ca("www.example.test", leaf_key, "My Issuing CA", ca_key, ca=False)
    result = analyze([leaf], at=AT, catalog=catalog)
    assert result.family == "R46"
    assert _codes(result)["INCOMPLETE"].detail == (
        "the issuer of www.example.test (My Issuing CA) is not sent; clients that do not "
        "already hold it fail"
    )


def test_openssl_following_a_sent_impostor_past_the_verified_path_is_tolerated_order() -> None:
    """The issuing CAs are sent in reverse and an impostor of the root (the root's name, another
    key) after them: the verified path ends at the top CA, while OpenSSL, which matches issuers
    by name, follows on to the impostor. Up to the end of the verified path both agree, so the
    order is one that path-searching clients tolerate."""
    root_key, fake_key, ica1_key, ica2_key, leaf_key = _keys(5)
    impostor = _ca("Root", fake_key, "Root", fake_key)
    ica1 = _ca("ICA1", ica1_key, "Root", root_key)
    ica2 = _ca("ICA2", ica2_key, "ICA1", ica1_key)
    leaf = _ca("leaf", leaf_key, "ICA2", ica2_key, ca=False)
    result = analyze([leaf, ica1, ica2, impostor], at=AT)
    assert result.path_names == ("leaf", "ICA2", "ICA1")
    assert _codes(result)["INCORRECT_ORDER"].detail.endswith(
        "; backtracking clients (Android, Java, NSS, Windows, Apple) and OpenSSL 1.0.x-3.x "
        "search every sent certificate and tolerate this order; clients that read the chain "
        "strictly in order (RFC 5246 requires it for TLS 1.2) may not"
    )


def test_an_order_openssl_cannot_follow_names_the_path_it_takes() -> None:
    """Two issuing CAs with one name: the one sent first did not sign the leaf (another key).
    The verified path goes through the other; OpenSSL takes the first by name."""
    root_key, ica_key, other_key, leaf_key = _keys(4)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    wrong = _ca("ICA", other_key, "Root", root_key)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    result = analyze([leaf, root, wrong, ica], at=AT)
    assert _codes(result)["INCORRECT_ORDER"].detail.endswith(
        "; backtracking clients tolerate this order, but OpenSSL-based clients take the first "
        "matching issuer and follow leaf -> ICA -> Root instead"
    )


def _stand_in(lab: LabHierarchy, family: str = "RSA") -> x509.Certificate:
    """A certificate with the subject and key of the lab's R46 (or E46), issued by a foreign
    root: a cross-certificate the catalog does not know."""
    root = lab.self_signed_root(family)  # type: ignore[arg-type]
    return make_certificate(
        subject=root.cert.subject,
        public_key=root.key.public_key(),
        issuer=_name("Foreign Root"),
        issuer_key=_keys(1)[0],
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=True,
    )


def _lab_leaf(lab: LabHierarchy, family: str = "RSA") -> x509.Certificate:
    return lab.issue_leaf(["www.example.test"], family=family, at=AT).cert  # type: ignore[arg-type]


def test_a_second_cross_certificate_beside_the_cross_is_an_extra_not_the_self_signed_root(
    lab: LabHierarchy,
) -> None:
    """The R46 key also cross-signed by a foreign root, sent after the USERTrust cross-sign:
    not self-signed, so it is an extra certificate, never "the self-signed R46"."""
    other = _stand_in(lab)
    result = analyze(
        [_lab_leaf(lab), lab.r36.cert, lab.r46_cross, other], at=AT, catalog=lab.catalog
    )
    codes = _codes(result)
    assert "SELF_SIGNED_R46_SENT" not in codes
    assert codes["EXTRA_CERTS"].detail == (
        "not on the path from the leaf: Sectigo Public Server Authentication Root R46"
    )


def test_a_reissued_self_signed_e46_is_still_the_self_signed_e46(lab: LabHierarchy) -> None:
    e46 = lab.self_signed_root("ECC")
    again = make_certificate(
        subject=e46.cert.subject,
        public_key=e46.key.public_key(),
        issuer=e46.cert.subject,
        issuer_key=e46.key,
        not_before=AT - YEAR,
        not_after=AT + 20 * YEAR,
        ca=True,
    )
    assert lab.catalog.identify(again) is None
    result = analyze([_lab_leaf(lab, "ECC"), lab.e36.cert, again], at=AT, catalog=lab.catalog)
    assert "SELF_SIGNED_R46_SENT" in _codes(result)


def test_without_the_self_signed_r46_in_the_catalog_a_sent_root_is_just_a_root(
    lab: LabHierarchy,
) -> None:
    """The catalog knows R46's key (from its cross-sign) but holds no self-signed R46: the
    self-signed certificate sent is judged as any root (it only adds bytes)."""
    catalog = Catalog.from_certificates(
        {"ca-dv-r36": lab.r36.cert, "r46-cross-usertrust-rsa": lab.r46_cross}
    )
    result = analyze([_lab_leaf(lab), lab.r36.cert, lab.r46_root.cert], at=AT, catalog=catalog)
    codes = _codes(result)
    assert "SELF_SIGNED_R46_SENT" not in codes
    assert "CONTAINS_ANCHOR" in codes


def test_without_the_usertrust_cross_in_the_catalog_another_cross_is_still_reported(
    lab: LabHierarchy,
) -> None:
    catalog = Catalog.from_certificates(
        {"ca-dv-r36": lab.r36.cert, "r46-root-selfsigned": lab.r46_root.cert}
    )
    stand_in = _stand_in(lab)
    result = analyze([_lab_leaf(lab), lab.r36.cert, stand_in], at=AT, catalog=catalog)
    assert result.family == "R46"
    assert _codes(result)["CROSS_SIGN_MISSING"].detail == (
        "the chain reaches R46 through Sectigo Public Server Authentication Root R46 issued by "
        "Foreign Root, not through the R46 cross-sign"
    )


def test_path_names_use_the_catalogs_name_for_a_known_cross_sign(lab: LabHierarchy) -> None:
    result = analyze([_lab_leaf(lab), lab.r36.cert, lab.r46_cross], at=AT, catalog=lab.catalog)
    assert result.path_names == (
        "www.example.test",
        "Sectigo CA DV R36",
        "Sectigo R46 cross-signed by USERTrust RSA",
    )


def test_a_missing_issuer_is_recognised_by_the_leafs_key_identifier() -> None:
    """The leaf's AKI is the SKI of Sectigo's CA OV E36 (known by fingerprint and SKI only,
    no copy shipped), while its issuer name is one the catalog does not know."""
    key = _keys(1)[0]
    leaf = make_certificate(
        subject=_name("www.example.test"),
        public_key=key.public_key(),
        issuer=_name("Renamed CA"),
        issuer_key=key,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=False,
        issuer_ski=bytes.fromhex("4C387A25346BFDF98F1A601C9271AA67F98237EB"),
    )
    result = analyze([leaf], at=AT)
    assert result.family == "E46"
    assert _codes(result)["INCOMPLETE"].detail == (
        "the issuer of www.example.test (Sectigo Public Server Authentication CA OV E36) is not "
        "sent; clients that do not already hold it fail"
    )


def test_a_missing_issuing_ca_known_by_name_is_incomplete_not_a_short_chain(
    lab: LabHierarchy,
) -> None:
    """A lab leaf judged with the real catalog: its issuer (CA DV R36 by name; the lab's key
    and SKI are not the real ones) is an issuing CA, not a root: the chain is incomplete."""
    result = analyze([_lab_leaf(lab)], at=AT)
    codes = _codes(result)
    assert result.family == "R46"
    assert "SHORT_CHAIN_R46" not in codes
    assert codes["INCOMPLETE"].detail == (
        "the issuer of www.example.test (Sectigo Public Server Authentication CA DV R36) is not "
        "sent; clients that do not already hold it fail"
    )


def test_a_certificate_issued_by_a_known_root_needs_nothing_more() -> None:
    """Issued by AAA Certificate Services (by name; not its key): a root that clients hold,
    so neither an incomplete chain nor an unknown issuer."""
    key = _keys(1)[0]
    cert = make_certificate(
        subject=_name("Some CA"),
        public_key=key.public_key(),
        issuer=x509.Name.from_rfc4514_string(
            "CN=AAA Certificate Services,O=Comodo CA Limited,L=Salford,ST=Greater Manchester,C=GB"
        ),
        issuer_key=key,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=True,
    )
    codes = _codes(analyze([cert], at=AT))
    assert "INCOMPLETE" not in codes
    assert "UNKNOWN_ISSUER" not in codes


def test_two_cas_that_issued_each_other_sent_alone_start_at_the_first() -> None:
    a_key, b_key = _keys(2)
    a_by_b = _ca("A", a_key, "B", b_key)
    b_by_a = _ca("B", b_key, "A", a_key)
    result = analyze([a_by_b, b_by_a], at=AT)
    assert result.path_names == ("A", "B")


def test_of_two_paths_of_one_length_the_one_valid_now_is_the_path() -> None:
    root_key, ica_key, leaf_key = _keys(3)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    expired = make_certificate(
        subject=_name("ICA"),
        public_key=ica_key.public_key(),
        issuer=_name("Root"),
        issuer_key=root_key,
        not_before=AT - 3 * YEAR,
        not_after=AT - YEAR,
        ca=True,
    )
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    result = analyze([leaf, expired, ica, root], at=AT)
    assert result.path_names == ("leaf", "ICA", "Root")
    assert result.path[1] != result.served[1]  # the copy sent second is not on the path
    assert "EXPIRED_SENT" in _codes(result)
    assert _codes(result)["EXPIRED_SENT"].severity == "warning"  # not on the path


def test_the_family_comes_from_the_issuing_cas_entry_when_no_root_is_known(
    lab: LabHierarchy,
) -> None:
    """The catalog holds only CA DV R36 (no root, no cross): the R36 on the path still says
    the chain belongs to R46."""
    only_r36 = Catalog.from_certificates({"ca-dv-r36": lab.r36.cert})
    result = analyze([_lab_leaf(lab), lab.r36.cert], at=AT, catalog=only_r36)
    assert result.family == "R46"


def test_a_self_signed_certificate_sent_alone_is_not_a_sent_root() -> None:
    key = _keys(1)[0]
    alone = _ca("self.example.test", key, "self.example.test", key, ca=False)
    codes = _codes(analyze([alone], at=AT))
    assert "CONTAINS_ANCHOR" not in codes
    assert "SELF_SIGNED_R46_SENT" not in codes


def test_top_findings_say_what_is_wrong_and_name_the_certificate(lab: LabHierarchy) -> None:
    from sectigo_chain.x509.findings import fingerprint

    root_key, ica_key, leaf_key = _keys(3)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    anchor = _codes(analyze([leaf, ica, root], at=AT))["CONTAINS_ANCHOR"]
    assert anchor.detail == (
        "the root Root is sent; clients use their own copy, so it only adds bytes (Windows/IIS "
        "does not send it when it is in Root)"
    )
    assert anchor.certificates == (fingerprint(root),)
    unknown = _codes(analyze([leaf, ica], at=AT))["UNKNOWN_ISSUER"]
    assert unknown.detail == (
        "ICA is issued by Root, which is not a known Sectigo CA; whether it is a root the "
        "clients hold cannot be judged here"
    )
    assert unknown.certificates == (fingerprint(ica),)
    lab_leaf = _lab_leaf(lab)
    r46 = lab.r46_root.cert
    sent_root = _codes(analyze([lab_leaf, lab.r36.cert, r46], at=AT, catalog=lab.catalog))
    assert sent_root["SELF_SIGNED_R46_SENT"].certificates == (fingerprint(r46),)
    short = _codes(analyze([lab_leaf, lab.r36.cert], at=AT, catalog=lab.catalog))
    assert short["SHORT_CHAIN_R46"].certificates == (fingerprint(lab.r36.cert),)


def test_the_served_path_search_stops_after_2000_partial_paths() -> None:
    """Ten CA names, each sent twice: an expired copy, then a valid one (same name and key).
    The search goes depth first, first-sent copy first, so the path through every valid copy
    is the last of 2047 partial paths, past the 2000 the search explores. The best path it
    found has one expired copy: the first level's (the one closest to the wire order)."""
    *ca_keys, leaf_key = _keys(11)
    served: list[x509.Certificate] = []
    issuer, issuer_key = "Top", _keys(1)[0]
    for level in range(10, 0, -1):  # top level first
        key = ca_keys[level - 1]
        expired = make_certificate(
            subject=_name(f"L{level}"),
            public_key=key.public_key(),
            issuer=_name(issuer),
            issuer_key=issuer_key,
            not_before=AT - 3 * YEAR,
            not_after=AT - YEAR,
            ca=True,
        )
        valid = _ca(f"L{level}", key, issuer, issuer_key)
        served[:0] = [expired, valid]  # lower levels are sent first
        issuer, issuer_key = f"L{level}", key
    leaf = _ca("leaf", leaf_key, "L1", ca_keys[0], ca=False)
    result = analyze([leaf, *served], at=AT)
    assert len(result.path) == 11
    expected = (served[0], *served[3::2])  # L1's expired copy, then every valid one
    from sectigo_chain.x509.findings import fingerprint

    assert result.path[1:] == tuple(fingerprint(c) for c in expected)


def test_a_cross_sign_stand_in_is_named_with_the_cross_sign_to_serve_instead(
    lab: LabHierarchy,
) -> None:
    from sectigo_chain.x509.findings import fingerprint

    stand_in = _stand_in(lab)
    result = analyze([_lab_leaf(lab), lab.r36.cert, stand_in], at=AT, catalog=lab.catalog)
    missing = _codes(result)["CROSS_SIGN_MISSING"]
    assert missing.detail == (
        "the chain reaches R46 through Sectigo Public Server Authentication Root R46 issued by "
        "Foreign Root, not through Sectigo R46 cross-signed by USERTrust RSA"
    )
    assert missing.certificates == (fingerprint(stand_in),)


def test_extra_certificate_findings_name_every_certificate_they_are_about(
    lab: LabHierarchy,
) -> None:
    from sectigo_chain.x509.findings import fingerprint

    leaf, r36, r46 = _lab_leaf(lab), lab.r36.cert, lab.r46_root.cert
    for served in ([leaf, r36, r46, lab.r46_cross], [leaf, r36, lab.r46_cross, r46]):
        result = analyze(served, at=AT, catalog=lab.catalog)
        assert _codes(result)["SELF_SIGNED_R46_SENT"].certificates == (fingerprint(r46),)
    root_key, ica_key, leaf_key = _keys(3)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    plain_leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)
    one, two = (_ca(cn, k, cn, k) for cn, k in (("One", _keys(1)[0]), ("Two", _keys(1)[0])))
    extra = _codes(analyze([plain_leaf, ica, root, one, two], at=AT))["EXTRA_CERTS"]
    assert extra.detail == "not on the path from the leaf: One, Two"
    assert extra.certificates == (fingerprint(one), fingerprint(two))


def test_nothing_served_is_an_empty_incomplete_analysis() -> None:
    result = analyze([], at=AT)
    assert (result.served, result.path, result.path_names, result.family) == ((), (), (), None)
    ((code, detail),) = [(f.code, f.detail) for f in result.findings]
    assert (code, detail) == ("INCOMPLETE", "no certificate was served")


def test_validity_findings_name_the_certificate() -> None:
    from sectigo_chain.x509.findings import fingerprint

    root_key, ica_key, leaf_key = _keys(3)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    later = make_certificate(
        subject=_name("leaf"),
        public_key=leaf_key.public_key(),
        issuer=_name("ICA"),
        issuer_key=ica_key,
        not_before=AT + YEAR,
        not_after=AT + 2 * YEAR,
        ca=False,
    )
    early = _codes(analyze([later, ica, root], at=AT))["NOT_YET_VALID"]
    assert early.certificates == (fingerprint(later),)


def test_chain_wide_findings_say_what_and_name_their_certificates() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from sectigo_chain.x509.findings import fingerprint

    root_key, ica_key, leaf_key = _keys(3)
    root = _ca("Root", root_key, "Root", root_key)
    ica = _ca("ICA", ica_key, "Root", root_key)
    leaf = make_certificate(
        subject=_name("leaf"),
        public_key=leaf_key.public_key(),
        issuer=_name("ICA"),
        issuer_key=ica_key,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=False,
        dns_names=["a.example.test", "b.example.test"],
    )
    twice = _codes(analyze([leaf, ica, ica, root, root], at=AT))["DUPLICATE"]
    assert twice.detail == "sent more than once: ICA, Root"
    assert twice.certificates == (fingerprint(ica), fingerprint(root))
    order = _codes(analyze([leaf, root, ica], at=AT))["INCORRECT_ORDER"]
    assert order.certificates == (fingerprint(leaf), fingerprint(ica), fingerprint(root))
    host = _codes(analyze([leaf, ica, root], at=AT, hostname="c.example.test"))
    assert host["HOSTNAME_MISMATCH"].detail == (
        "leaf covers a.example.test, b.example.test, not c.example.test"
    )
    assert host["HOSTNAME_MISMATCH"].certificates == (fingerprint(leaf),)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak = make_certificate(
        subject=_name("weak"),
        public_key=small.public_key(),
        issuer=_name("ICA"),
        issuer_key=ica_key,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=False,
    )
    found = _codes(analyze([weak, ica, root], at=AT))["WEAK_SIGNATURE"]
    assert found.certificates == (fingerprint(weak),)


def _search_of(total: int) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """Served certificates whose depth-first search has exactly ``total`` partial paths (2000
    or 2001), the last one the path through every valid copy. Nine CA names, each sent as an
    expired copy, then expired copies that end there (issued by a name nobody sent), then a
    valid copy (same name and key); a copy that ends at level j adds one partial path per path
    up to level j-1 (2**(j-1)). Returns (served, the valid copies, bottom first)."""
    dead_ends = {9: 3, 8: 1, 7: 1, 5: 1, 1: 1 + (total - 2000)}  # 1023 + 977 (+1)
    *keys, leaf_key = _keys(10)
    levels: list[list[x509.Certificate]] = []
    valid_copies: list[x509.Certificate] = []
    issuer, issuer_key = "Top", _keys(1)[0]
    for level in range(9, 0, -1):  # top level first
        key, name = keys[level - 1], _name(f"L{level}")
        copies = [
            make_certificate(
                subject=name,
                public_key=key.public_key(),
                issuer=_name(issuer),
                issuer_key=issuer_key,
                not_before=AT - 3 * YEAR,
                not_after=AT - YEAR,
                ca=True,
            )
        ]
        for n in range(dead_ends.get(level, 0)):  # expired too: never the best path
            copies.append(
                make_certificate(
                    subject=name,
                    public_key=key.public_key(),
                    issuer=_name(f"Nowhere {level}.{n}"),
                    issuer_key=_keys(1)[0],
                    not_before=AT - 3 * YEAR,
                    not_after=AT - YEAR,
                    ca=True,
                )
            )
        copies.append(_ca(f"L{level}", key, issuer, issuer_key))
        valid_copies.insert(0, copies[-1])
        levels.insert(0, copies)
        issuer, issuer_key = f"L{level}", key
    leaf = _ca("leaf", leaf_key, "L1", keys[0], ca=False)
    return [leaf, *(c for copies in levels for c in copies)], valid_copies


def test_the_served_path_search_explores_exactly_2000_partial_paths() -> None:
    from sectigo_chain.x509.findings import fingerprint

    served, valid = _search_of(2000)  # the 2000th partial path is the all-valid one: found
    assert analyze(served, at=AT).path[1:] == tuple(fingerprint(c) for c in valid)
    served, valid = _search_of(2001)  # the 2001st: not explored
    path = analyze(served, at=AT).path
    assert len(path) == 10
    assert path[1:] != tuple(fingerprint(c) for c in valid)
