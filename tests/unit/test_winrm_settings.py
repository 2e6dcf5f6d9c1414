"""WinRM settings (issue 11.8): auth choices, certificate auth, CA-bundle validation, and the
environment variables command-line targets read."""

from __future__ import annotations

from pathlib import Path

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.winrm import (
    AUTH_METHODS,
    WinRMSettings,
    parse_winrm_target,
    winrm_options_from_env,
)


def test_every_pypsrp_auth_is_accepted_and_others_refused() -> None:
    assert set(AUTH_METHODS) == {"negotiate", "ntlm", "kerberos", "basic", "credssp", "certificate"}
    for auth in AUTH_METHODS:
        if auth != "certificate":
            assert WinRMSettings(host="h", auth=auth).auth == auth
    with pytest.raises(InputError, match="unknown WinRM auth 'telnet'"):
        WinRMSettings(host="h", auth="telnet")


def test_message_encryption_is_one_of_pypsrps_three_values() -> None:
    assert WinRMSettings(host="h").encryption == "auto"
    for value in ("auto", "always", "never"):
        assert WinRMSettings(host="h", encryption=value).encryption == value
    with pytest.raises(InputError, match="unknown WinRM encryption 'sometimes'"):
        WinRMSettings(host="h", encryption="sometimes")


def test_certificate_auth_needs_both_pem_paths() -> None:
    with pytest.raises(InputError, match="certificate_pem and certificate_key_pem"):
        WinRMSettings(host="h", auth="certificate", certificate_pem="c.pem")
    s = WinRMSettings(
        host="h", auth="certificate", certificate_pem="c.pem", certificate_key_pem="k.pem"
    )
    assert s.certificate_key_pem == "k.pem"


def test_environment_chooses_auth_and_validation(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")
    env = {
        "SECTIGO_CHAIN_WINRM_AUTH": "basic",
        "SECTIGO_CHAIN_WINRM_CERT_VALIDATION": str(bundle),
    }
    options = winrm_options_from_env(env)
    assert options == {"auth": "basic", "cert_validation": str(bundle)}
    settings = parse_winrm_target("winrm://u@h:5986", **options)
    assert settings.cert_validation == str(bundle)
    assert winrm_options_from_env({"SECTIGO_CHAIN_WINRM_CERT_VALIDATION": "false"}) == {
        "cert_validation": False
    }
    assert winrm_options_from_env({}) == {}


def test_environment_mistakes_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="SECTIGO_CHAIN_WINRM_AUTH"):
        winrm_options_from_env({"SECTIGO_CHAIN_WINRM_AUTH": "kerberoz"})
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(InputError, match="neither true/false nor"):
        winrm_options_from_env({"SECTIGO_CHAIN_WINRM_CERT_VALIDATION": missing})


def test_the_password_is_never_in_the_repr() -> None:
    from pydantic import SecretStr

    s = WinRMSettings(host="h", username="u", password=SecretStr("Sup3r-Secret"))
    assert "Sup3r-Secret" not in repr(s)
