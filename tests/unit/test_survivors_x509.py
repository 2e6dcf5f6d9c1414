"""Tests that kill mutants of x509/paths.py, x509/analyze.py and x509/catalog.py that the rest
of the suite let live (issue 20; each test names the decision it pins)."""

from __future__ import annotations

import datetime as dt

from _lab_certs import AT, YEAR
from _lab_certs import ca as _ca
from _lab_certs import name as _name
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_chain.testing.lab import make_certificate, new_key
from sectigo_chain.x509.analyze import _weakness, analyze
from sectigo_chain.x509.catalog import cross_sign_for, default_catalog
from sectigo_chain.x509.findings import fingerprint
from sectigo_chain.x509.paths import build_paths, predict_windows_chain


def _hierarchy() -> tuple[x509.Certificate, x509.Certificate, x509.Certificate, object]:
    root_key, ica_key, leaf_key = (new_key("ECC") for _ in range(3))
    root = _ca("Root", root_key, "Root", root_key)  # type: ignore[arg-type]
    ica = _ca("ICA", ica_key, "Root", root_key)  # type: ignore[arg-type]
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)  # type: ignore[arg-type]
    return root, ica, leaf, root_key


def _hierarchy_late_ica() -> tuple[x509.Certificate, x509.Certificate, x509.Certificate, object]:
    """A hierarchy whose issuing CA's SHA-256 is in the upper half, so that a random certificate
    sorts before it with probability at least 1/2 (each of ``_sorted_before``'s 200 tries). With
    any issuing CA the search failed now and then: when the CA's SHA-256 starts with 00 or 01,
    200 tries often find nothing smaller (it happened in a mutation run)."""
    for _ in range(64):  # each try succeeds with probability 1/2
        found = _hierarchy()
        if fingerprint(found[1]) >= "8":
            return found
    raise AssertionError("no issuing CA in the upper half in 64 tries")


def _sorted_before(target: x509.Certificate, make: object) -> x509.Certificate:
    """A certificate from ``make()`` whose SHA-256 sorts before ``target``'s (the order in which
    build_paths tries same-name issuers), so it is tried first. ``target``'s SHA-256 must be in
    the upper half (``_hierarchy_late_ica``): then each try succeeds with probability >= 1/2."""
    assert fingerprint(target) >= "8", "use _hierarchy_late_ica()"
    for _ in range(200):
        cert = make()  # type: ignore[operator]
        if fingerprint(cert) < fingerprint(target):
            return cert  # type: ignore[no-any-return]
    raise AssertionError("no certificate sorted first in 200 tries")


# --- paths.build_paths: a same-name issuer that fails is skipped, the search goes on ------------


def test_a_same_name_issuer_whose_signature_fails_does_not_end_the_search() -> None:
    root, ica, leaf, root_key = _hierarchy_late_ica()
    impostor = _sorted_before(ica, lambda: _ca("ICA", new_key("ECC"), "Root", root_key))  # type: ignore[arg-type]
    paths = build_paths(leaf, [impostor, ica], [root], at=AT)
    assert [p.certificates for p in paths] == [(leaf, ica, root)]


def test_a_same_name_non_ca_does_not_end_the_search() -> None:
    root, ica, leaf, root_key = _hierarchy_late_ica()
    # Same subject and key as the real issuer (so the leaf's signature verifies), but not a CA.
    ica_key = ica.public_key()

    def not_ca() -> x509.Certificate:
        return make_certificate(
            subject=_name("ICA"),
            public_key=ica_key,
            issuer=_name("Root"),
            issuer_key=root_key,  # type: ignore[arg-type]
            not_before=AT - YEAR,
            not_after=AT + YEAR,
            ca=False,
        )

    blocked = _sorted_before(ica, not_ca)
    paths = build_paths(leaf, [blocked, ica], [root], at=AT)
    assert [p.certificates for p in paths] == [(leaf, ica, root)]


# --- paths._partial_chain: with no trusted path, the issuer valid now wins ---------------------


def test_partial_chain_prefers_the_issuer_valid_now_over_a_later_one() -> None:
    root_key, ica_key, leaf_key = (new_key("ECC") for _ in range(3))
    root = _ca("Root", root_key, "Root", root_key)  # type: ignore[arg-type]
    now = _ca("ICA", ica_key, "Root", root_key)  # type: ignore[arg-type]
    # Same name and key, not yet valid, ends later: only validity puts it second.
    later = _ca("ICA", ica_key, "Root", root_key, AT + dt.timedelta(days=10), AT + 5 * YEAR)  # type: ignore[arg-type]
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)  # type: ignore[arg-type]
    prediction = predict_windows_chain(leaf, root=[], ca=[later, now, root], at=AT)
    assert not prediction.trusted
    assert prediction.built == (leaf, now, root)
    assert prediction.served == (leaf, now)
    assert "the chain ends at the self-signed Root, which is not in Root" in prediction.reason


