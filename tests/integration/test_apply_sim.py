"""apply/rollback against every simulated scenario: convergence, idempotence, fault injection."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Literal

import pytest

from sectigo_chain.errors import ApplyError, InputError, PlanRefused
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.hosts.sim.scenarios import SCENARIOS
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import rollback
from sectigo_chain.state.models import DesiredState
from sectigo_chain.state.plan_models import ApplyResult, Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.params import TEMPLATE_SPECS

NOW = dt.datetime.now(dt.timezone.utc)
FAST = RetryPolicy(attempts=3, wait_initial=0)
# drift converges only with a strategy that stops Automatic Root Update; gpo-root only with the
# override (its root cannot be deleted).
STRATEGY = {"drift": "disable_auto_update"}
OVERRIDE = {"gpo-root"}


def _desired(host: SimulatedHost, strategy: str = "remove") -> DesiredState:
    return sectigo_fix(site="Default Web Site", catalog=host.catalog, root_strategy=strategy)  # type: ignore[arg-type]


def _plan(host: SimulatedHost, desired: DesiredState, override: bool = False) -> Plan:
    return plan(
        desired,
        observe(host),
        at=NOW,
        catalog=host.catalog,
        allow_group_policy_override=override,
        target=host.target,
    )


def _apply(
    host: SimulatedHost, p: Plan, desired: DesiredState, tmp: Path, *, override: bool = False
) -> ApplyResult:
    return apply(
        p, host, desired=desired, catalog=host.catalog, journal_dir=tmp, retry=FAST, at=NOW,
        allow_group_policy_override=override,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_plan_apply_plan_is_empty_and_second_apply_changes_nothing(
    name: str, tmp_path: Path
) -> None:
    host = SimulatedHost(name)
    desired = _desired(host, STRATEGY.get(name, "remove"))
    override = name in OVERRIDE
    first = _plan(host, desired, override)
    result = _apply(host, first, desired, tmp_path, override=override)
    assert result.after_plan_empty, str(result.after_plan)
    assert _plan(host, desired, override).empty
    assert result.changed == bool(first.actions)
    again = _apply(host, _plan(host, desired, override), desired, tmp_path)
    assert not again.changed
    assert again.journal is None
    assert again.steps == ()


@pytest.mark.parametrize("name", ["broken-r46", "broken-e46", "misplaced", "shared-ip", "user-key"])
def test_after_apply_the_served_chain_is_leaf_issuer_cross(name: str, tmp_path: Path) -> None:
    host = SimulatedHost(name)
    leaf_tp = observe(host).site("Default Web Site").bindings[1].certificate_hash  # type: ignore[union-attr]
    served = host.served_chain("Default Web Site")
    # broken: the short chain (leaf, issuing CA); with the key only in CurrentUser\My, nothing
    assert len(served) == (0 if name == "user-key" else 2)
    desired = _desired(host)
    _apply(host, _plan(host, desired), desired, tmp_path)
    served = host.served_chain("Default Web Site")
    family: Literal["RSA", "ECC"] = "ECC" if name == "broken-e46" else "RSA"
    assert [c for c in served][2] == host.lab.cross(family)
    assert served[1] == host.lab.issuing_ca(family).cert
    from sectigo_chain.x509.certs import thumbprint

    assert thumbprint(served[0]) == leaf_tp


def test_drift_with_remove_strategy_comes_back_and_apply_reports_it(tmp_path: Path) -> None:
    host = SimulatedHost("drift")
    desired = _desired(host, "remove")
    p = _plan(host, desired)
    assert any("drift" in w for w in p.warnings)
    result = _apply(host, p, desired, tmp_path)
    assert not result.after_plan_empty
    assert result.after_plan is not None
    assert [a.kind for a in result.after_plan.actions] == ["remove_self_signed_root", "restart"]
    roots = [c for c in observe(host).in_store("LocalMachine", "Root")]
    assert host.lab.r46_root.cert in [c.certificate for c in roots]


def test_gpo_root_is_refused_with_guidance_and_nothing_is_deleted(tmp_path: Path) -> None:
    host = SimulatedHost("gpo-root")
    before = host.snapshot()
    with pytest.raises(PlanRefused) as info:
        _plan(host, _desired(host))
    text = " ".join(info.value.guidance)
    assert ".GroupPolicy" in text
    assert "GPO" in text
    assert "--allow-group-policy" in text
    assert host.snapshot() == before
    p = _plan(host, _desired(host), override=True)
    assert [a.kind for a in p.actions] == ["import_cross_sign", "restart"]
    assert not any(a.template == "remove_certificate" for a in p.actions)


def _fault_plan(name: str) -> tuple[DesiredState, Plan]:
    host = SimulatedHost(name)
    desired = _desired(host)
    return desired, _plan(host, desired)


@pytest.mark.parametrize("name", ["broken-r46", "misplaced", "user-key", "shared-ip"])
def test_failure_at_every_action_restores_the_exact_state(name: str, tmp_path: Path) -> None:
    desired, p = _fault_plan(name)
    assert len(p.actions) >= 3
    for index in range(len(p.actions)):
        host = SimulatedHost(name, faults=Faults(fail_action=index))
        host.tls_chains()  # serving: a warm HTTP.sys cache (rollback may restart IIS)
        before = host.snapshot()
        with pytest.raises(ApplyError) as info:
            _apply(host, p, desired, tmp_path)
        err = info.value
        assert err.rollback_complete, str(err)
        assert f"step {index + 1}/{len(p.actions)}" in str(err)
        assert err.journal is not None
        assert Path(err.journal).exists()
        assert host.snapshot() == before, f"{name}: state differs after failure at {index}"
        doc = json.loads(Path(err.journal).read_text())
        assert doc["status"] == "rolled_back"


def test_a_dropped_reply_is_retried_and_the_apply_converges(tmp_path: Path) -> None:
    """A plan without a restart is one apply_plan whose every action re-checks state: when its
    reply is lost (after the host ran it), the whole pipeline is run again and converges."""
    desired, full = _fault_plan("misplaced")
    p = full.model_copy(
        update={"actions": tuple(a for a in full.actions if a.template != "restart")}
    )
    planned = [a.template for a in p.actions]
    for index in range(len(p.actions)):
        for faults in (Faults(drop_connection_at=index), Faults(timeout_at=index)):
            host = SimulatedHost("misplaced", faults=faults)
            result = _apply(host, p, desired, tmp_path)
            # One pipeline that ran every action and lost its reply, then the retry: every
            # action once more, back to back (no rollback, no second pass).
            assert host.invocations.count("apply_plan") == 2, (index, faults)
            changing = [c for c in host.calls if not TEMPLATE_SPECS[c].read_only]
            assert changing == planned + planned, (index, faults)
            assert [s.template for s in result.steps] == planned
            assert [s.changed for s in result.steps] == [False] * len(planned)  # the retry's
            assert result.changed  # yet the host did change (the first run)


def test_a_lost_reply_of_a_plan_with_a_restart_rolls_back(tmp_path: Path) -> None:
    """With a restart in the plan the pipeline is never run twice: a lost reply leaves every
    step "may have run"; the rollback undoes them all and the host is as before."""
    desired, p = _fault_plan("misplaced")
    assert "restart" in [a.template for a in p.actions]
    for index in range(len(p.actions)):
        host = SimulatedHost("misplaced", faults=Faults(drop_connection_at=index))
        host.tls_chains()  # serving: a warm HTTP.sys cache (the rollback restarts IIS)
        before = host.snapshot()
        with pytest.raises(ApplyError, match="result was lost") as info:
            _apply(host, p, desired, tmp_path)
        assert info.value.rollback_complete, str(info.value)
        assert host.invocations.count("apply_plan") == 1
        assert host.snapshot() == before
        assert info.value.journal is not None
        doc = json.loads(Path(info.value.journal).read_text())
        assert doc["outcome_unknown"] is True
        assert doc["status"] == "rolled_back"
        # every backup the plan took was on disk before the pipeline started
        assert [s["backup"] for s in doc["steps"]] == [
            a.backup.model_dump(mode="json") if a.backup else None for a in p.actions
        ]


def test_restart_is_never_retried_after_a_timeout(tmp_path: Path) -> None:
    """After a timeout the first restart may still be stopping services on the host; a
    second stop would race it (issue 11, defect 6). The apply fails and rolls back instead."""
    desired, p = _fault_plan("misplaced")
    (index,) = [i for i, a in enumerate(p.actions) if a.template == "restart"]
    for faults in (Faults(drop_connection_at=index), Faults(timeout_at=index)):
        host = SimulatedHost("misplaced", faults=faults)
        with pytest.raises(ApplyError, match="restart"):
            _apply(host, p, desired, tmp_path)
        first = host.calls.index("restart")
        assert host.calls[first + 1] != "restart"  # not run again straight away


def test_host_gone_mid_apply_then_rollback_from_the_journal_file(tmp_path: Path) -> None:
    desired, p = _fault_plan("misplaced")
    host = SimulatedHost("misplaced", faults=Faults(drop_connection_at=2, persistent=True))
    # Serving (a warm HTTP.sys cache): the restart step's outcome is unknown, so the rollback
    # restarts IIS, which serves the chain the untouched host served.
    host.tls_chains()
    before = host.snapshot()
    with pytest.raises(ApplyError) as info:
        _apply(host, p, desired, tmp_path)
    assert not info.value.rollback_complete
    assert "ROLLBACK INCOMPLETE" in str(info.value)
    assert host.snapshot() != before
    host.reconnect()
    result = rollback(info.value.journal, host, retry=FAST)  # type: ignore[arg-type]
    assert result.complete
    assert host.snapshot() == before


def test_rollback_after_success_restores_observed_state(tmp_path: Path) -> None:
    host = SimulatedHost("misplaced")
    before = observe(host)
    desired = _desired(host)
    result = _apply(host, _plan(host, desired), desired, tmp_path)
    assert observe(host) != before
    assert result.journal is not None
    mode = stat.S_IMODE(os.stat(result.journal).st_mode)
    assert mode == 0o600
    rb = rollback(result.journal, host, retry=FAST)
    assert rb.complete
    assert rb.restarted
    assert observe(host) == before
    assert len(host.served_chain("Default Web Site")) == 2  # short chain again after restart


def test_journal_holds_backups_and_never_the_pfx_or_password(tmp_path: Path) -> None:
    host = SimulatedHost("broken-r46")
    leaf = host.lab.issue_leaf(["new.example.test"])
    pfx = leaf.pfx("s3cret-pfx-pw", legacy=False)
    desired = sectigo_fix(
        site="Default Web Site", pfx=pfx, pfx_password="s3cret-pfx-pw", catalog=host.catalog
    )
    p = _plan(host, desired)
    assert [a.kind for a in p.actions] == [
        "import_cross_sign", "remove_self_signed_root", "import_pfx", "set_binding", "restart",
    ]  # fmt: skip
    result = _apply(host, p, desired, tmp_path)
    assert result.after_plan_empty
    assert result.journal is not None
    text = Path(result.journal).read_text()
    assert "s3cret-pfx-pw" not in text
    import base64

    assert base64.b64encode(pfx).decode()[:40] not in text
    doc = json.loads(text)
    removal = next(s for s in doc["steps"] if s["kind"] == "remove_self_signed_root")
    assert removal["backup"]["physical_store"] == ".AuthRoot"
    assert removal["backup"]["der_b64"]
    binding = next(s for s in doc["steps"] if s["kind"] == "set_binding")
    assert binding["previous_binding"]["certificate_hash"]
    assert "s3cret" not in repr(p)
    assert "s3cret" not in p.model_dump_json()


def test_the_host_receives_the_real_template_name_and_payload(tmp_path: Path) -> None:
    from sectigo_chain.templates.render import TEMPLATE_NAMES

    host = SimulatedHost("misplaced")
    desired = _desired(host)
    p = _plan(host, desired)
    _apply(host, p, desired, tmp_path)
    assert set(host.calls) <= set(TEMPLATE_NAMES)
    assert [c for c in host.calls if c != "observe"] == [a.template for a in p.actions]


def test_apply_refuses_before_any_change_when_the_journal_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sectigo_chain.run.applier import apply as apply_plan

    host = SimulatedHost("broken-r46")
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    the_plan = plan(desired, observe(host), at=NOW, catalog=host.catalog, target=host.target)
    before = host.snapshot()
    missing = tmp_path / "no" / "such" / "dir"  # the library does not create it
    with pytest.raises(InputError, match="cannot write the journal") as raised:
        apply_plan(the_plan, host, catalog=host.catalog, journal_dir=missing, at=NOW)
    assert "nothing was changed" in str(raised.value)
    assert [c for c in host.calls if c != "observe"] == []
    assert host.snapshot() == before


def test_apply_cli_creates_a_missing_journal_folder_like_demo_and_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sectigo_chain.cli.main import main

    missing = tmp_path / "no" / "such" / "dir"
    code = main(["apply", "--target", "sim://broken-r46", "--yes", "--journal-dir", str(missing)])
    out = capsys.readouterr().out
    assert code == 0
    journals = list(missing.glob("sectigo-chain-journal-*.json"))
    assert len(journals) == 1
    assert f"journal: {journals[0]}" in out


def test_apply_cli_refuses_a_journal_folder_it_cannot_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sectigo_chain.cli.main import main

    (tmp_path / "file").write_text("not a folder")
    code = main(["apply", "--target", "sim://broken-r46", "--yes",
                 "--journal-dir", str(tmp_path / "file" / "dir")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("sectigo-chain apply: error: cannot create the journal folder")
    assert "Traceback" not in err
