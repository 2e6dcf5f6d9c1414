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
from typing import Any

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


def test_plan_through_the_cli_with_ntlm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``SECTIGO_CHAIN_WINRM_AUTH=ntlm`` against an endpoint that takes only Negotiate."""
    with WinRMTestServer(SimulatedHost("broken-r46"), auth="negotiate", record_wire=True) as srv:
        monkeypatch.setenv("LAB_WINRM_PW", srv.password)
        monkeypatch.setenv("SECTIGO_CHAIN_WINRM_AUTH", "ntlm")
        monkeypatch.setenv("SECTIGO_CHAIN_WINRM_CERT_VALIDATION", srv.ca_file)
        code = main(["plan", "--json", "--target", srv.target, "--password-env", "LAB_WINRM_PW"])
        out = capsys.readouterr()
        stats = srv.stats
    assert code == 0, out.err
    assert json.loads(out.out)["plan"]["actions"]
    assert stats.requests["401"] == 2  # the NTLM handshake, then one authenticated connection
    assert stats.pools_opened == 1
    assert srv.password not in out.out + out.err


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


def test_fleet_plan_apply_then_a_no_op_apply_over_winrm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``fleet plan``, ``fleet apply``, ``fleet apply`` again through the CLI against three
    loopback WinRM endpoints, each with its own simulated host and a TLS listener serving
    what that host serves. ``SECTIGO_CHAIN_CATALOG`` names the lab's CA certificates, so the
    run judges the lab chains the way it judges real Sectigo ones on real hosts."""
    from cryptography.hazmat.primitives.serialization import Encoding

    servers = [WinRMTestServer(SimulatedHost("broken-r46")).start() for _ in range(3)]
    listeners = [srv.host.start_tls() for srv in servers]
    lab_pem = tmp_path / "lab-ca.pem"
    lab_pem.write_bytes(
        b"".join(c.public_bytes(Encoding.PEM) for c in servers[0].host.catalog.certificates())
    )
    monkeypatch.setenv("SECTIGO_CHAIN_CATALOG", str(lab_pem))
    hosts = []
    for i, (srv, listener) in enumerate(zip(servers, listeners, strict=True)):
        monkeypatch.setenv(f"LAB_PW_{i}", srv.password)
        ip, port, name = listener.address_for("Default Web Site")
        hosts.append(
            f'[[hosts]]\nname = "web{i}"\ntarget = "{srv.target}"\n'
            f'password_env = "LAB_PW_{i}"\nwinrm_auth = "basic"\n'
            f"winrm_cert_validation = {json.dumps(srv.ca_file)}\n"
            f'check = {{ host = "{ip}", port = {port}, servername = "{name}" }}\n'
        )
    inventory = tmp_path / "fleet.toml"
    inventory.write_text("version = 1\n\n" + "\n".join(hosts), encoding="utf-8")
    runs: dict[str, tuple[int, dict[str, Any], list[list[str | None]]]] = {}

    def state() -> list[dict[str, Any]]:  # the host's state, without the simulator's counters
        return [{k: v for k, v in srv.host.snapshot().items() if k != "_sim"} for srv in servers]

    before = state()
    output = ""
    try:
        for run in ("plan", "apply", "again"):
            seen = [len(srv.received) for srv in servers]
            mode = "plan" if run == "plan" else "apply"
            extra = [] if run == "plan" else ["--yes", "--journal-dir", str(tmp_path / "j")]
            report = tmp_path / f"{run}.json"
            code = main(["fleet", mode, str(inventory), "--json", "--report", str(report), *extra])
            out = capsys.readouterr()
            output += out.out + out.err + report.read_text(encoding="utf-8")
            templates = [
                [name for r in s.received[n:] for name in r.names]
                for s, n in zip(servers, seen, strict=True)
            ]
            runs[run] = (code, json.loads(out.out), templates)
            if run == "plan":
                assert state() == before  # plan changed nothing
    finally:
        for listener in listeners:
            listener.close()
        for srv in servers:
            srv.stop()
    code, planned, templates = runs["plan"]
    assert code == 0, planned
    assert [h["status"] for h in planned["hosts"]] == ["planned"] * 3
    assert all(
        [a["kind"] for a in h["actions"]]
        == ["import_cross_sign", "remove_self_signed_root", "restart"]
        for h in planned["hosts"]
    )
    code, applied, templates = runs["apply"]
    assert code == 0, applied
    assert [h["status"] for h in applied["hosts"]] == ["applied"] * 3
    assert all(h["verify"] == "pass" and h["after"]["verdict"] == "pass" for h in applied["hosts"])
    assert all("import_certificate" in t and "restart" in t for t in templates)
    assert all(now != old for now, old in zip(state(), before, strict=True))
    code, again, templates = runs["again"]
    assert code == 0, again
    assert [h["status"] for h in again["hosts"]] == ["unchanged"] * 3
    assert not any(h["changed"] for h in again["hosts"])
    # the second run only looked: no template that changes anything went over the wire
    assert all(set(t) <= {"observe", "verify_host"} for t in templates), templates
    assert all(srv.password not in output for srv in servers)
    for journal in (tmp_path / "j").rglob("*"):
        if journal.is_file():
            assert servers[0].password not in journal.read_text(encoding="utf-8", errors="replace")


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


def test_demo_over_winrm_without_the_testing_extra_says_what_to_install() -> None:
    # a process in which psrpcore cannot be imported, as after `pip install sectigo-chain`
    code = (
        "import sys; sys.modules['psrpcore'] = None\n"
        "from sectigo_chain.cli.main import main\n"
        "sys.exit(main(['demo', '--over', 'winrm']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTIGO_CHAIN_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert 'pip install "sectigo-chain[testing]"' in done.stderr
    assert "psrpcore" in done.stderr
    assert "Traceback" not in done.stderr