def test_partial_chain_reports_an_invalid_certificate_on_it() -> None:
    root_key, ica_key, leaf_key = (new_key("ECC") for _ in range(3))
    root = _ca("Root", root_key, "Root", root_key)  # type: ignore[arg-type]
    expired = _ca("ICA", ica_key, "Root", root_key, AT - 3 * YEAR, AT - YEAR)  # type: ignore[arg-type]
    leaf = _ca("leaf", leaf_key, "ICA", ica_key, ca=False)  # type: ignore[arg-type]
    prediction = predict_windows_chain(leaf, root=[root], ca=[expired], at=AT)
    assert not prediction.trusted
    assert prediction.built == (leaf, expired, root)
    assert "a certificate on the best chain is not valid at that time" in prediction.reason
    alone = predict_windows_chain(leaf, root=[], ca=[], at=AT)
    assert alone.built == (leaf,)
    assert alone.served == (leaf,)
    assert "the issuer of leaf (ICA) is in no store" in alone.reason


# --- analyze._weakness: MD5, MD2 and SHA-1 signature ids ---------------------------------------

_SHA256_RSA = bytes.fromhex("2a864886f70d01010b")  # 1.2.840.113549.1.1.11


def _with_signature_oid(cert: x509.Certificate, last: int) -> x509.Certificate:
    """``cert`` with its sha256WithRSAEncryption id replaced by 1.2.840.113549.1.1.<last> (same
    length; the signature no longer verifies, which _weakness does not look at)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    der = cert.public_bytes(Encoding.DER)
    assert der.count(_SHA256_RSA) == 2
    return x509.load_der_x509_certificate(
        der.replace(_SHA256_RSA, _SHA256_RSA[:-1] + bytes([last]))
    )


def _rsa_leaf() -> x509.Certificate:
    from sectigo_chain.testing.lab import default_lab

    return default_lab().issue_leaf(["weak.example.test"], at=AT).cert


def test_weak_signature_algorithms_are_named() -> None:
    leaf = _rsa_leaf()
    assert _weakness(leaf) is None
    for last, name in (
        (4, "md5WithRSAEncryption"),
        (2, "md2WithRSAEncryption"),
        (5, "sha1WithRSAEncryption"),
    ):
        weak = _with_signature_oid(leaf, last)
        assert _weakness(weak) == f"signed with {name}"
        result = analyze([weak], at=AT)
        found = [f for f in result.findings if f.code == "WEAK_SIGNATURE"]
        assert len(found) == 1
        assert found[0].detail == f"weak.example.test: signed with {name}"


def test_small_keys_are_weak() -> None:
    small = new_key("RSA", bits=1024)
    signer = new_key("ECC")
    cert = make_certificate(
        subject=_name("small"),
        public_key=small.public_key(),
        issuer=_name("I"),
        issuer_key=signer,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=False,
    )
    assert _weakness(cert) == "RSA 1024-bit key"
    p224 = ec.generate_private_key(ec.SECP224R1())
    cert = make_certificate(
        subject=_name("p224"),
        public_key=p224.public_key(),
        issuer=_name("I"),
        issuer_key=signer,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=False,
    )
    assert _weakness(cert) == "EC secp224r1 key"
    ok = ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate(
        subject=_name("p256"),
        public_key=ok.public_key(),
        issuer=_name("I"),
        issuer_key=signer,
        not_before=AT - YEAR,
        not_after=AT + YEAR,
        ca=False,
    )
    assert _weakness(cert) is None


# --- catalog.cross_sign_for: root as leaf, key id before name -----------------------------------


def test_a_root_passed_as_leaf_is_not_applicable() -> None:
    cat = default_catalog()
    for cid in (
        "r46-root-selfsigned",
        "e46-root-selfsigned",
        "r46-cross-usertrust-rsa",
        "usertrust-rsa-root-selfsigned",
    ):
        answer = cross_sign_for(cat.certificate(cid))
        assert answer.status == "not_applicable", cid
        assert answer.method == "none"
        assert answer.cross_sign is None
        assert "a root certificate, not a leaf" in answer.explanation
    # An issuing CA is not a root: it is followed to its root like a leaf.
    r36 = cross_sign_for(cat.certificate("ca-dv-r36"))
    assert r36.status == "needs_cross_sign"
    assert r36.root == "R46"
    assert r36.method == "signature"


def _stand_in(issuer_name: x509.Name, aki_of: x509.Certificate | None) -> x509.Certificate:
    """A leaf that names ``issuer_name`` and carries the key id of ``aki_of`` (its signature is
    by a throw-away key, so the issuer can only be recognised by key id or name)."""
    key = ec.derive_private_key(4242, ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("stand-in.example.test"))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(4242)
        .not_valid_before(AT - YEAR)
        .not_valid_after(AT + YEAR)
    )
    if aki_of is not None:
        ski = aki_of.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(ski, None, None), critical=False
        )
    return builder.sign(ec.derive_private_key(4243, ec.SECP256R1()), hashes.SHA256())


def test_issuer_key_id_is_used_before_the_issuer_name() -> None:
    cat = default_catalog()
    r36, e36 = cat.certificate("ca-dv-r36"), cat.certificate("ca-dv-e36")
    by_key = cross_sign_for(_stand_in(r36.subject, r36))
    assert (by_key.status, by_key.root, by_key.method) == (
        "needs_cross_sign",
        "R46",
        "issuer_key_id",
    )
    assert "issuer recognised by key identifier, signature not checked" in by_key.explanation
    assert not by_key.guessed
    # Key id and name disagree: the key id (E36, so E46) decides, not the name (R36).
    conflict = cross_sign_for(_stand_in(r36.subject, e36))
    assert (conflict.root, conflict.method) == ("E46", "issuer_key_id")
    # No key id: the name decides.
    by_name = cross_sign_for(_stand_in(r36.subject, None))
    assert (by_name.root, by_name.method) == ("R46", "issuer_name")
    assert "issuer recognised by name, signature not checked" in by_name.explanation


def test_unknown_sectigo_issuer_is_guessed_from_the_key_type() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sectigo Limited"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Sectigo Some Future CA"),
        ]
    )
    answer = cross_sign_for(_stand_in(name, None))
    assert (answer.status, answer.root, answer.method) == (
        "needs_cross_sign",
        "E46",
        "key_type_guess",
    )
    assert answer.guessed
    assert "GUESSED" in answer.explanation
    other = cross_sign_for(_stand_in(_name("Some Other CA"), None))
    assert (other.status, other.method, other.root) == ("not_r46_e46", "none", None)
    assert "the R46/E46 IIS fix does not apply" in other.explanation


def test_a_disallowed_leaf_is_served_alone_and_untrusted() -> None:
    root, ica, leaf, _ = _hierarchy()
    prediction = predict_windows_chain(leaf, root=[root], ca=[ica], at=AT, disallowed=[leaf])
    assert (prediction.built, prediction.served, prediction.anchor) == ((leaf,), (leaf,), None)
    assert not prediction.trusted
    assert prediction.reason == "the certificate itself is in Disallowed"
    banned_ica = predict_windows_chain(leaf, root=[root], ca=[ica], at=AT, disallowed=[ica])
    assert not banned_ica.trusted
    assert predict_windows_chain(leaf, root=[root], ca=[ica], at=AT).trusted


# --- catalog entries, built afresh (default_catalog() is cached once per process) --------------


def test_catalog_entries_say_what_to_do_with_each_certificate() -> None:
    from sectigo_chain.x509.catalog import Catalog

    real = default_catalog()
    ids = ["r46-root-selfsigned", "e46-root-selfsigned", "r46-cross-usertrust-rsa",
           "usertrust-rsa-root-selfsigned", "ca-dv-r36"]  # fmt: skip
    fresh = Catalog.from_certificates({cid: real.certificate(cid) for cid in ids})
    by_id = {e.id: e for e in fresh.entries}
    assert set(by_id) == set(ids)
    r46, e46 = by_id["r46-root-selfsigned"], by_id["e46-root-selfsigned"]
    assert (r46.remove_for_iis_fix, r46.store_name, r46.shipped) == (True, "Root", True)
    assert r46.note == (
        "remove from LocalMachine\\Root for the IIS fix: while it is there Windows serves the "
        "short chain; import the R46 cross-signed by USERTrust RSA into LocalMachine\\CA"
    )
    assert e46.note.endswith("import the E46 cross-signed by USERTrust ECC into LocalMachine\\CA")
    cross = by_id["r46-cross-usertrust-rsa"]
    assert (cross.remove_for_iis_fix, cross.store_name) == (False, "CA")
    assert cross.note == "intermediate for the IIS fix: belongs in LocalMachine\\CA, never in Root"
    usertrust = by_id["usertrust-rsa-root-selfsigned"]
    assert (usertrust.remove_for_iis_fix, usertrust.store_name, usertrust.note) == (
        False, "Root", "",
    )  # fmt: skip
    ca = by_id["ca-dv-r36"]
    assert (ca.store_name, ca.note, ca.remove_for_iis_fix) == ("CA", "", False)
    for cid, entry in by_id.items():
        cert = real.certificate(cid)
        assert entry.thumbprint == real.entry(cid).thumbprint
        assert entry.sha256 == fingerprint(cert)
        assert entry.ski == real.entry(cid).ski
    pinned = Catalog.from_certificates({}, pinned_only=True)
    assert pinned.entries
    assert all(not e.shipped and e.thumbprint is None for e in pinned.entries)


# --- paths: the tie sentence, str() of a prediction --------------------------------------------

_TIE = "a tie between paths of that length was broken by the tie rule"


def _again(cert: x509.Certificate, issuer_key: object) -> x509.Certificate:
    """Another certificate with ``cert``'s name, key and issuer (other dates)."""
    return make_certificate(
        subject=cert.subject,
        public_key=cert.public_key(),
        issuer=cert.issuer,
        issuer_key=issuer_key,  # type: ignore[arg-type]
        not_before=AT - 2 * YEAR,
        not_after=AT + 2 * YEAR,
        ca=True,
    )


