"""Rehearsals that outlive one task: ``run_task`` (what the Ansible ``chain_fix`` runs) against
a loopback WinRM endpoint judged with the pinned lab catalog, and against ``sim://`` hosts whose
state is kept in a file (``sim://NAME?state=FILE``): plan changes nothing, apply fixes, a second
apply is a no-op, each run in a fresh process (the CLI) or a fresh host object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import IO

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
        actions = [n for r in server.received for n in r.names if n != "observe"]
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


def _lines_into(stream: IO[str], queue: Queue[str]) -> None:
    for line in stream:
        queue.put(line)
    queue.put("")  # end of the stream


def test_the_lab_endpoints_process_is_fixed_from_another_process(tmp_path: Path) -> None:
    """``python -m sectigo_chain.testing.winrm_lab``: loopback WinRM endpoints in a process of
    their own, with the inventory it writes; this process (another lab cache, the same pinned
    lab) plans, applies, then finds nothing to do; SIGTERM stops it cleanly."""
    pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")
    password = "Lab-Rehearsal-Pw-1"
    inventory = tmp_path / "lab.yml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sectigo_chain.testing.winrm_lab", "--hosts", "2",
         "--scenario", "misplaced", "fixed", "--inventory", str(inventory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LAB_WINRM_PASSWORD": password},
    )  # fmt: skip
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        # A reader thread, not select(): a text pipe's buffer may already hold the next lines
        # (even "ready") when the descriptor has nothing more to read.
        queue: Queue[str] = Queue()
        threading.Thread(target=_lines_into, args=(proc.stdout, queue), daemon=True).start()
        while not lines or not lines[-1].startswith("ready"):
            try:
                line = queue.get(timeout=180)  # generous: a busy CI box
            except Empty:
                raise AssertionError(f"no 'ready' within 180 s: {lines}") from None
            assert line, proc.stderr.read() if proc.stderr else ""  # ended without "ready"
            lines.append(line)
        hosts = json.loads(inventory.read_text(encoding="utf-8"))["iis"]["hosts"]
        assert sorted(hosts) == ["lab01", "lab02"]
        assert password not in inventory.read_text(encoding="utf-8")
        results = []
        for name in ("lab01", "lab02"):
            v = hosts[name]
            assert v["ansible_password"] == "{{ lookup('env', 'LAB_WINRM_PASSWORD') }}"
            entry = {
                "name": name,
                "target": f"winrm://{v['ansible_user']}@127.0.0.1:{v['ansible_port']}",
                "winrm_auth": "basic",
                "winrm_cert_validation": v["ansible_winrm_ca_trust_path"],
                "check": v["sectigo_chain_check"],
            }
            for mode in ("plan", "apply", "apply"):
                done = run_task(entry, mode, winrm_password=password, journal_dir=tmp_path,
                                catalog=default_lab().catalog)  # fmt: skip
                results.append((name, mode, done["status"], done["changed"]))
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
    assert results == [
        ("lab01", "plan", "planned", True),
        ("lab01", "apply", "applied", True),
        ("lab01", "apply", "unchanged", False),
        ("lab02", "plan", "unchanged", False),
        ("lab02", "apply", "unchanged", False),
        ("lab02", "apply", "unchanged", False),
    ]
    assert code == 0


def test_the_lab_endpoints_process_refuses_bad_input(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LAB_WINRM_PASSWORD"}
    done = subprocess.run(
        [sys.executable, "-m", "sectigo_chain.testing.winrm_lab", "--scenario", "nope",
         "--inventory", str(tmp_path / "x.yml")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "LAB_WINRM_PASSWORD" in done.stderr
    assert "unknown scenario(s) nope" in done.stderr
    assert not (tmp_path / "x.yml").exists()
