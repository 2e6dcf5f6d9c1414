"""certs.py: loading every format from content, facts, PFX protection, bad input."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs7, pkcs12

from sectigo_chain.errors import CertificateLoadError
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.x509.certs import cert_info, normalize_thumbprint, signed_by
from sectigo_chain.x509.load import load_bytes, load_file, to_legacy_pfx
from sectigo_chain.x509.pfx import read_pfx_protection


def _manifest(path: Path) -> dict[str, dict[str, object]]:
    data = json.loads(path.read_text())
    return {c["file"]: c for c in data["certificates"]}


def test_real_certificates_match_the_manifest(
    sectigo_dir: Path, sectigo_manifest_path: Path
) -> None:
    manifest = _manifest(sectigo_manifest_path)
    assert len(manifest) == 15
    for name, facts in manifest.items():
        loaded = load_file(sectigo_dir / name)
        assert loaded.format == "pem"
        assert len(loaded.certificates) == 1
        info = cert_info(loaded.certificates[0])
        assert info.thumbprint == facts["sha1_fingerprint"], name
        assert info.sha256 == facts["sha256_fingerprint"], name
        assert info.self_signed is facts["self_signed"], name
        assert info.is_ca is True
        assert info.ski == facts["subject_key_identifier"], name
        assert info.aki == facts["authority_key_identifier"], name
        assert info.serial == str(facts["serial_hex"]).lstrip("0"), name
        assert info.not_before.isoformat() == facts["not_before"], name
        assert info.not_after.isoformat() == facts["not_after"], name
        key = facts["key"]
        assert isinstance(key, dict)
        assert info.key.type == ("RSA" if key["algorithm"] == "RSA" else "EC")
        if info.key.type == "RSA":
            assert info.key.size == key["size_bits"]
        assert info.not_before.tzinfo is not None


def test_self_signed_needs_a_verifying_signature(sectigo_dir: Path, lab: LabHierarchy) -> None:
    # AAA signs itself with SHA-1: still recognised as self-signed.
    aaa = load_file(sectigo_dir / "aaa-certificate-services-root.pem").certificates[0]
    assert cert_info(aaa).self_signed
    # The cross-signed R46 has another issuer: not self-signed.
    cross = load_file(sectigo_dir / "r46-cross-usertrust-rsa.pem").certificates[0]
    assert not cert_info(cross).self_signed
    # Same subject as issuer but signed by a different key: not self-signed.
    from sectigo_chain.testing.lab import make_certificate, new_key

    other = new_key("ECC")
    fake = make_certificate(
        subject=lab.r46_root.cert.subject,
        public_key=lab.r46_root.key.public_key(),
        issuer=lab.r46_root.cert.subject,
        issuer_key=other,
        not_before=lab.r46_root.cert.not_valid_before_utc,
        not_after=lab.r46_root.cert.not_valid_after_utc,
        ca=True,
    )
    assert fake.issuer == fake.subject
    assert not cert_info(fake).self_signed
    assert signed_by(lab.r46_cross, lab.usertrust_rsa.cert)
    assert not signed_by(lab.r46_cross, lab.usertrust_ecc.cert)


def test_der_cer_and_p7b_detected_from_content(tmp_path: Path, lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(["a.example.test"])
    chain = lab.served_chain(leaf)
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    # A DER certificate named .pem and a PEM named .cer: content decides.
    (tmp_path / "x.pem").write_bytes(der)
    (tmp_path / "y.cer").write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
    assert load_file(tmp_path / "x.pem").format == "der"
    assert load_file(tmp_path / "y.cer").format == "pem"
    p7_der = pkcs7.serialize_certificates(chain, serialization.Encoding.DER)
    p7_pem = pkcs7.serialize_certificates(chain, serialization.Encoding.PEM)
    (tmp_path / "c.p7b").write_bytes(p7_der)
    (tmp_path / "d.txt").write_bytes(p7_pem)
    for name, fmt in (("c.p7b", "pkcs7-der"), ("d.txt", "pkcs7-pem")):
        loaded = load_file(tmp_path / name)
        assert loaded.format == fmt
        assert {cert_info(c).sha256 for c in loaded.certificates} == {
            cert_info(c).sha256 for c in chain
        }


def test_pem_bundle_with_key(tmp_path: Path, lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(["b.example.test"], family="ECC")
    key_pem = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    bundle = leaf.cert.public_bytes(serialization.Encoding.PEM) + key_pem
    path = tmp_path / "bundle.pem"
    path.write_bytes(bundle)
    loaded = load_file(path, "s3cret")
    assert loaded.key is not None
    assert loaded.leaf == leaf.cert
    assert "s3cret" not in repr(loaded)


def test_pfx_aes_and_legacy_protection(lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(["c.example.test"])
    modern = pkcs12.serialize_key_and_certificates(
        b"c", leaf.key, leaf.cert, [leaf.issuer.cert], BestAvailableEncryption(b"pw")
    )
    prot = read_pfx_protection(modern)
    assert prot.kind == "aes"
    assert not prot.legacy_compatible
    legacy = to_legacy_pfx(leaf.key, leaf.cert, "pw", chain=[leaf.issuer.cert])
    lprot = read_pfx_protection(legacy)
    assert lprot.kind == "legacy"
    assert lprot.mac_algorithm == "sha1"
    assert lprot.legacy_compatible
    assert all("tripledes" in a for a in lprot.algorithms)
    loaded = load_bytes(legacy, name="legacy.pfx", password="pw")
    assert loaded.format == "pkcs12"
    assert loaded.leaf == leaf.cert
    assert len(loaded.certificates) == 2
    assert loaded.pfx_protection is not None
    assert loaded.pfx_protection.kind == "legacy"


def test_normalize_thumbprint_strips_mmc_marks() -> None:
    raw = "\u200e2b 18 94 7a 6a 9f c7 76 4f d8 b5 fb 18 a8 63 b0 c6 da c2 4f"
    assert normalize_thumbprint(raw) == "2B18947A6A9FC7764FD8B5FB18A863B0C6DAC24F"
    with pytest.raises(ValueError, match="40 hex"):
        normalize_thumbprint("2B18")


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def unix_socket_path() -> Iterator[Path]:
    d = tempfile.mkdtemp(dir="/tmp")
    path = Path(d) / "sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    yield path
    s.close()
    path.unlink()
    os.rmdir(d)


def _bad_cases(tmp_path: Path, lab: LabHierarchy) -> list[tuple[str, Path, str | None, str]]:
    leaf = lab.issue_leaf(["bad.example.test"])
    other = lab.issue_leaf(["other.example.test"])
    pem = leaf.cert.public_bytes(serialization.Encoding.PEM)
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    pfx = to_legacy_pfx(leaf.key, leaf.cert, "right")
    certs_only_pfx = pkcs12.serialize_key_and_certificates(
        None, None, None, [leaf.cert], BestAvailableEncryption(b"right")
    )
    key_pem = other.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    empty_p7 = (
        b"-----BEGIN PKCS7-----\nMAsGCSqGSIb3DQEHAg==\n-----END PKCS7-----\n"  # ContentInfo only
    )
    files = {
        "empty.cer": b"",
        "blank.pem": b"   \n\n",
        "garbage.bin": b"\x00\x01not a certificate at all",
        "text.txt": b"hello, this is not PEM",
        "truncated.pem": pem[: len(pem) // 2],
        "truncated.der": der[: len(der) - 40],
        "keyonly.pem": key_pem,
        "corrupt.pem": pem.replace(b"M", b"!", 3),
        "empty.p7b": empty_p7,
        "pfx.pfx": pfx,
        "certsonly.pfx": certs_only_pfx,
        "mismatch.pem": pem + key_pem,
        "truncated.pfx": pfx[:200],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "adir").mkdir()
    t = tmp_path
    return [
        ("empty file", t / "empty.cer", None, "empty"),
        ("whitespace only", t / "blank.pem", None, "empty"),
        ("garbage", t / "garbage.bin", None, "not a certificate file"),
        ("plain text", t / "text.txt", None, "not a certificate file"),
        ("truncated PEM", t / "truncated.pem", None, "truncated"),
        ("truncated DER", t / "truncated.der", None, "truncated"),
        ("PEM without certificate", t / "keyonly.pem", None, "no certificate"),
        ("corrupt PEM body", t / "corrupt.pem", None, "damaged"),
        ("p7b without certificates", t / "empty.p7b", None, "PKCS#7"),
        ("PFX missing password", t / "pfx.pfx", None, "no password"),
        ("PFX wrong password", t / "pfx.pfx", "Hunter2!", "wrong PFX password"),
        ("PFX without key", t / "certsonly.pfx", "right", "no private key"),
        ("key does not match", t / "mismatch.pem", None, "does not match"),
        ("truncated PFX", t / "truncated.pfx", "right", "PFX"),
        ("directory", t / "adir", None, "directory"),
        ("missing file", t / "nope.cer", None, "not found"),
    ]


def test_bad_input_gives_typed_errors(tmp_path: Path, lab: LabHierarchy) -> None:
    cases = _bad_cases(tmp_path, lab)
    assert len(cases) >= 12
    for label, path, password, needle in cases:
        with pytest.raises(CertificateLoadError) as info:
            load_file(path, password)
        err = info.value
        assert isinstance(err, ValueError), label
        assert err.path == str(path), label
        assert needle.lower() in str(err).lower(), f"{label}: {err}"
        assert err.hint, f"{label}: no hint in {err}"
        if password:
            assert password not in str(err), label


def test_unreadable_file(unix_socket_path: Path) -> None:
    with pytest.raises(CertificateLoadError, match="not a regular file"):
        load_file(unix_socket_path)


def test_wrong_password_message_never_contains_the_password(lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(["pw.example.test"])
    data = to_legacy_pfx(leaf.key, leaf.cert, "correct horse")
    with pytest.raises(CertificateLoadError) as info:
        load_bytes(data, name="x.pfx", password="battery staple")
    assert "battery" not in str(info.value)
    assert leaf.cert.fingerprint(hashes.SHA256())  # the certificate itself is fine