def test_a_tie_is_reported_only_between_equal_paths_that_serve_differently() -> None:
    root, ica, leaf, root_key = _hierarchy()
    # The same issuing CA (name and key) twice, with other dates: two paths of 3 that send
    # different intermediates.
    ica_b = _again(ica, root_key)
    tie = predict_windows_chain(leaf, root=[root], ca=[ica, ica_b], at=AT)
    assert tie.trusted
    assert len(tie.paths) == 2
    assert tie.reason.endswith(_TIE)
    # Two paths of 3 that differ only in the anchor (which is not sent): no tie to report.
    root_b = _again(root, root_key)
    same_served = predict_windows_chain(leaf, root=[root, root_b], ca=[ica], at=AT)
    assert len(same_served.paths) == 2
    assert _TIE not in same_served.reason
    # A longer path (through a cross-sign to another root) is no tie for the short one.
    other_key = new_key("ECC")
    other = _ca("Other", other_key, "Other", other_key)  # type: ignore[arg-type]
    cross = _ca("Root", root_key, "Other", other_key)  # type: ignore[arg-type]
    longer = predict_windows_chain(leaf, root=[root, other], ca=[ica, cross], at=AT)
    assert sorted(p.depth for p in longer.paths) == [3, 4]
    assert longer.built == (leaf, ica, root)
    assert _TIE not in longer.reason
    assert longer.reason.endswith("(other paths: 4 certificates)")
    assert str(longer) == f"served leaf -> ICA (trusted): {longer.reason}"
    untrusted = predict_windows_chain(leaf, root=[], ca=[ica], at=AT)
    assert str(untrusted).startswith("served leaf -> ICA (NOT trusted): no trusted path")


