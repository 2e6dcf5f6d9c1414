"""``sectigo-chain fleet``: confirmation, reports, exit codes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.fleet.report import FleetReport


def _write(tmp_path: Path, hosts: list[str]) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text("version = 1\n\n" + "\n".join(hosts), encoding="utf-8")
    return path


def _sim(name: str, extra: str = "") -> str:
    return f'[[hosts]]\nname = "{name}"\ntarget = "sim://broken-r46"\n{extra}\n'


def test_apply_asks_first_and_changes_nothing_without_yes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    inv = _write(tmp_path, [_sim("a")])
    assert main(["fleet", "apply", str(inv)]) == 2
    assert "not confirmed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.toml"]


def test_apply_writes_json_and_html_and_exits_4_when_a_host_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _write(tmp_path, [_sim("a"), _sim("b", "sim_faults = { fail_action = 1 }"), _sim("c")])
    report, page = tmp_path / "r.json", tmp_path / "r.html"
    code = main(["fleet", "apply", str(inv), "--yes", "--json", "--concurrency", "1",
                 "--report", str(report), "--html", str(page),
                 "--journal-dir", str(tmp_path / "j")])  # fmt: skip
    out = capsys.readouterr()
    assert code == 4
    doc = json.loads(out.out)
    assert [h["status"] for h in doc["hosts"]] == ["applied", "rolled_back", "skipped"]
    assert doc["counts"] == {"applied": 1, "rolled_back": 1, "skipped": 1}
    assert FleetReport.load(report).to_json() == doc
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"--resume {report}" in out.err


def test_check_exits_3_when_every_host_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    host = (
        '[[hosts]]\nname = "w"\ntarget = "winrm://w.corp.test"\n'
        f'check = {{ host = "127.0.0.1", port = {port} }}\n'
    )
    assert main(["fleet", "check", str(_write(tmp_path, [host])), "-q"]) == 3
    assert "w " in capsys.readouterr().out


def test_plan_with_a_missing_variable_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEET_CLI_PW", raising=False)
    host = '[[hosts]]\nname = "w"\ntarget = "winrm://w.corp.test"\npassword_env = "FLEET_CLI_PW"\n'
    assert main(["fleet", "plan", str(_write(tmp_path, [host]))]) == 2
    err = capsys.readouterr().err
    assert "host w" in err
    assert "FLEET_CLI_PW" in err


def test_resume_needs_a_report_of_the_same_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _write(tmp_path, [_sim("a")])
    report = tmp_path / "plan.json"
    assert main(["fleet", "plan", str(inv), "-q", "--report", str(report)]) == 0
    code = main(["fleet", "apply", str(inv), "--yes", "--resume", str(report)])
    assert code == 2
    assert "is a fleet plan report" in capsys.readouterr().err


# Sets an environment variable while a TLS listener's threads run (see the marker).
@pytest.mark.environ_race
def test_fleet_check_judges_a_tls_only_host_with_the_catalog_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host with only a ``check`` endpoint (no target) is judged with the catalog of
    ``SECTIGO_CHAIN_CATALOG``, as a host reached through an executor is: the lab's fixed chain
    passes with the lab catalog and is not judged a Sectigo chain without it."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from sectigo_chain.hosts.sim.host import SimulatedHost

    host = SimulatedHost("fixed")
    listener = host.start_tls()
    try:
        ip, port, name = listener.address_for("Default Web Site")
        lab_pem = tmp_path / "lab-ca.pem"
        lab_pem.write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in host.catalog.certificates())
        )
        inventory = tmp_path / "fleet.toml"
        inventory.write_text(
            "version = 1\n\n"
            '[[hosts]]\nname = "web1"\ntarget = "winrm://web1.corp.test"\n'  # never contacted
            f'check = {{ host = "{ip}", port = {port}, servername = "{name}" }}\n',
            encoding="utf-8",
        )
        verdicts = {}
        for label, env in (("lab", str(lab_pem)), ("real", None)):
            if env is None:
                monkeypatch.delenv("SECTIGO_CHAIN_CATALOG", raising=False)
            else:
                monkeypatch.setenv("SECTIGO_CHAIN_CATALOG", env)
            main(["fleet", "check", str(inventory), "--json"])
            out = capsys.readouterr()
            (row,) = json.loads(out.out)["hosts"]
            verdicts[label] = row["before"]
    finally:
        listener.close()
        host.close()
    assert verdicts["lab"]["verdict"] == "pass", verdicts["lab"]
    assert verdicts["real"]["verdict"] != "pass", verdicts["real"]
