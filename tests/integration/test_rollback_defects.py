"""Issue 13, defects 1, 2 and 12: rollback restarts when what is served may have changed,
resumes step by step and checks the host against the journal's "before" snapshot, and refuses
a damaged journal before its first undo."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.errors import ApplyError, InputError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost, SimulatedKill
from sectigo_chain.hosts.sim.scenarios import scenario_leaf
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import Journal, rollback
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.testing.lab import default_lab
from sectigo_chain.x509.certs import thumbprint

FAST = RetryPolicy(attempts=2, wait_initial=0)
SITE = "Default Web Site"
PW = "rollback-defects-pw"
LAB = default_lab()
AT = scenario_leaf(LAB).cert.not_valid_before_utc + dt.timedelta(days=1)
READ_ONLY = ("observe", "verify_chain")
NEW_LEAF = LAB.issue_leaf(["www.example.test"], at=AT)  # for --pfx (one key for the module)


def _host(name: str = "broken-r46", faults: Faults | None = None) -> SimulatedHost:
    host = SimulatedHost(name, lab=LAB, clock=lambda: AT, faults=faults)
    host.tls_chains()  # a serving host: its HTTP.sys cache is warm
    return host


def _plan(host: SimulatedHost, **kw: Any) -> Plan:
    desired = sectigo_fix(site=SITE, catalog=host.catalog, **kw)
    return plan(desired, observe(host), at=AT, catalog=host.catalog, target=host.target)


def _served(host: SimulatedHost) -> list[str]:
    return [thumbprint(c) for c in host.served_chain(SITE)]


def _actions(calls: list[str]) -> list[str]:
    return [c for c in calls if c not in READ_ONLY]


def _restart_index(p: Plan) -> int:
    (index,) = [i for i, a in enumerate(p.actions) if a.kind == "restart"]
    return index


# ------------------------------------------------------------------ defect 1


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(lambda i: Faults(drop_connection_at=i, persistent=True), id="host-lost"),
        pytest.param(lambda i: Faults(kill_after=i), id="killed"),
    ],
)
def test_rollback_restarts_when_the_restart_step_may_have_run(
    faults: Callable[[int], Faults], tmp_path: Path
) -> None:
    """The restart ran (HTTP.sys now serves the long chain), then the host was lost or the
    process killed: the restart step is not "done", yet rollback must restart again."""
    p = _plan(_host())
    host = _host(faults=faults(_restart_index(p)))
    before, served_before = host.snapshot(), _served(host)
    path = tmp_path / "j.json"
    with pytest.raises((ApplyError, SimulatedKill)):
        apply(p, host, journal_path=path, retry=FAST, at=AT)
    assert len(_served(host)) == 3  # the restart ran: leaf, R36, cross-signed R46
    again = host.reopen()
    result = rollback(path, again, retry=FAST)
    assert result.complete, result.errors
    assert result.restarted
    assert _served(again) == served_before
    assert again.snapshot() == before


def test_rollback_with_pfx_leaves_binding_and_http_sys_consistent(tmp_path: Path) -> None:
    """--pfx: the host is lost during the restart that made HTTP.sys serve the new
    certificate; after rollback the binding and what HTTP.sys serves are the old leaf."""
    new = NEW_LEAF
    p = _plan(_host(), pfx=new.pfx(PW), pfx_password=PW)
    assert [a.kind for a in p.actions][-3:] == ["import_pfx", "set_binding", "restart"]
    host = _host(faults=Faults(drop_connection_at=_restart_index(p), persistent=True))
    old_leaf = host.model.sslcert["0.0.0.0:443"].certificate_hash
    before = host.snapshot()
    path = tmp_path / "j.json"
    with pytest.raises(ApplyError):
        apply(p, host, journal_path=path, retry=FAST, at=AT)
    assert _served(host)[0] == thumbprint(new.cert)
    again = host.reopen()
    result = rollback(path, again, retry=FAST)
    assert result.complete, result.errors
    assert again.model.sslcert["0.0.0.0:443"].certificate_hash == old_leaf
    assert _served(again)[0] == old_leaf
    assert again.snapshot() == before


def test_rollback_does_not_restart_when_nothing_served_may_have_changed(tmp_path: Path) -> None:
    """A failure at the first step (an import into a store): no restart ran, no binding
    changed; rollback does not restart IIS (no needless outage)."""
    host = _host(faults=Faults(fail_action=0))
    p = _plan(_host())
    with pytest.raises(ApplyError) as info:
        apply(p, host, journal_dir=tmp_path, retry=FAST, at=AT)
    assert info.value.rollback_complete
    assert "restart" not in host.calls


# ------------------------------------------------------------------ defect 2


def _kill_point_of_staging(p: Plan, tmp_path: Path) -> int:
    """The action-script number (0-based, apply's included) of the rollback's staging import
    of the removed self-signed R46, after a successful apply."""
    probe = _host()
    result = apply(p, probe, journal_dir=tmp_path, retry=FAST, at=AT)
    mark = len(probe.calls)
    rollback(result.journal, probe, retry=FAST)  # type: ignore[arg-type]
    scripts = _actions(probe.calls[mark:])
    return len(p.actions) + scripts.index("import_certificate")


def test_interrupted_then_resumed_rollback_leaves_no_staging_copy(tmp_path: Path) -> None:
    p = _plan(_host())
    r46 = thumbprint(LAB.r46_root.cert)
    host = _host()
    before = host.snapshot()
    result = apply(p, host, journal_dir=tmp_path, retry=FAST, at=AT)
    assert result.journal is not None
    host.faults = Faults(kill_after=_kill_point_of_staging(p, tmp_path))
    with pytest.raises(SimulatedKill):
        rollback(result.journal, host, retry=FAST)
    staged = host.model.copies(r46, "LocalMachine", "CA")
    assert staged, "the kill point is not between the staging copy and its move"
    resumed = rollback(result.journal, host.reopen(), retry=FAST)
    assert resumed.complete, resumed.errors
    assert host.model.copies(r46, "LocalMachine", "CA") == []
    assert host.snapshot() == before


def test_apply_records_the_before_snapshot_in_the_journal(tmp_path: Path) -> None:
    host = _host("misplaced")
    result = apply(_plan(host), host, journal_dir=tmp_path, retry=FAST, at=AT)
    doc = json.loads(Path(result.journal).read_text())  # type: ignore[arg-type]
    expected = observe(_host("misplaced")).model_dump(mode="json")
    assert doc["before"] == json.loads(json.dumps(expected))


def test_rollback_checks_the_host_against_the_before_snapshot(tmp_path: Path) -> None:
    """Something the journal's steps do not cover changed: the rollback undoes every step but
    reports itself incomplete, naming the difference."""
    host = _host()
    result = apply(_plan(host), host, journal_dir=tmp_path, retry=FAST, at=AT)
    stray = NEW_LEAF
    host.model.add("LocalMachine", "CA", stray.cert)
    rb = rollback(result.journal, host, retry=FAST)  # type: ignore[arg-type]
    assert rb.checked
    assert not rb.complete
    assert any(thumbprint(stray.cert) in d and "LocalMachine\\CA" in d for d in rb.differences)
    assert any("differs from before apply" in e for e in rb.errors)
    doc = json.loads(Path(result.journal).read_text())  # type: ignore[arg-type]
    assert doc["status"] == "rollback_incomplete"
    # once the stray copy is gone the same journal rolls back complete (and idempotently)
    host.model.discard(("LocalMachine", "CA", ".Default"), thumbprint(stray.cert))
    mark = len(host.calls)
    rb = rollback(result.journal, host, retry=FAST)  # type: ignore[arg-type]
    assert rb.complete
    assert rb.checked
    assert _actions(host.calls[mark:]) == []


# ------------------------------------------------------------------ defect 12


@pytest.fixture(scope="module")
def good_journal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real journal with every kind of undo: a removal (backup), a binding (previous binding),
    an import, a restart."""
    tmp_path = tmp_path_factory.mktemp("good")
    new = NEW_LEAF
    host = _host("misplaced")
    p = _plan(host, pfx=new.pfx(PW), pfx_password=PW)
    result = apply(p, host, journal_dir=tmp_path, retry=FAST, at=AT)
    doc: dict[str, Any] = json.loads(Path(result.journal).read_text())  # type: ignore[arg-type]
    templates = {s["template"] for s in doc["steps"]}
    assert {"remove_certificate", "set_binding", "import_pfx", "restart"} <= templates
    return doc


def _step(doc: dict[str, Any], template: str) -> dict[str, Any]:
    return next(s for s in doc["steps"] if s["template"] == template)


def _first_removal(doc: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in doc["steps"] if s["template"] == "remove_certificate")


Mutation = Callable[[dict[str, Any]], Any]

DAMAGED: dict[str, Mutation] = {
    "steps missing": lambda d: d.pop("steps"),
    "steps not a list": lambda d: d.update(steps="oops"),
    "rollback missing": lambda d: d.pop("rollback"),
    "rollback not a list": lambda d: d.update(rollback={}),
    "status unknown": lambda d: d.update(status="whatever"),
    "target a number": lambda d: d.update(target=42),
    "plan missing": lambda d: d.pop("plan"),
    "a step is null": lambda d: d["steps"].__setitem__(0, None),
    "index missing": lambda d: d["steps"][-1].pop("index"),
    "index a string": lambda d: d["steps"][-1].update(index=str(d["steps"][-1]["index"])),
    "index out of order": lambda d: d["steps"][0].update(index=7),
    "template missing": lambda d: d["steps"][0].pop("template"),
    "template unknown": lambda d: d["steps"][0].update(template="format_disk"),
    "kind missing": lambda d: d["steps"][-1].pop("kind"),
    "status missing": lambda d: d["steps"][-1].pop("status"),
    "status a number": lambda d: d["steps"][-1].update(status=1),
    "params missing": lambda d: d["steps"][0].pop("params"),
    "params a list": lambda d: d["steps"][0].update(params=[]),
    "thumbprint missing": lambda d: d["steps"][0]["params"].pop("thumbprint"),
    "backup null": lambda d: _first_removal(d).update(backup=None),
    "backup without der": lambda d: _first_removal(d)["backup"].pop("der_b64"),
    "backup store a number": lambda d: _first_removal(d)["backup"].update(store_name=3),
    "binding flags a string": lambda d: _step(d, "set_binding")["params"].update(ssl_flags_set="1"),
    "previous binding without flags": lambda d: _step(d, "set_binding")["previous_binding"].pop(
        "ssl_flags"
    ),
    "previous value a string": lambda d: d["steps"][0].update(previous_value="yes"),
    "rollback record without ok": lambda d: d["rollback"].append({"step": 0}),
    "before damaged": lambda d: d.update(before={"certificates": "none"}),
    "restart mode a number": lambda d: _step(d, "restart")["params"].update(mode=3),
    "thumbprint not hex": lambda d: d["steps"][0]["params"].update(thumbprint="not-a-thumb"),
}


def test_the_damaged_corpus_is_large_enough() -> None:
    assert len(DAMAGED) >= 16


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_journal_is_refused_before_any_undo(
    damage: str, good_journal: dict[str, Any], tmp_path: Path
) -> None:
    doc = copy.deepcopy(good_journal)
    for step in doc["steps"]:
        step["status"] = "done"  # every step would be undone
    DAMAGED[damage](doc)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(doc))
    host = _host("misplaced")
    before = host.snapshot()
    with pytest.raises(InputError) as info:
        rollback(path, host, retry=FAST)
    message = str(info.value)
    assert "\n" not in message
    assert "damaged" in message
    assert "nothing was undone" in message
    assert _actions(host.calls) == []
    assert host.snapshot() == before


def test_the_cli_refuses_a_damaged_journal_in_one_line(
    good_journal: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy.deepcopy(good_journal)
    _first_removal(doc)["backup"] = None
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(doc))
    code = main(["rollback", str(path), "--target", "sim://misplaced"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "damaged" in err
    assert "Traceback" not in err


def test_unknown_fields_are_kept_and_accepted(good_journal: dict[str, Any], tmp_path: Path) -> None:
    """Later versions add fields at apply time (top level and steps): still valid."""
    doc = copy.deepcopy(good_journal)
    doc["revert_after"] = "2030-01-01"
    doc["steps"][0]["restore_ps1"] = "..."
    journal = Journal(tmp_path / "j.json", doc)
    from sectigo_chain.run.journal import validate_journal

    model = validate_journal(journal)
    assert model.model_extra == {"revert_after": "2030-01-01"}
    assert (model.steps[0].model_extra or {})["restore_ps1"] == "..."