# --- analyze: path choice by signature, the family by key, the self-signed root after the cross --


def test_the_served_path_follows_signatures_not_names() -> None:
    root, ica, leaf, root_key = _hierarchy()
    # An "ICA" with another key, sent first: same name as the leaf's issuer, but it did not
    # sign the leaf, so it is not on the path (it is an extra certificate).
    impostor = _ca("ICA", new_key("ECC"), "Root", root_key)  # type: ignore[arg-type]
    result = analyze([leaf, impostor, ica, root], at=AT)
    assert result.path == tuple(fingerprint(c) for c in (leaf, ica, root))
    extra = [f for f in result.findings if f.code == "EXTRA_CERTS"]
    assert len(extra) == 1
    assert extra[0].detail == "not on the path from the leaf: ICA"


def test_the_family_is_found_by_key_through_a_cross_sign_the_catalog_does_not_know() -> None:
    from sectigo_chain.testing.lab import default_lab

    lab = default_lab()
    e46 = lab.self_signed_root("ECC")
    foreign_key = new_key("ECC")
    # E46's key, cross-signed by a CA the catalog does not know; the leaf is signed by E46.
    stand_in = make_certificate(subject=e46.cert.subject, public_key=e46.key.public_key(),
                                issuer=_name("Foreign Root"), issuer_key=foreign_key,  # type: ignore[arg-type]
                                not_before=AT - YEAR, not_after=AT + YEAR, ca=True)  # fmt: skip
    leaf = make_certificate(subject=_name("www.example.test"),
                            public_key=new_key("ECC").public_key(),  # type: ignore[attr-defined]
                            issuer=e46.cert.subject, issuer_key=e46.key, not_before=AT - YEAR,
                            not_after=AT + YEAR, ca=False)  # fmt: skip
    assert lab.catalog.identify(stand_in) is None
    result = analyze([leaf, stand_in], at=AT, catalog=lab.catalog)
    assert result.family == "E46"
    (missing,) = [f for f in result.findings if f.code == "CROSS_SIGN_MISSING"]
    assert missing.detail.startswith("the chain reaches E46 through ")
    assert "issued by Foreign Root, not through " in missing.detail


