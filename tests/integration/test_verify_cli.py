"""``sectigo-chain verify`` against simulated targets (their loopback TLS listener)."""

from __future__ import annotations

import argparse
import json

import pytest

from sectigo_chain.cli.commands.verify import _endpoint
from sectigo_chain.cli.main import main


def test_verify_stale_cache_climbs_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--target", "sim://stale-cache", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["verdict"] == "pass"
    assert doc["rungs_tried"] == ["binding", "iisreset"]
    assert doc["fixed_by"] == "iisreset"
    assert doc["endpoint"].startswith("127.0.0.1:")


def test_verify_no_ladder_reports_the_stale_chain(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--target", "sim://stale-cache", "--no-ladder"])
    out = capsys.readouterr().out
    assert code == 1
    assert "restart should help" in out
    assert "ladder" not in out.split("note:")[0]


def test_verify_broken_host_fails_without_restarting(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--target", "sim://broken-r46", "--profile", "legacy", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["verdict"] == "fail"
    assert doc["rungs_tried"] == []
    assert doc["served"]["profiles"]["legacy"]["valid"] is False
    assert list(doc["served"]["profiles"]) == ["legacy"]


def test_verify_no_tls_and_bad_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--target", "sim://fixed", "--no-tls"]) == 0
    assert "NOT checked" in capsys.readouterr().out
    assert main(["verify", "--target", "sim://fixed", "--site", "Nope"]) == 2
    assert "Nope" in capsys.readouterr().err


def _args(**kw: object) -> argparse.Namespace:
    base = {"servername": None, "hostname": None, "endpoint": None, "no_tls": False, "port": 443}
    return argparse.Namespace(**{**base, **kw})


def test_endpoint_defaults_for_real_targets() -> None:
    not_sim = object()
    winrm = _args(target="winrm://admin@web01.example.test:5986", hostname="www.example.test")
    assert _endpoint(winrm, not_sim) == ("web01.example.test", 443, "www.example.test")
    v6 = _args(target="winrm://[2001:db8::1]:5985", port=8443)
    assert _endpoint(v6, not_sim) == ("2001:db8::1", 8443, None)
    local = _args(target="local")
    assert _endpoint(local, not_sim) == ("localhost", 443, None)
    given = _args(target="local", endpoint="10.0.0.5:4443", servername="shop.example.test")
    assert _endpoint(given, not_sim) == ("10.0.0.5", 4443, "shop.example.test")
    assert _endpoint(_args(target="local", no_tls=True), not_sim) is None
