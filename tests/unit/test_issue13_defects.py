"""Regression tests of issue 13's defects 3-10 and 14 (an adversarial probe of ``main``).

Each test failed on the code before its fix. Hang bounds are pytest-timeout guards far above
what the fixed code needs (never timed asserts): the unfixed code took minutes to hours.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import hostile
import pytest
from asn1crypto import keys as akeys
from asn1crypto import pkcs12 as apkcs12
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from sectigo_chain.cli.commands._common import read_secret
from sectigo_chain.cli.main import main
from sectigo_chain.errors import CertificateLoadError, ConnectionFailed, InputError
from sectigo_chain.hosts.targets import open_target, parse_target
from sectigo_chain.hosts.winrm import WinRMExecutor, parse_winrm_target
from sectigo_chain.logs import clear_secrets, mask_text
from sectigo_chain.templates.render import render
from sectigo_chain.testing.lab import LabHierarchy, make_certificate, new_key
from sectigo_chain.x509.certs import cert_info, signed_by
from sectigo_chain.x509.load import MAX_CERTIFICATES, load_bytes, load_file

UTC = dt.timezone.utc
AT = dt.datetime(2026, 3, 1, 12, tzinfo=UTC)
PASSWORD = "Zq7-winrm-S3cret!"


@pytest.fixture(scope="module")
def lab() -> LabHierarchy:
    return LabHierarchy.create(at=AT)


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def _forms(secret: str, user: str = "administrator") -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.b64encode(f"{user}:{secret}".encode()).decode(),
        secret.encode("utf-16-le").decode("latin-1"),
        base64.b64encode(secret.encode("utf-16-le")).decode(),
        raw.hex(),
        raw.hex().upper(),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    ]


# --------------------------------------------------------------------- 3: derived secret forms


@pytest.mark.parametrize("index", range(9))
def test_mask_text_masks_every_derived_form(index: int) -> None:
    form = _forms(PASSWORD)[index]
    masked = mask_text(f"401 body: Authorization: Basic {form}\r\nmore", extra=[PASSWORD])
    for leaked in _forms(PASSWORD):
        assert leaked not in masked
    assert "401 body: Authorization: Basic" in masked


class _EchoingEndpoint(Exception):
    """What requests/pypsrp raise when a proxy answers with an error page echoing the request."""


def test_winrm_error_echoing_authorization_is_masked_and_bounded() -> None:
    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()

    def factory(settings: object) -> object:
        raise _EchoingEndpoint(
            "proxy error: request was GET /wsman\r\nAuthorization: Basic " + basic + "x" * 10_000
        )

    settings = parse_winrm_target("winrm://admin@host", password=SecretStr(PASSWORD))
    executor = WinRMExecutor(settings, session_factory=factory)
    with pytest.raises(ConnectionFailed) as info:
        executor.run(render("observe", {}), timeout=5)
    text = str(info.value)
    assert "Authorization: Basic" in text
    assert all(form not in text for form in _forms(PASSWORD, "admin"))
    assert len(text) < 1000


def test_fleet_error_message_is_masked_and_bounded() -> None:
    from sectigo_chain.fleet.host import _error
    from sectigo_chain.fleet.inventory import HostSecrets

    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    exc = ConnectionFailed("echo: Basic " + basic + " " + "y" * 100_000)
    _, error = _error(exc, HostSecrets(SecretStr(PASSWORD), None))
    assert basic not in error.message
    assert all(form not in error.message for form in _forms(PASSWORD, "admin"))
    assert len(error.message) <= 2000


# --------------------------------------------------------------------- 4: password in a target


@pytest.mark.parametrize(
    "target", ["winrm://admin:Hunter2pw@web01", "WINRM://dom\\admin:Hunter2pw@web01:5986/"]
)
def test_password_in_winrm_target_is_refused_without_echo(target: str) -> None:
    with pytest.raises(InputError) as info:
        parse_target(target)
    assert "Hunter2pw" not in str(info.value)
    assert "--password-env" in str(info.value)
    with pytest.raises(InputError):
        open_target(target)


def test_cli_refuses_password_in_target(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--target", "winrm://admin:Hunter2pw@web01"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Hunter2pw" not in out + err
    assert len(err.strip().splitlines()) == 1


def test_inventory_refuses_password_in_target() -> None:
    from sectigo_chain.fleet.inventory import parse_inventory

    doc = {"hosts": [{"name": "web01", "target": "winrm://admin:Hunter2pw@web01"}]}
    with pytest.raises(InputError) as info:
        parse_inventory(doc)
    assert "Hunter2pw" not in str(info.value)
    assert "password" in str(info.value)


# --------------------------------------------------------------------- 5: PEM linear


@pytest.mark.timeout(30)  # the quadratic reader: 400 KB took 33 s, this 3 MB about 30 min
def test_pem_with_many_begin_lines_is_refused_quickly() -> None:
    data = b"-----BEGIN CERTIFICATE-----\n" * 110_000
    with pytest.raises(CertificateLoadError, match="BEGIN line without its END"):
        load_bytes(data)


@pytest.mark.timeout(30)
def test_profile_file_with_many_begin_lines_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "store.pem"
    bad.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n" * 60_000)
    assert main(["check", "127.0.0.1:1", "--profile", f"mine={bad}"]) == 2
    assert "BEGIN line without its END" in capsys.readouterr().err


def test_pem_reader_still_reads_bundles(lab: LabHierarchy) -> None:
    pem = b"".join(
        c.public_bytes(serialization.Encoding.PEM)
        for c in (lab.r36.cert, lab.r46_cross, lab.usertrust_rsa.cert)
    )
    assert len(load_bytes(b"junk before\n" + pem + b"trailing\n").certificates) == 3


# --------------------------------------------------------------------- 6: KDF iteration caps


def _pfx(lab: LabHierarchy) -> bytes:
    leaf = lab.issue_leaf(at=AT)
    return serialization.pkcs12.serialize_key_and_certificates(
        b"x", leaf.key, leaf.cert, None, serialization.BestAvailableEncryption(b"pw")
    )


@pytest.mark.timeout(30)  # 2^31-1 MAC iterations: minutes before the fix
def test_pfx_with_huge_mac_iterations_is_refused_before_deriving(lab: LabHierarchy) -> None:
    pfx = apkcs12.Pfx.load(_pfx(lab))
    pfx["mac_data"]["iterations"] = 2**31 - 1
    with pytest.raises(CertificateLoadError, match="iterations"):
        load_bytes(pfx.dump(force=True), password="pw")


@pytest.mark.timeout(30)  # about 12 min before the fix
def test_pkcs8_key_with_huge_pbkdf2_count_is_refused(lab: LabHierarchy) -> None:
    leaf = lab.issue_leaf(at=AT)
    der = leaf.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    info = akeys.EncryptedPrivateKeyInfo.load(der)
    info["encryption_algorithm"]["parameters"]["key_derivation_func"]["parameters"][
        "iteration_count"
    ] = 2**31 - 1
    body = base64.encodebytes(info.dump(force=True))
    pem = (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    data = leaf.cert.public_bytes(serialization.Encoding.PEM) + pem
    with pytest.raises(CertificateLoadError, match="iterations"):
        load_bytes(data, password="pw")


def test_ordinary_pfx_still_loads(lab: LabHierarchy) -> None:
    assert load_bytes(_pfx(lab), password="pw").key is not None


# --------------------------------------------------------------------- 7: password files


@pytest.mark.timeout(20)  # blocked forever before the fix
def test_password_file_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_secret(None, str(fifo), "PFX password")


@pytest.mark.timeout(20)  # read to a MemoryError before the fix
def test_password_file_dev_zero_is_refused() -> None:
    with pytest.raises(InputError, match="not a regular file"):
        read_secret(None, "/dev/zero", "PFX password")


def test_password_file_too_large_and_not_utf8(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"a" * 200_000)
    with pytest.raises(InputError, match="one line"):
        read_secret(None, str(big), "PFX password")
    latin = tmp_path / "latin1"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_secret(None, str(latin), "PFX password")
    good = tmp_path / "good"
    good.write_text("s3cret-pw\nignored\n", encoding="utf-8")
    assert read_secret(None, str(good), "PFX password") == "s3cret-pw"


def test_cli_non_utf8_password_file_exits_2_one_line(
    tmp_path: Path, lab: LabHierarchy, capsys: pytest.CaptureFixture[str]
) -> None:
    pfx = tmp_path / "site.pfx"
    pfx.write_bytes(_pfx(lab))
    latin = tmp_path / "pw.txt"
    latin.write_bytes(b"\xff\xfe\n")
    assert main(["inspect", str(pfx), "--password-file", str(latin)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


# --------------------------------------------------------------------- 8: lazily parsed fields


def _hostile_certs(lab: LabHierarchy) -> dict[str, bytes]:
    rsa, ecc = lab.self_signed_root("RSA"), lab.self_signed_root("ECC")
    return {
        "duplicate-extension": hostile.duplicate_extension(rsa.cert, rsa.key),
        "self-named-bad-rsa-key": hostile.bad_key(rsa.cert),
        "self-named-bad-ec-key": hostile.bad_key(ecc.cert),
        "bad-utf8string": hostile.bad_string_subject(lab.r36.cert, 0x0C),
        "bad-teletexstring": hostile.bad_string_subject(lab.r36.cert, 0x14),
    }


@pytest.mark.parametrize(
    "case",
    [
        "duplicate-extension",
        "self-named-bad-rsa-key",
        "self-named-bad-ec-key",
        "bad-utf8string",
        "bad-teletexstring",
    ],
)
def test_lazily_damaged_certificate_is_a_load_error(lab: LabHierarchy, case: str) -> None:
    der = _hostile_certs(lab)[case]
    with pytest.raises(CertificateLoadError, match="damaged"):
        load_bytes(der, name=case)
    pem = (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    )
    with pytest.raises(CertificateLoadError, match="damaged"):
        load_bytes(pem, name=case)


def test_signed_by_does_not_raise_on_a_bad_key(lab: LabHierarchy) -> None:
    cert = x509.load_der_x509_certificate(hostile.bad_key(lab.self_signed_root("RSA").cert))
    assert signed_by(cert, cert) is False


def test_cert_info_of_a_raw_certificate_with_a_duplicate_extension(lab: LabHierarchy) -> None:
    root = lab.self_signed_root("RSA")
    cert = x509.load_der_x509_certificate(hostile.duplicate_extension(root.cert, root.key))
    info = cert_info(cert)  # raised x509.DuplicateExtension before
    assert info.ski is None
    assert info.is_ca is False


def test_pkcs7_of_type_data_is_a_load_error() -> None:
    with pytest.raises(CertificateLoadError, match="not a certificate bundle"):
        load_bytes(hostile.pkcs7_data())


def test_one_bad_file_does_not_stop_a_multi_file_inspect(
    tmp_path: Path, lab: LabHierarchy, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.cer"
    bad.write_bytes(_hostile_certs(lab)["duplicate-extension"])
    good = tmp_path / "good.cer"
    good.write_bytes(lab.r36.cert.public_bytes(serialization.Encoding.DER))
    assert main(["inspect", str(bad), str(good), "--json"]) == 2
    out, err = capsys.readouterr()
    files = json.loads(out)["files"]
    assert "damaged" in files[0]["error"]
    assert files[1]["certificates"]
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------- 10: terminal spoofing


def test_hostile_common_name_cannot_forge_terminal_lines(
    tmp_path: Path, lab: LabHierarchy, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "evil\x1b]0;owned\x07\x1b[2J\nfindings: none\r"
    key = new_key("ECC")
    cert = make_certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, evil)]),
        public_key=key.public_key(),
        issuer=lab.r36.cert.subject,
        issuer_key=lab.r36.key,
        not_before=AT - dt.timedelta(days=1),
        not_after=AT + dt.timedelta(days=30),
        ca=False,
    )
    path = tmp_path / "evil.cer"
    path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\r" not in out
    assert not any(line.startswith("findings: none") for line in out.splitlines())
    assert "\\x1b]0;owned" in out
    info = cert_info(cert)
    assert info.subject_cn == evil  # the data itself is unchanged (JSON escapes it)


# --------------------------------------------------------------------- 14: bounds


def test_file_name_with_newline_gives_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "no\nsuch\nfile.cer"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "no\\nsuch\\nfile.cer" in err


@pytest.mark.timeout(30)  # rendered 353 MB of script in 1.5 GB before the fix
def test_plan_file_with_20000_actions_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    action = {"template": "restart", "params": {}}
    plan.write_text(json.dumps({"actions": [action] * 20_000}), encoding="utf-8")
    assert main(["render", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "at most" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.timeout(60)  # 8,000 certificates: 18 s of inspect before the fix
def test_bundle_with_too_many_certificates_is_refused(lab: LabHierarchy, tmp_path: Path) -> None:
    pem = lab.r36.cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "bundle.pem"
    path.write_bytes(pem * (MAX_CERTIFICATES + 1))
    with pytest.raises(CertificateLoadError, match=f"more than {MAX_CERTIFICATES}"):
        load_file(path)
    path.write_bytes(pem * 3)
    assert len(load_file(path).certificates) == 3


def test_plan_text_escapes_names_in_reasons() -> None:
    from sectigo_chain.state.plan_models import Action, Plan

    reason = "import CN=evil\x1b]0;owned\x07\nfindings: none"
    plan = Plan(actions=(Action(kind="restart", reason=reason, template="restart", params={}),))
    text = str(plan)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert not any(line.startswith("findings: none") for line in text.splitlines())
    assert "\\x1b]0;owned" in text