def test_a_self_signed_root_sent_after_the_cross_sign_is_a_warning_that_says_why() -> None:
    from sectigo_chain.testing.lab import default_lab

    lab = default_lab()
    leaf = lab.issue_leaf("RSA")
    served = [leaf.cert, lab.r36.cert, lab.r46_cross, lab.r46_root.cert]
    at = leaf.cert.not_valid_before_utc + dt.timedelta(days=1)
    result = analyze(served, at=at, catalog=lab.catalog)
    (sent,) = [f for f in result.findings if f.code == "SELF_SIGNED_R46_SENT"]
    assert sent.severity == "warning"
    assert sent.detail.endswith(
        "is sent after the cross-sign: OpenSSL-based clients take the cross-sign first and "
        "backtracking clients recover, so it only adds bytes; stop sending it"
    )


# --- round 2 (seed-7 sample) ------------------------------------------------------------------


def _expired(cert: x509.Certificate, issuer_key: object) -> x509.Certificate:
    """``cert``'s name, key and issuer, expired a year before AT."""
    return make_certificate(
        subject=cert.subject,
        public_key=cert.public_key(),
        issuer=cert.issuer,
        issuer_key=issuer_key,  # type: ignore[arg-type]
        not_before=AT - 3 * YEAR,
        not_after=AT - YEAR,
        ca=True,
    )


def _codes(result: object) -> dict[str, object]:
    return {f.code: f for f in result.findings}  # type: ignore[attr-defined]


def test_a_second_copy_of_the_issuing_ca_is_an_extra_not_a_self_signed_root() -> None:
    root, ica, leaf, root_key = _hierarchy()
    result = analyze([leaf, ica, _again(ica, root_key), root], at=AT)
    codes = _codes(result)
    assert "SELF_SIGNED_R46_SENT" not in codes
    assert codes["EXTRA_CERTS"].detail == "not on the path from the leaf: ICA"  # type: ignore[attr-defined]


def test_findings_name_the_certificates_they_are_about() -> None:
    root, ica, leaf, _ = _hierarchy()
    dup = _codes(analyze([leaf, ica, ica, root], at=AT))
    assert dup["DUPLICATE"].certificates == (fingerprint(ica),)  # type: ignore[attr-defined]
    assert dup["CONTAINS_ANCHOR"].certificates == (fingerprint(root),)  # type: ignore[attr-defined]
    alone = _codes(analyze([leaf], at=AT))
    assert alone["INCOMPLETE"].certificates == (fingerprint(leaf),)  # type: ignore[attr-defined]
    unknown = _codes(analyze([leaf, ica], at=AT))
    assert unknown["UNKNOWN_ISSUER"].certificates == (fingerprint(ica),)  # type: ignore[attr-defined]


def test_order_findings_say_which_clients_tolerate_the_order() -> None:
    root, ica, leaf, _ = _hierarchy()
    leaf_second = _codes(analyze([ica, leaf, root], at=AT))["INCORRECT_ORDER"]
    assert leaf_second.detail == (  # type: ignore[attr-defined]
        "sent as ICA, leaf, Root; issuer order is leaf, ICA, Root; no client tolerates this: "
        "every TLS client takes the first certificate sent as the server's own (RFC 5246, "
        "RFC 8446)"
    )
    swapped = _codes(analyze([leaf, root, ica], at=AT))["INCORRECT_ORDER"]
    assert swapped.detail.endswith(  # type: ignore[attr-defined]
        "search every sent certificate and tolerate this order; clients that read the chain "
        "strictly in order (RFC 5246 requires it for TLS 1.2) may not"
    )


def test_expired_certificates_say_whether_they_are_on_the_path() -> None:
    root, ica, leaf, root_key = _hierarchy()
    old = _ca("Old", new_key("ECC"), "Root", root_key, AT - 3 * YEAR, AT - YEAR)  # type: ignore[arg-type]
    off = _codes(analyze([leaf, ica, root, old], at=AT))["EXPIRED_SENT"]
    assert off.detail == "Old (not on the path) expired 2025-06-01 00:00 UTC"  # type: ignore[attr-defined]
    assert off.severity == "warning"  # type: ignore[attr-defined]
    expired_ica = _expired(ica, root_key)
    on = _codes(analyze([leaf, expired_ica, root], at=AT))["EXPIRED_SENT"]
    assert on.detail == "ICA (on the path) expired 2025-06-01 00:00 UTC"  # type: ignore[attr-defined]
    assert on.severity == "error"  # type: ignore[attr-defined]


def test_a_leaf_without_dns_names_says_so_on_a_hostname_mismatch() -> None:
    root, ica, leaf, _ = _hierarchy()
    result = analyze([leaf, ica, root], at=AT, hostname="www.example.test")
    mismatch = _codes(result)["HOSTNAME_MISMATCH"]
    assert mismatch.detail == "leaf covers no DNS names in its SAN, not www.example.test"  # type: ignore[attr-defined]


