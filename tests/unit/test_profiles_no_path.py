"""The diagnosis of a failed profile skips its verifier retries when no path can exist
(``profiles._no_path``, issue 15): it must never say "no path" where a relaxation the retries
try could validate, and the explanations must be those of the full retries."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import pytest
from _lab_certs import AT, YEAR, ca, keys
from cryptography import x509

from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.trust import profiles as profiles_module
from sectigo_chain.trust.profiles import Profile, anchor_path, load_profiles, validate

HOST = "www.example.test"
Family = Literal["RSA", "ECC"]


def _own(*anchors: x509.Certificate) -> Profile:
    return Profile(name="own", description="own roots", anchors=anchors, source="test")


@pytest.fixture(scope="module")
def lab_profiles(lab: LabHierarchy) -> dict[str, Profile]:
    return {p.name: p for p in load_profiles(["legacy", "modern"], catalog=lab.catalog)}


def _lab_at(lab: LabHierarchy) -> dt.datetime:
    """An instant inside every lab CA's validity (the lab's own clock)."""
    return max(c.not_valid_before_utc for c in lab.catalog.certificates()) + dt.timedelta(days=30)


@pytest.mark.parametrize("layout", ["short", "cross", "selfsigned", "with_root", "leaf_only"])
@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_a_chain_the_known_cas_complete_always_has_a_path(
    lab: LabHierarchy, lab_profiles: dict[str, Profile], layout: str, family: Family
) -> None:
    """Every lab layout: the verifier validates it once the lab catalog's CAs are added (the
    retries' "intermediates" relaxation), so ``_no_path`` must say a path exists."""
    at = _lab_at(lab)
    leaf = lab.issue_leaf([HOST], family=family, not_before=at - YEAR, not_after=at + YEAR)
    served = [leaf.cert] if layout == "leaf_only" else lab.served_chain(leaf, layout)  # type: ignore[arg-type]
    known = [c for c in lab.catalog.certificates() if c.subject != c.issuer]
    for prof in lab_profiles.values():
        assert validate([*served, *known], prof, at=at, hostname=HOST).valid, prof.name
        assert not profiles_module._no_path(served[0], served[1:], known, prof), prof.name


def test_no_path_to_an_unrelated_root() -> None:
    root_key, ca_key, leaf_key, other_key = keys(4)
    root = ca("Root A", root_key, "Root A", root_key)
    issuing = ca("Issuing A", ca_key, "Root A", root_key)
    leaf = ca("leaf", leaf_key, "Issuing A", ca_key, ca=False)
    other = ca("Root B", other_key, "Root B", other_key)
    assert profiles_module._no_path(leaf, [issuing, root], [], _own(other))
    assert not profiles_module._no_path(leaf, [issuing, root], [], _own(root))
    assert not profiles_module._no_path(leaf, [], [issuing], _own(root))  # a known CA completes
    assert profiles_module._no_path(leaf, [], [], _own(root))  # the issuing CA is missing
    assert not profiles_module._no_path(leaf, [], [], _own(leaf))  # the leaf itself trusted


def test_a_key_roll_over_certificate_is_followed() -> None:
    """A self-issued certificate carrying a CA's new key, signed with its old one (RFC 5280's
    key roll-over): :func:`anchor_path` does not follow self-issued certificates, ``_no_path``
    must (a verifier may), so it finds the path where ``anchor_path`` finds none."""
    old, new, leaf_key = keys(3)
    root = ca("Roll CA", old, "Roll CA", old)
    roll = ca("Roll CA", new, "Roll CA", old)  # the new key, signed with the old one
    leaf = ca("leaf", leaf_key, "Roll CA", new, ca=False)
    assert anchor_path([leaf, roll], _own(root)) is None
    assert not profiles_module._no_path(leaf, [roll], [], _own(root))


