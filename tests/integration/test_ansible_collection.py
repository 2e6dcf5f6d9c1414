"""The Ansible collection (ansible/ansible_collections/sectigo_chain/iis) with real ansible-core.

Built and installed with ``ansible-galaxy``, documented with ``ansible-doc``, and its example
playbook run by ``ansible-playbook`` with ``--forks 10`` against 20 inventory hosts: 10 behind
loopback WinRM endpoints served by this test process (another process than the Ansible
workers: both build the same pinned lab, and the hosts say ``sectigo_chain_catalog: lab``),
and 10 ``sim://`` hosts whose state persists in a file each (``sectigo_chain_sim_state``), in
check mode, for real, and again (``changed=0`` everywhere).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.templates.params import TEMPLATE_SPECS
from sectigo_chain.testing.winrm import WinRMTestServer

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible" / "ansible_collections" / "sectigo_chain" / "iis"
BIN = Path(sys.executable).parent
SCENARIOS = ["broken-r46", "broken-e46", "fixed", "misplaced"]
SECRET = "Pfx-S3cret-Never-Logged"


def _env(collections: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(collections.parent / "tmp"),
        ANSIBLE_HOME=str(collections.parent / "home"),
        ANSIBLE_DEPRECATION_WARNINGS="0",
        PYTHONWARNINGS="ignore",
    )
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built to a tarball and installed into a fresh collections path."""
    work = tmp_path_factory.mktemp("ansible")
    built = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION),
         "--output-path", str(work)],
        capture_output=True, text=True, check=False, env=_env(work / "none"),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    tarball = work / "sectigo_chain-iis-0.1.0.tar.gz"
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {"plugins/action/chain_fix.py", "plugins/modules/chain_fix.py", "MANIFEST.json"} <= names
    target = work / "collections"
    done = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(target)],
        capture_output=True, text=True, check=False, env=_env(target),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (target / "ansible_collections" / "sectigo_chain" / "iis" / "galaxy.yml").exists() or (
        target / "ansible_collections" / "sectigo_chain" / "iis" / "MANIFEST.json"
    ).exists()
    return target


def test_ansible_doc_renders_both_modules(installed: Path) -> None:
    for module in ("chain_fix", "chain_check"):
        out = subprocess.run(
            [str(BIN / "ansible-doc"), "--json", f"sectigo_chain.iis.{module}"],
            capture_output=True, text=True, check=False, env=_env(installed),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)[f"sectigo_chain.iis.{module}"]["doc"]
        assert doc["module"] == module
        assert doc["short_description"]
    shown = subprocess.run(
        [str(BIN / "ansible-doc"), "--json", "sectigo_chain.iis.chain_fix"],
        capture_output=True, text=True, check=True, env=_env(installed),
    )  # fmt: skip
    fix = json.loads(shown.stdout)["sectigo_chain.iis.chain_fix"]["doc"]
    assert {"site", "pfx", "pfx_password", "strategy", "journal_dir"} <= set(fix["options"])


def _inventory(
    tmp: Path, servers: list[tuple[WinRMTestServer, tuple[str, int, str | None]]]
) -> Path:
    """20 hosts: web00..web09 behind loopback WinRM endpoints (in this process: another process
    than the Ansible worker), web10..web19 ``sim://`` with a state file each; scenarios
    broken-r46, broken-e46, fixed, misplaced in turn. Written as JSON, which is YAML."""
    hosts: dict[str, dict[str, object]] = {}
    for i in range(20):
        name = f"web{i:02d}"
        if i < len(servers):
            server, (ip, port, servername) = servers[i]
            hosts[name] = {
                "ansible_host": "127.0.0.1", "ansible_port": server.port,
                "ansible_user": server.username, "ansible_password": server.password,
                "ansible_winrm_transport": "basic",
                # the endpoint's lab CA, or no validation: both ways of the connection variables
                **({"ansible_winrm_ca_trust_path": server.ca_file} if i % 2 == 0
                   else {"ansible_winrm_server_cert_validation": "ignore"}),
                "sectigo_chain_catalog": "lab",
                "sectigo_chain_check": {"host": ip, "port": port, "servername": servername},
            }  # fmt: skip
        else:
            hosts[name] = {
                "sectigo_chain_target": f"sim://{SCENARIOS[i % 4]}",
                "sectigo_chain_sim_state": str(tmp / "state" / f"{name}.json"),
                "ansible_password": SECRET,
            }
    inventory = {"iis": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}  # fmt: skip
    path = tmp / "inventory.yml"
    path.write_text(json.dumps(inventory, indent=1), encoding="utf-8")
    return path


def _play(
    installed: Path, tmp: Path, inventory: Path, *extra: str
) -> tuple[dict[str, dict[str, int]], str]:
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "sectigo_chain.iis.fix_chain",
         "--forks", "10", "-e", f"journal_dir={tmp / 'journals'}", *extra],
        capture_output=True, text=True, check=False, env=_env(installed), cwd=tmp,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    recap = run.stdout[run.stdout.index("PLAY RECAP") :]
    stats = {
        host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
        for host, counters in re.findall(r"^(\S+)\s+:\s+(.*)$", recap, flags=re.M)
    }
    assert sorted(stats) == [f"web{i:02d}" for i in range(20)]
    for host, s in stats.items():
        assert (s["failed"], s["unreachable"]) == (0, 0), (host, s, run.stdout[-3000:])
    return stats, run.stdout + run.stderr


def _expected_changed(i: int) -> int:
    return 0 if SCENARIOS[i % 4] == "fixed" else 1