def test_a_reissued_self_signed_r46_is_still_the_self_signed_r46() -> None:
    from sectigo_chain.testing.lab import default_lab

    lab = default_lab()
    r46 = lab.self_signed_root("RSA")
    # Same name and key as the catalog's self-signed R46, other dates: not in the catalog.
    again = make_certificate(subject=r46.cert.subject, public_key=r46.key.public_key(),
                             issuer=r46.cert.subject, issuer_key=r46.key,
                             not_before=AT - YEAR, not_after=AT + 20 * YEAR, ca=True)  # fmt: skip
    assert lab.catalog.identify(again) is None
    leaf = lab.issue_leaf("RSA")
    at = leaf.cert.not_valid_before_utc + dt.timedelta(days=1)
    codes = _codes(analyze([leaf.cert, lab.r36.cert, again], at=at, catalog=lab.catalog))
    assert "SELF_SIGNED_R46_SENT" in codes
    assert "CONTAINS_ANCHOR" not in codes


def test_an_unknown_sectigo_issuer_of_an_rsa_leaf_is_guessed_r46() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sectigo Limited"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Sectigo Some Future CA"),
        ]
    )
    leaf = make_certificate(subject=_name("rsa.example.test"),
                            public_key=new_key("RSA").public_key(),  # type: ignore[attr-defined]
                            issuer=name, issuer_key=new_key("ECC"), not_before=AT - YEAR,
                            not_after=AT + YEAR, ca=False)  # fmt: skip
    answer = cross_sign_for(leaf)
    assert (answer.status, answer.root, answer.method) == (
        "needs_cross_sign",
        "R46",
        "key_type_guess",
    )


def test_catalog_entry_text_says_where_it_belongs() -> None:
    cat = default_catalog()
    (cross,) = [e for e in cat.entries if e.id == "r46-cross-usertrust-rsa"]
    assert str(cross) == (
        f"{cross.name} (cross_signed_root, issued by USERTrust RSA Certification Authority; "
        f"belongs in LocalMachine\\CA; SHA-1 {cross.thumbprint})"
    )
    (root,) = [e for e in cat.entries if e.id == "r46-root-selfsigned"]
    assert str(root).endswith(f"; removed by the IIS fix; SHA-1 {root.thumbprint})")


def test_prediction_reason_counts_paths_and_names_the_policy() -> None:
    from sectigo_chain.x509.paths import WINDOWS_TIE_RULE, CertPath

    root, ica, leaf, _ = _hierarchy()
    one = predict_windows_chain(leaf, root=[root], ca=[ica], at=AT)
    assert one.reason == (
        "1 trusted path; shortest_trusted_path chose 3 certificates anchored at Root, which is "
        "not sent"
    )
    assert one.tie_rule == WINDOWS_TIE_RULE

    class FirstPath:  # a policy without a __name__
        def __call__(self, paths: list[CertPath]) -> CertPath | None:
            return paths[0] if paths else None

    custom = predict_windows_chain(leaf, root=[root], ca=[ica], at=AT, policy=FirstPath())
    assert custom.reason.startswith("1 trusted path; the policy chose 3 certificates")
    assert custom.tie_rule == ""


def test_an_expired_certificate_on_the_only_chain_is_the_reason_given() -> None:
    root, ica, leaf, root_key = _hierarchy()
    expired = _expired(ica, root_key)
    prediction = predict_windows_chain(leaf, root=[root], ca=[expired], at=AT)
    assert prediction.reason == (
        "no trusted path: a certificate on the best chain is not valid at that time; Windows "
        "serves what it built"
    )


def test_competitors_say_whether_the_tie_rule_or_an_expiry_decides() -> None:
    from sectigo_chain.x509.paths import competing_paths

    root, ica, leaf, root_key = _hierarchy()
    # Two copies of the issuing CA: the one with the later notAfter wins the tie; once it
    # expires (before `until`), Windows switches to the other copy.
    ica_b = _again(ica, root_key)
    found = competing_paths(leaf, root=[root], ca=[ica, ica_b], at=AT - dt.timedelta(days=1),
                            until=AT + 3 * YEAR)  # fmt: skip
    kinds = [c.kind for c in found]
    assert kinds[0] == "tie"
    assert str(found[0]) == (
        "a path of the same length through ICA (issued 2024-06-01, by Root) competes with the "
        "one Windows builds: only the tie rule decides between them"
    )
    root_b = _again(root, root_key)
    later = competing_paths(leaf, root=[root, root_b], ca=[ica, ica_b], at=AT,
                            until=AT + 3 * YEAR)  # fmt: skip
    (expiry,) = [c for c in later if c.kind == "after_expiry"]
    assert str(expiry) == (
        "when ICA (issued by Root) expires on 2027-06-01, Windows switches to the path through "
        "ICA (issued 2024-06-01, by Root)"
    )