def test_depth_is_bounded_one_level_past_the_verifier() -> None:
    """A ladder of intermediates: wherever the verifier validates, a path is found; paths are
    followed to one intermediate more than the profile's ``max_depth``, not further."""
    ks = keys(10)
    root = ca("CA 0", ks[0], "CA 0", ks[0], key_ids=True)
    cas = [ca(f"CA {i}", ks[i], f"CA {i - 1}", ks[i - 1], key_ids=True) for i in range(1, 9)]
    prof = Profile(name="d3", description="depth 3", anchors=(root,), source="test", max_depth=3)
    verified, found = [], []
    for top in range(1, 9):  # the leaf hangs under CA ``top``: ``top`` intermediates
        leaf = ca(HOST, ks[9], f"CA {top}", ks[top], ca=False, dns_names=[HOST], key_ids=True)
        verified.append(validate([leaf, *cas[:top]], prof, at=AT, hostname=HOST).valid)
        found.append(not profiles_module._no_path(leaf, cas[:top], [], prof))
    assert all(f for v, f in zip(verified, found, strict=True) if v)
    assert found == [top <= prof.max_depth + 1 for top in range(1, 9)]
    assert verified == [top <= prof.max_depth for top in range(1, 9)]  # the verifier's limit


def test_explanations_without_a_path_are_unchanged(lab: LabHierarchy) -> None:
    """The two explanations reached through the shortcut: an untrusted root sent, and an
    issuer neither served nor known."""
    root_key, ca_key, leaf_key = keys(3)
    root = ca("Unrelated Root", root_key, "Unrelated Root", root_key)
    issuing = ca("Unrelated CA", ca_key, "Unrelated Root", root_key)
    leaf = ca(HOST, leaf_key, "Unrelated CA", ca_key, ca=False, dns_names=[HOST])
    legacy = load_profiles(["legacy"], catalog=lab.catalog)[0]
    sent = validate([leaf, issuing, root], legacy, at=AT, hostname="other.example.test")
    assert sent.classification == "untrusted_root"
    assert sent.reason == "the chain ends at Unrelated Root, a root legacy clients do not trust"
    alone = validate([leaf], legacy, at=AT, hostname="other.example.test")
    assert alone.classification == "incomplete"
    assert alone.reason == (
        "the issuer of www.example.test (Unrelated CA) was not served and is not a known CA: "
        "the chain is incomplete, or it leads to a root legacy clients do not trust"
    )


def test_the_verifier_words_a_name_mismatch_as_the_diagnosis_expects(
    lab: LabHierarchy, lab_profiles: dict[str, Profile]
) -> None:
    """The diagnosis skips the retries that keep the checked name when the verifier said the
    leaf does not cover it; it recognises that by cryptography's wording, pinned here (a
    cryptography release that rewords it fails this test, and the retries run again)."""
    at = _lab_at(lab)
    leaf = lab.issue_leaf([HOST], not_before=at - YEAR, not_after=at + YEAR)
    chain = lab.served_chain(leaf, "short")
    subject = x509.DNSName("other.example.test")
    for prof in lab_profiles.values():
        built, error = profiles_module._verify(prof, chain[0], chain[1:], at, subject)
        assert built is None
        assert profiles_module._NAME_MISMATCH in error


def test_a_short_chain_under_another_name_needs_both_fixes(
    lab: LabHierarchy, lab_profiles: dict[str, Profile]
) -> None:
    """Both relaxations are needed (the name and the catalog's cross-signed R46): the
    diagnosis names both, the name first."""
    at = _lab_at(lab)
    leaf = lab.issue_leaf([HOST], not_before=at - YEAR, not_after=at + YEAR)
    chain = lab.served_chain(leaf, "short")
    result = validate(chain, lab_profiles["legacy"], at=at, hostname="other.example.test")
    assert result.classification == "hostname"
    assert result.reason is not None
    assert result.reason.startswith(
        f"the leaf does not cover other.example.test (it covers {HOST}); "
        "legacy clients fail; fixable by serving "
    )
    assert result.missing_intermediates == [lab.catalog.identify(lab.r46_cross).thumbprint]  # type: ignore[union-attr]
