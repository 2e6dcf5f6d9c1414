"""Rehearsals that outlive one task: ``run_task`` (what the Ansible ``chain_fix`` runs) against
a loopback WinRM endpoint judged with the pinned lab catalog, and against ``sim://`` hosts whose
state is kept in a file (``sim://NAME?state=FILE``): plan changes nothing, apply fixes, a second
apply is a no-op, each run in a fresh process (the CLI) or a fresh host object.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sectigo_chain.fleet.task import run_task
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.testing.lab import default_lab

REPO = Path(__file__).resolve().parents[2]


def _stores(host: SimulatedHost) -> dict[str, object]:
    """What the host holds (stores, sites, HTTP.sys), without the served-chain cache that the
    first TLS handshake fills."""
    return {k: v for k, v in host.snapshot().items() if k != "_sim"}


def test_a_loopback_winrm_host_is_fixed_once_then_left_alone(tmp_path: Path) -> None:
    pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")
    from sectigo_chain.testing.winrm import WinRMTestServer

    host = SimulatedHost("broken-e46")
    with WinRMTestServer(host) as server, host.start_tls() as listener:
        ip, port, servername = listener.address_for("Default Web Site")
        entry = {
            "name": "web01",
            "target": server.target,
            "winrm_auth": "basic",
            "winrm_cert_validation": server.ca_file,
            "check": {"host": ip, "port": port, "servername": servername},
        }
        runs = {}
        for label, mode in (("plan", "plan"), ("apply", "apply"), ("again", "apply")):
            before = _stores(host)
            runs[label] = run_task(
                entry, mode, winrm_password=server.password, journal_dir=tmp_path,
                catalog=default_lab().catalog,
            )  # fmt: skip
            runs[label]["moved"] = _stores(host) != before
        actions = [t for t in server.stats.templates if t != "observe"]
    plan, apply, again = runs["plan"], runs["apply"], runs["again"]
    assert (plan["status"], plan["changed"], plan["moved"]) == ("planned", True, False)
    kinds = [a["kind"] for a in plan["row"]["actions"]]
    assert kinds == ["import_cross_sign", "remove_self_signed_root", "restart"]
    assert (apply["status"], apply["changed"], apply["moved"]) == ("applied", True, True), apply
    assert apply["row"]["after"]["verdict"] == "pass"
    assert apply["row"]["after"]["source"] == "tls"
    assert (again["status"], again["changed"], again["moved"]) == ("unchanged", False, False)
    assert again["row"]["actions"] == []
    assert "import_certificate" in actions  # the fix really went over WinRM
    assert server.password not in json.dumps(runs)


def test_without_the_lab_catalog_the_winrm_host_is_judged_with_the_real_one(
    tmp_path: Path,
) -> None:
    """The default: a host over WinRM is judged with the real Sectigo catalog, which does not
    know the lab certificates (the plan imports the real cross-sign; the self-signed lab root
    is not recognised)."""
    pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")
    from sectigo_chain.testing.winrm import WinRMTestServer

    with WinRMTestServer(SimulatedHost("broken-r46")) as server:
        entry = {"name": "web01", "target": server.target, "winrm_auth": "basic",
                 "winrm_cert_validation": server.ca_file}  # fmt: skip
        real = run_task(entry, "plan", winrm_password=server.password)
        lab = run_task(entry, "plan", winrm_password=server.password,
                       catalog=default_lab().catalog)  # fmt: skip
    assert "remove_self_signed_root" not in [a["kind"] for a in real["row"]["actions"]]
    assert "remove_self_signed_root" in [a["kind"] for a in lab["row"]["actions"]]


def _cli(*args: str, cwd: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "sectigo_chain", *args, "--json"],
        capture_output=True, text=True, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


def test_a_persisted_sim_host_outlives_the_process(tmp_path: Path) -> None:
    """Three CLI processes against ``sim://broken-r46?state=web.json``: plan writes nothing,
    apply fixes and writes the file, a new plan finds nothing to do."""
    target = "sim://broken-r46?state=web.json"
    planned = _cli("plan", "--target", target, cwd=tmp_path)
    assert planned["plan"]["actions"]  # type: ignore[index]
    assert not (tmp_path / "web.json").exists()
    applied = _cli("apply", "--yes", "--journal-dir", "j", "--target", target, cwd=tmp_path)
    assert applied["changed"] is True
    assert (tmp_path / "web.json").stat().st_mode & 0o777 == 0o600
    again = _cli("plan", "--target", target, cwd=tmp_path)
    assert again["plan"]["actions"] == []  # type: ignore[index]
    fresh = _cli("plan", "--target", "sim://broken-r46", cwd=tmp_path)
    assert fresh["plan"]["actions"]  # type: ignore[index]  # without the file: broken again
