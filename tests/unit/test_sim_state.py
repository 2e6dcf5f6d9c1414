"""Persisted simulated hosts (``sim://NAME?state=FILE``) and the pinned lab they rely on."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.fleet.task import run_task
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.hosts.sim.scenarios import SCENARIOS
from sectigo_chain.hosts.sim.state import SimState, parse_sim_target
from sectigo_chain.hosts.targets import open_target
from sectigo_chain.testing.lab import LabHierarchy, default_lab
from sectigo_chain.x509.certs import thumbprint

_PRINT_LAB = (
    "from sectigo_chain.testing.lab import default_lab\n"
    "from sectigo_chain.x509.certs import thumbprint\n"
    "print(sorted(thumbprint(c) for c in default_lab().catalog.certificates()))\n"
)


def test_the_default_lab_is_the_same_in_another_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PRINT_LAB], capture_output=True, text=True, check=True
    )
    here = sorted(thumbprint(c) for c in default_lab().catalog.certificates())
    assert done.stdout.strip() == str(here)
    assert len(here) == 11


def test_a_new_lab_is_unlike_the_pinned_one() -> None:
    pinned = {thumbprint(c) for c in default_lab().catalog.certificates()}
    fresh = {thumbprint(c) for c in LabHierarchy.create().catalog.certificates()}
    again = {thumbprint(c) for c in LabHierarchy.create(pinned=True).catalog.certificates()}
    assert not pinned & fresh
    assert again == pinned


def test_pinned_lab_certificates_are_signed_by_their_issuers() -> None:
    lab = default_lab()
    for cert, issuer in (
        (lab.r46_cross, lab.usertrust_rsa.cert),
        (lab.e46_cross, lab.usertrust_ecc.cert),
        (lab.r36.cert, lab.r46_root.cert),
        (lab.e36.cert, lab.e46_root.cert),
        (lab.usertrust_ecc_cross_aaa, lab.aaa.cert),
    ):
        cert.verify_directly_issued_by(issuer)


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("broken-r46", ("broken-r46", None)),
        ("broken-r46/", ("broken-r46", None)),
        ("fixed?state=/tmp/a%20b.json", ("fixed", "/tmp/a b.json")),
        ("fixed?state=rel/web.json", ("fixed", "rel/web.json")),
    ],
)
def test_sim_targets_with_and_without_a_state_file(
    rest: str, expected: tuple[str, str | None]
) -> None:
    assert parse_sim_target(rest) == expected


@pytest.mark.parametrize("rest", ["fixed?stat=x", "fixed?state=", "fixed?state=a&state=b", "x?"])
def test_a_bad_sim_query_is_a_clear_input_error(rest: str) -> None:
    with pytest.raises(InputError, match="state=FILE"):
        parse_sim_target(rest)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_survives_the_file(scenario: str, tmp_path: Path) -> None:
    """Saved and read back, a host is the same host: stores, keys, sites, HTTP.sys, cache."""
    state = tmp_path / "host.json"
    first = SimulatedHost(scenario, state_file=state)
    first.served_chain("Default Web Site")  # fills the served-chain cache: it is state too
    assert first.state is not None
    first.state.save(first.model)
    expected, chains = first.snapshot(), first.tls_chains()
    first.close()
    second = SimulatedHost(scenario, state_file=state)
    try:
        assert second.snapshot() == expected
        assert second.model.access_denied == first.model.access_denied
        got = second.tls_chains()
        assert sorted(got) == sorted(chains)
        for endpoint, (chain, key) in chains.items():
            assert [thumbprint(c) for c in got[endpoint][0]] == [thumbprint(c) for c in chain]
            assert got[endpoint][1].public_key() == key.public_key()
    finally:
        second.close()


def test_apply_persists_and_a_second_apply_is_a_no_op(tmp_path: Path) -> None:
    target = f"sim://misplaced?state={tmp_path / 'web.json'}"
    host = {"name": "web", "target": target}
    planned = run_task(host, "plan")
    assert planned["changed"] is True
    assert not (tmp_path / "web.json").exists()  # plan writes nothing
    applied = run_task(host, "apply", journal_dir=tmp_path / "j")
    assert (applied["status"], applied["changed"]) == ("applied", True)
    again = run_task(host, "apply", journal_dir=tmp_path / "j")
    assert (again["status"], again["changed"], again["row"]["actions"]) == ("unchanged", False, [])
    doc = json.loads((tmp_path / "web.json").read_text(encoding="utf-8"))
    assert doc["scenario"] == "misplaced"


def test_a_held_state_file_makes_others_wait_then_go(tmp_path: Path) -> None:
    path = tmp_path / "web.json"
    holder = open_target(f"sim://broken-r46?state={path}")
    other = SimState(path, "broken-r46", "x")
    with pytest.raises(InputError, match="stayed locked"):
        other.acquire(wait=0.2)
    holder.close()
    other.acquire(wait=0.2)
    other.release()


def test_parallel_runs_on_one_state_file_take_turns(tmp_path: Path) -> None:
    """Eight runs of the same persisted host at once (as Ansible forks sharing a file would):
    exactly one applies the fix, the others find it done; the file is whole."""
    host = {"name": "web", "target": f"sim://broken-r46?state={tmp_path / 'web.json'}"}
    statuses: list[str] = []

    def run() -> None:
        statuses.append(run_task(host, "apply", journal_dir=tmp_path / "j")["status"])

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == ["applied"] + ["unchanged"] * 7
    json.loads((tmp_path / "web.json").read_text(encoding="utf-8"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".web.json.")] == []


def test_a_state_file_of_another_scenario_lab_or_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "web.json"
    run_task({"name": "w", "target": f"sim://broken-r46?state={path}"}, "apply",
             journal_dir=tmp_path / "j")  # fmt: skip
    with pytest.raises(InputError, match="holds a sim://broken-r46 host, not sim://fixed"):
        SimulatedHost("fixed", state_file=path)
    with pytest.raises(InputError, match="another lab hierarchy"):
        SimulatedHost("broken-r46", state_file=path, lab=LabHierarchy.create())
    path.write_text('{"format": "sectigo_chain.sim-state/1", "scenario": "broken-r46", '
                    f'"lab": {json.dumps(json.loads(path.read_text())["lab"])}, '
                    '"model": {"$obj": "Nope"}}', encoding="utf-8")  # fmt: skip
    with pytest.raises(InputError, match="damaged"):
        SimulatedHost("broken-r46", state_file=path)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(InputError, match="not a sim:// state file"):
        SimulatedHost("broken-r46", state_file=path)
    # a refused file leaves the lock free
    SimState(path, "broken-r46", "x").acquire(wait=0.2)


def test_a_persisted_drift_host_keeps_drifting(tmp_path: Path) -> None:
    """``sim://drift``: the self-signed R46 that apply removed comes back at the next chain
    build (Automatic Root Update); the next run, from the file, finds it back, as it would on
    the machine."""
    host = {"name": "web", "target": f"sim://drift?state={tmp_path / 'web.json'}"}
    applied = run_task(host, "apply", journal_dir=tmp_path / "j")
    assert applied["status"] == "failed"
    assert "still finds work" in " ".join(applied["row"]["verify_notes"])
    again = run_task(host, "plan")
    assert "remove_self_signed_root" in [a["kind"] for a in again["row"]["actions"]]