# --- round 3 (seed-11 sample) -----------------------------------------------------------------


def test_self_signed_r46_findings_say_which_clients_fail_and_what_to_do() -> None:
    from sectigo_chain.testing.lab import default_lab

    lab = default_lab()
    leaf = lab.issue_leaf("RSA")
    at = leaf.cert.not_valid_before_utc + dt.timedelta(days=1)
    r46 = "Sectigo Public Server Authentication Root R46"
    before = [leaf.cert, lab.r36.cert, lab.r46_root.cert, lab.r46_cross]
    (sent,) = [f for f in analyze(before, at=at, catalog=lab.catalog).findings
               if f.code == "SELF_SIGNED_R46_SENT"]  # fmt: skip
    assert sent.severity == "error"
    assert sent.detail == (
        f"the self-signed {r46} is sent before the cross-sign: OpenSSL-based clients (curl, "
        f"wget, Python, PHP, most Linux and embedded clients; OpenSSL 1.0.x to 3.x) that do not "
        f"trust {r46} take the first matching issuer, pick it and fail (error 19, self-signed "
        "certificate in certificate chain); backtracking clients (Android, Java, NSS, Windows, "
        f"Apple) recover. Fix: stop sending the self-signed {r46} (or send the cross-sign "
        "before it)"
    )
    ends = [leaf.cert, lab.r36.cert, lab.r46_root.cert]
    (top,) = [f for f in analyze(ends, at=at, catalog=lab.catalog).findings
              if f.code == "SELF_SIGNED_R46_SENT"]  # fmt: skip
    assert top.detail == (
        f"the chain ends at the self-signed {r46}; clients that do not trust it (older Android, "
        "Java, embedded) fail: serve the USERTrust cross-sign instead"
    )


def test_a_not_yet_valid_certificate_is_an_error_only_on_the_path() -> None:
    root, ica, leaf, root_key = _hierarchy()
    future = _ca("Future", new_key("ECC"), "Root", root_key, AT + YEAR, AT + 3 * YEAR)  # type: ignore[arg-type]
    off = _codes(analyze([leaf, ica, root, future], at=AT))["NOT_YET_VALID"]
    assert off.detail == "Future (not on the path) is valid only from 2027-06-01 00:00 UTC"  # type: ignore[attr-defined]
    assert off.severity == "warning"  # type: ignore[attr-defined]
    later_ica = make_certificate(
        subject=ica.subject,
        public_key=ica.public_key(),
        issuer=ica.issuer,
        issuer_key=root_key,  # type: ignore[arg-type]
        not_before=AT + YEAR,
        not_after=AT + 3 * YEAR,
        ca=True,
    )
    on = _codes(analyze([leaf, later_ica, root], at=AT))["NOT_YET_VALID"]
    assert on.severity == "error"  # type: ignore[attr-defined]


def test_a_root_also_in_the_ca_store_is_still_an_anchor() -> None:
    root, ica, leaf, _ = _hierarchy()
    both = predict_windows_chain(leaf, root=[root], ca=[ica, root], at=AT)
    assert both.trusted is True
    assert both.anchor == root


def test_an_untrusted_prediction_is_false_and_stays_within_max_depth() -> None:
    root, ica, leaf, _ = _hierarchy()
    cut = predict_windows_chain(leaf, root=[], ca=[ica, root], at=AT, max_depth=2)
    assert cut.trusted is False
    assert cut.built == (leaf, ica)
    assert cut.served == (leaf, ica)


def test_a_leaf_issued_by_an_untrusted_self_signed_root_is_sent_alone() -> None:
    root_key = new_key("ECC")
    root = _ca("Root", root_key, "Root", root_key)  # type: ignore[arg-type]
    leaf = _ca("leaf", new_key("ECC"), "Root", root_key, ca=False)  # type: ignore[arg-type]
    prediction = predict_windows_chain(leaf, root=[], ca=[root], at=AT)
    assert prediction.built == (leaf, root)
    assert prediction.served == (leaf,)


def test_a_path_stops_at_a_cross_certificate_that_is_in_root_and_in_ca() -> None:
    _root, ica, leaf, root_key = _hierarchy()
    other_key = new_key("ECC")
    other = _ca("Other", other_key, "Other", other_key)  # type: ignore[arg-type]
    cross = _ca("Root", root_key, "Other", other_key)  # type: ignore[arg-type]
    # The cross-certificate is an anchor (it is in Root) even though CA holds it too: the
    # path ends there and is not continued to Other.
    prediction = predict_windows_chain(leaf, root=[cross, other], ca=[ica, cross], at=AT)
    assert [p.depth for p in prediction.paths] == [3]
    assert prediction.built == (leaf, ica, cross)


