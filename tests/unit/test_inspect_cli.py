"""``sectigo-chain inspect``: text, JSON, passwords, errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from sectigo_chain.cli.main import main
from sectigo_chain.testing.lab import LabHierarchy

REPO = Path(__file__).resolve().parents[2]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, object]]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_inspect_every_real_file_json(
    sectigo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(str(p) for p in sectigo_dir.glob("*.pem"))
    code, doc = _json(capsys, ["inspect", "--json", *files])
    assert code == 0
    entries = doc["files"]
    assert isinstance(entries, list)
    assert len(entries) == 15
    by_name = {Path(f["path"]).name: f["certificates"][0] for f in entries}
    r46 = by_name["r46-root-selfsigned.pem"]
    assert r46["catalog"] == {
        "name": "Sectigo R46 (self-signed root)",
        "role": "self_signed_root",
        "store": "LocalMachine\\Root",
        "remove_for_iis_fix": True,
    }
    assert r46["self_signed"] is True
    assert r46["key"] == {"type": "RSA", "size": 4096}
    cross = by_name["r46-cross-usertrust-rsa.pem"]
    assert cross["catalog"]["role"] == "cross_signed_root"
    assert cross["catalog"]["store"] == "LocalMachine\\CA"
    assert cross["thumbprint"] == "2B18947A6A9FC7764FD8B5FB18A863B0C6DAC24F"
    assert by_name["ca-dv-e36.pem"]["key"] == {"type": "EC", "curve": "secp256r1"}
    for name, cert in by_name.items():
        assert cert["catalog"] is not None, name
        assert cert["needs_cross_sign"] is None, name  # CAs: no leaf advice
        for field in ("subject", "issuer", "thumbprint", "sha256", "not_before", "not_after"):
            assert cert[field], (name, field)


def test_inspect_lab_pfx_names_real_cross_sign(
    tmp_path: Path,
    lab: LabHierarchy,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for family, thumb in (
        ("RSA", "2B18947A6A9FC7764FD8B5FB18A863B0C6DAC24F"),
        ("ECC", "3F969989F5310E9C050DFFD7ABC15530E3C13AA0"),
    ):
        leaf = lab.issue_leaf([f"{family.lower()}.example.test"], family=family)  # type: ignore[arg-type]
        pfx = pkcs12.serialize_key_and_certificates(
            b"site", leaf.key, leaf.cert, [leaf.issuer.cert], BestAvailableEncryption(b"p4ss")
        )
        path = tmp_path / f"{family}.pfx"
        path.write_bytes(pfx)
        monkeypatch.setenv("PFX_PW", "p4ss")
        code, doc = _json(capsys, ["inspect", "--json", "--password-env", "PFX_PW", str(path)])
        assert code == 0
        (entry,) = doc["files"]  # type: ignore[misc]
        assert entry["format"] == "pkcs12"
        assert entry["has_private_key"] is True
        assert entry["pfx_protection"]["kind"] == "aes"
        assert entry["pfx_protection"]["legacy_compatible"] is False
        leaf_doc = entry["certificates"][0]
        assert leaf_doc["is_ca"] is False
        assert leaf_doc["needs_cross_sign"]["thumbprint"] == thumb
        assert "p4ss" not in json.dumps(doc)


def test_inspect_text_output(
    sectigo_dir: Path, lab: LabHierarchy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf = lab.issue_leaf(["text.example.test"])
    path = tmp_path / "leaf.cer"
    path.write_bytes(leaf.cert.public_bytes(serialization.Encoding.DER))
    assert main(["inspect", str(sectigo_dir / "e46-root-selfsigned.pem"), str(path)]) == 0
    out = capsys.readouterr().out
    assert "remove from LocalMachine\\Root for the IIS fix" in out
    assert "2B18947A6A9FC7764FD8B5FB18A863B0C6DAC24F" in out
    assert "belongs in  LocalMachine\\Root" in out


def test_inspect_bad_files_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.cer").write_bytes(b"")
    code = main(["inspect", str(tmp_path / "empty.cer"), str(tmp_path / "missing.pem")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "empty.cer: file is empty" in err[0]
    assert "missing.pem: file not found" in err[1]
    assert "Traceback" not in "\n".join(err)


def test_inspect_unset_password_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.pop("NO_SUCH_VAR_X", None)
    code = main(["inspect", "--password-env", "NO_SUCH_VAR_X", str(tmp_path / "a.pfx")])
    assert code == 2
    assert "NO_SUCH_VAR_X is not set" in capsys.readouterr().err


def test_inspect_subprocess_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.p7b"
    bad.write_bytes(b"\x30\x82\xff\xff garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "sectigo_chain", "inspect", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "garbage.p7b" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inspect"])
    assert info.value.code == 2


def test_closed_pipe_is_quiet(sectigo_dir: Path) -> None:
    """`sectigo-chain inspect ... | head -1`: no traceback when the reader goes away."""
    # Far more output than a pipe buffer holds, so the writer really meets the closed pipe.
    files = [str(p) for p in sorted(sectigo_dir.glob("*.pem"))] * 20
    proc = subprocess.Popen(
        [sys.executable, "-m", "sectigo_chain", "inspect", *files],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away after one line
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err
    assert proc.returncode in (0, 141)
