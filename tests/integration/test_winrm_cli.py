"""``winrm://user@127.0.0.1:PORT`` through the CLI (plan, apply, rollback, fleet) and
``demo --over winrm``, against the loopback WinRM endpoint with a simulated host behind it.

The CLI judges with the real Sectigo catalog (the simulated host holds lab certificates), so
its plan over WinRM is the one for a host that lacks the real cross-sign: import it, restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.testing.winrm import WinRMTestServer

# Sets environment variables while server threads run: see the marker's reason (pyproject).
pytestmark = pytest.mark.environ_race

pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WinRMTestServer]:
    with WinRMTestServer(SimulatedHost("broken-r46")) as srv:
        monkeypatch.setenv("LAB_WINRM_PW", srv.password)
        monkeypatch.setenv("SECTIGO_CHAIN_WINRM_AUTH", "basic")
        monkeypatch.setenv("SECTIGO_CHAIN_WINRM_CERT_VALIDATION", srv.ca_file)
        yield srv


def test_plan_apply_rollback_through_the_cli(
    server: WinRMTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = server.host.snapshot()
    target = ["--target", server.target, "--password-env", "LAB_WINRM_PW"]
    assert main(["plan", "--json", *target]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert [a["kind"] for a in planned["plan"]["actions"]] == ["import_cross_sign", "restart"]
    mark = len(server.received)
    code = main(["apply", "--json", "--yes", "--journal-dir", str(tmp_path), *target])
    applied = json.loads(capsys.readouterr().out)
    assert code == 0, applied
    # the apply command: observe (the plan's, also apply's "before"), then every action and
    # the re-observe in one pipeline
    assert [r.template for r in server.received[mark:]] == ["observe", "apply_plan"]
    assert applied["changed"] is True
    assert server.host.snapshot() != before
    journal = applied["journal"]
    assert main(["rollback", "--json", journal, "--password-env", "LAB_WINRM_PW"]) == 0
    capsys.readouterr()
    after = server.host.snapshot()
    assert {k: v for k, v in after.items() if k != "_sim"} == {
        k: v for k, v in before.items() if k != "_sim"
    }
    templates = [r.template for r in server.received]
    assert templates[0] == "observe"
    assert templates.count("apply_plan") == 1  # every action of the plan in one pipeline
    assert "import_certificate" in server.host.calls
    assert None not in templates
    assert server.password not in json.dumps([planned, applied])


def test_a_wrong_password_through_the_cli_is_exit_3_and_no_secret(
    server: WinRMTestServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAB_WINRM_PW", "Wrong-Passw0rd-XYZ")
    code = main(["plan", "--target", server.target, "--password-env", "LAB_WINRM_PW"])
    out = capsys.readouterr()
    assert code == 3
    assert "Wrong-Passw0rd-XYZ" not in out.out + out.err
    assert "AuthenticationError" in out.err


def test_a_bad_auth_variable_is_a_usage_error(
    server: WinRMTestServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECTIGO_CHAIN_WINRM_AUTH", "telnet")
    code = main(["plan", "--target", server.target, "--password-env", "LAB_WINRM_PW"])
    assert code == 2
    assert "SECTIGO_CHAIN_WINRM_AUTH" in capsys.readouterr().err


def test_fleet_plan_over_winrm_for_several_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    servers = [WinRMTestServer(SimulatedHost("broken-r46")).start() for _ in range(3)]
    try:
        hosts = []
        for i, srv in enumerate(servers):
            monkeypatch.setenv(f"LAB_PW_{i}", srv.password)
            hosts.append(
                f'[[hosts]]\nname = "web{i}"\ntarget = "{srv.target}"\n'
                f'password_env = "LAB_PW_{i}"\nwinrm_auth = "basic"\n'
                f"winrm_cert_validation = {json.dumps(srv.ca_file)}\n"
            )
        inventory = tmp_path / "fleet.toml"
        inventory.write_text("version = 1\n\n" + "\n".join(hosts), encoding="utf-8")
        code = main(["fleet", "plan", str(inventory), "--json"])
        doc = json.loads(capsys.readouterr().out)
    finally:
        for srv in servers:
            srv.stop()
    assert code == 0, doc
    assert all(srv.stats.pipelines >= 1 for srv in servers)
    assert all(srv.stats.pools_opened == 1 for srv in servers)


def test_demo_over_winrm_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--over", "winrm", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["over"] == "winrm"
    assert doc["verdict"] == "pass"
    assert doc["target"].startswith("winrm://lab-admin@127.0.0.1:")
    winrm = doc["winrm"]
    assert winrm["pools_opened"] == 1
    assert winrm["pipelines"] == 3  # observe, apply_plan, verify_host (issue 12, point 3)
    print(
        f"\ndemo over WinRM: {winrm['pipelines']} pipelines, {winrm['requests']} WSMan "
        f"requests {winrm['requests_by_action']}"
    )


def test_demo_over_winrm_as_a_subprocess() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTIGO_CHAIN_")}
    done = subprocess.run(
        [sys.executable, "-m", "sectigo_chain", "demo", "--over", "winrm"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Every script went over WinRM" in done.stdout
    assert "Over WinRM:" in done.stdout
    assert "DEBUG" not in done.stderr