def test_a_self_signed_leaf_in_root_is_still_sent() -> None:
    key = new_key("ECC")
    leaf = _ca("leaf", key, "leaf", key, ca=False)  # type: ignore[arg-type]
    prediction = predict_windows_chain(leaf, root=[leaf], ca=[], at=AT)
    assert prediction.trusted
    assert prediction.built == (leaf,)
    assert prediction.served == (leaf,)


def test_a_path_length_of_one_allows_one_intermediate_below() -> None:
    root_key, ica1_key, ica2_key, leaf_key = (new_key("ECC") for _ in range(4))
    root = _ca("Root", root_key, "Root", root_key)  # type: ignore[arg-type]
    ica1 = make_certificate(subject=_name("ICA1"), public_key=ica1_key.public_key(),  # type: ignore[attr-defined]
                            issuer=_name("Root"), issuer_key=root_key,  # type: ignore[arg-type]
                            not_before=AT - YEAR, not_after=AT + YEAR, ca=True,
                            path_length=1)  # fmt: skip
    ica2 = _ca("ICA2", ica2_key, "ICA1", ica1_key)  # type: ignore[arg-type]
    leaf = _ca("leaf", leaf_key, "ICA2", ica2_key, ca=False)  # type: ignore[arg-type]
    prediction = predict_windows_chain(leaf, root=[root], ca=[ica1, ica2], at=AT)
    assert prediction.trusted
    assert prediction.built == (leaf, ica2, ica1, root)


def test_a_short_chain_to_r46_is_found_from_the_missing_issuer() -> None:
    from sectigo_chain.testing.lab import default_lab

    lab = default_lab()
    r46 = lab.self_signed_root("RSA")
    ica_key = new_key("ECC")
    ica = make_certificate(subject=_name("Lab Other CA"), public_key=ica_key.public_key(),  # type: ignore[attr-defined]
                           issuer=r46.cert.subject, issuer_key=r46.key, not_before=AT - YEAR,
                           not_after=AT + YEAR, ca=True)  # fmt: skip
    leaf = _ca("leaf", new_key("ECC"), "Lab Other CA", ica_key, ca=False)  # type: ignore[arg-type]
    result = analyze([leaf, ica], at=AT, catalog=lab.catalog)
    assert result.family == "R46"
    assert "SHORT_CHAIN_R46" in _codes(result)


# --- round 5 (seed-5 sample) ------------------------------------------------------------------


def test_validity_includes_both_boundary_instants() -> None:
    root, ica, leaf, _ = _hierarchy()
    for instant in (ica.not_valid_after_utc, ica.not_valid_before_utc):
        codes = _codes(analyze([leaf, ica, root], at=instant))
        assert "EXPIRED_SENT" not in codes
        assert "NOT_YET_VALID" not in codes


def test_the_leaf_is_the_end_entity_among_the_certificates_that_issued_nothing() -> None:
    root, ica, leaf, root_key = _hierarchy()
    other = _ca("Other CA", new_key("ECC"), "Root", root_key)  # type: ignore[arg-type]
    result = analyze([ica, other, leaf, root], at=AT)
    assert result.path[0] == fingerprint(leaf)


def test_path_names_mark_a_cross_certificate_of_a_root_key() -> None:
    root, ica, leaf, _ = _hierarchy()
    assert analyze([leaf, ica, root], at=AT).path_names == ("leaf", "ICA", "Root")
    from sectigo_chain.testing.lab import default_lab

    lab = default_lab()
    e46 = lab.self_signed_root("ECC")
    stand_in = make_certificate(subject=e46.cert.subject, public_key=e46.key.public_key(),
                                issuer=_name("Foreign Root"), issuer_key=new_key("ECC"),
                                not_before=AT - YEAR, not_after=AT + YEAR, ca=True)  # fmt: skip
    leaf2 = make_certificate(subject=_name("www.example.test"),
                             public_key=new_key("ECC").public_key(),  # type: ignore[attr-defined]
                             issuer=e46.cert.subject, issuer_key=e46.key, not_before=AT - YEAR,
                             not_after=AT + YEAR, ca=False)  # fmt: skip
    names = analyze([leaf2, stand_in], at=AT, catalog=lab.catalog).path_names
    assert names[1].endswith(" (cross-signed by Foreign Root)")


def test_max_depth_limits_the_trusted_paths_too() -> None:
    root, ica, leaf, _ = _hierarchy()
    assert predict_windows_chain(leaf, root=[root], ca=[ica], at=AT).trusted
    short = predict_windows_chain(leaf, root=[root], ca=[ica], at=AT, max_depth=2)
    assert short.trusted is False