def _stores(host: SimulatedHost) -> dict[str, object]:
    """Stores, sites and HTTP.sys of a host (not the served-chain cache a handshake fills)."""
    return {k: v for k, v in host.snapshot().items() if k != "_sim"}


@pytest.mark.load
@pytest.mark.timeout(900)
def test_playbook_check_then_real_then_no_change(installed: Path, tmp_path: Path) -> None:
    """The example playbook, --forks 10, against 10 loopback WinRM hosts and 10 persisted
    ``sim://`` hosts: check mode plans (changed where broken) and changes nothing; real mode
    fixes the broken ones; a second real run reports changed=0 on every host."""
    pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")
    with contextlib.ExitStack() as stack:
        servers = []
        for i in range(10):
            host = SimulatedHost(SCENARIOS[i % 4])
            server = stack.enter_context(WinRMTestServer(host))
            listener = stack.enter_context(host.start_tls())
            servers.append((server, listener.address_for("Default Web Site")))
        inventory = _inventory(tmp_path, servers)
        states = tmp_path / "state"
        sims = [server.host for server, _ in servers]

        start = [_stores(h) for h in sims]
        stats, out = _play(installed, tmp_path, inventory, "--check", "--diff")
        for i in range(20):
            assert stats[f"web{i:02d}"]["changed"] == _expected_changed(i), (i, stats)
        assert [_stores(h) for h in sims] == start  # check mode changed no WinRM host
        assert not list(states.glob("*.json"))  # nor a sim:// host (only its lock files exist)
        assert not (tmp_path / "journals").exists() or not any((tmp_path / "journals").iterdir())
        assert re.search(r"planned \(import_cross_sign", out)

        stats, out = _play(installed, tmp_path, inventory, "-v")  # -v prints every result
        for i in range(20):
            assert stats[f"web{i:02d}"]["changed"] == _expected_changed(i), (i, stats)
        fixed = [_stores(h) for h in sims]
        assert [a != b for a, b in zip(start, fixed, strict=True)] == [
            bool(_expected_changed(i)) for i in range(10)
        ]
        saved = {p.name: p.read_bytes() for p in states.glob("*.json")}
        assert sorted(saved) == [f"web{i}.json" for i in range(10, 20) if _expected_changed(i)]
        journals = sorted(p.name for p in (tmp_path / "journals").glob("*.json"))
        assert len(journals) == 15  # one per changed host (each with its restore .ps1 beside it)
        assert len(list((tmp_path / "journals").glob("*.restore.ps1"))) == 15
        assert "applied (import_cross_sign, remove_self_signed_root, restart)" in out
        assert "'msg': 'web00: applied" in out or '"msg": "web00: applied' in out
        assert "'msg': 'web12: applied" in out or '"msg": "web12: applied' in out

        pipelines = [len(server.received) for server, _ in servers]
        stats, out = _play(installed, tmp_path, inventory, "-v")
        assert {s["changed"] for s in stats.values()} == {0}
        assert [_stores(h) for h in sims] == fixed
        assert {p.name: p.read_bytes() for p in states.glob("*.json")} == saved
        assert len(list((tmp_path / "journals").glob("*.json"))) == 15  # no new journal
        second = [server.received[n:] for (server, _), n in zip(servers, pipelines, strict=True)]
        assert all(second)  # every WinRM host was observed again, over WinRM ...
        templates = {r.template for run in second for r in run}
        assert "observe" in templates  # ... and verified, with read-only scripts only
        assert all(t is not None and TEMPLATE_SPECS[t].read_only for t in templates), templates
        assert out.count("unchanged (no action)") >= 20


def test_secrets_reach_the_library_and_never_the_output(installed: Path, tmp_path: Path) -> None:
    """A WinRM host whose password is used (its endpoint refuses the connection) and a PFX
    whose password is used (the simulated host imports it), at -vvv, task without no_log:
    neither password is in Ansible's output, the results or the journals."""
    import socket

    from sectigo_chain.testing import default_lab

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pfx = tmp_path / "site.pfx"
    pfx.write_bytes(default_lab().issue_leaf(["www.example.test"]).pfx(SECRET, with_chain=True))
    (tmp_path / "inventory.ini").write_text(
        "[iis]\n"
        f"remote ansible_host=127.0.0.1 ansible_port={port} ansible_user=admin "
        f"ansible_password={SECRET} ansible_winrm_server_cert_validation=ignore\n"
        "rehearsal sectigo_chain_target=sim://broken-r46\n\n"
        f"[iis:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n",
        encoding="utf-8",
    )
    (tmp_path / "play.yml").write_text(
        "- hosts: iis\n  gather_facts: false\n  tasks:\n"
        "    - sectigo_chain.iis.chain_fix:\n"
        f"        pfx: {pfx}\n        pfx_password: '{{{{ pfx_pw }}}}'\n"
        f"        journal_dir: {tmp_path / 'journals'}\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.ini"),
         str(tmp_path / "play.yml"), "-vvv", "-e", f"pfx_pw={SECRET}"],
        capture_output=True, text=True, check=False, env=_env(installed), cwd=tmp_path,
        timeout=600,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert re.search(r"remote\s+:.*failed=1", out), out[-2000:]
    # The PFX's leaf comes from this process's default lab, which is the pinned lab: the same
    # CA certificates as the Ansible worker's simulated host, so the imported leaf is bound and
    # verifies there (the PFX password was really used).
    assert re.search(r"rehearsal\s+:.*changed=1.*failed=0", out), out[-2000:]
    assert "import_pfx" in out
    journals = list((tmp_path / "journals").iterdir())
    assert journals
    assert SECRET not in out
    for journal in journals:
        assert SECRET not in journal.read_text(encoding="utf-8")
