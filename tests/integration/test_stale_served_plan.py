"""``plan`` -> ``apply`` fixes ``sim://stale-cache`` without ``verify``'s ladder: the served
chain is observed over real TLS (the simulated host's loopback listener) and planned for."""

from __future__ import annotations

from pathlib import Path

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.fleet.rollout import run_fleet
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.state.models import ObservedServed
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.tls.fetch import fetch_served_chain
from sectigo_chain.x509.certs import thumbprint

SITE = "Default Web Site"


def _served(host: SimulatedHost) -> ObservedServed:
    ip, port, name = host.start_tls().address_for(SITE)
    chain = fetch_served_chain(ip, port, servername=name).chain.certificates
    return ObservedServed(site=SITE, thumbprints=tuple(thumbprint(c) for c in chain))


def test_plan_then_apply_refreshes_the_stale_chain_and_a_second_plan_is_empty(
    tmp_path: Path,
) -> None:
    with SimulatedHost("stale-cache") as host:
        at = host.served_chain(SITE)[0].not_valid_before_utc
        desired = sectigo_fix(site=SITE, catalog=host.catalog)
        before = _served(host)
        cross = host.catalog.cross_sign("R46").thumbprint
        assert cross not in before.thumbprints
        observed = observe(host).model_copy(update={"served": (before,)})
        the_plan = plan(desired, observed, at=at, catalog=host.catalog)
        assert [a.kind for a in the_plan.actions] == ["restart"]
        result = apply(the_plan, host, desired=desired, catalog=host.catalog,
                       journal_dir=tmp_path, at=at)  # fmt: skip
        assert result.changed
        after = _served(host)
        assert cross in after.thumbprints  # what TLS clients get now
        again = plan(desired, observe(host).model_copy(update={"served": (after,)}), at=at,
                     catalog=host.catalog)  # fmt: skip
        assert again.actions == ()


def test_cli_plan_finds_work_and_apply_changes_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--target", "sim://stale-cache", "--detailed-exitcode"]) == 1
    assert "still serves a stale chain" in capsys.readouterr().out
    assert main(["plan", "--target", "sim://stale-cache", "--detailed-exitcode",
                 "--no-served"]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["apply", "--target", "sim://stale-cache", "--yes",
                 "--journal-dir", str(tmp_path)])  # fmt: skip
    assert code == 0
    assert "Applied (changed)" in capsys.readouterr().out


def test_fleet_plans_and_applies_the_refresh(tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.toml"
    inventory.write_text('version = 1\n[[hosts]]\nname = "s"\ntarget = "sim://stale-cache"\n')
    planned = run_fleet(inventory, "plan")
    assert planned.hosts[0].status == "planned"
    assert planned.exit_code() == 0
    applied = run_fleet(inventory, "apply", journal_dir=tmp_path / "j")
    row = applied.hosts[0]
    assert (row.status, row.before and row.before.verdict, row.after and row.after.verdict) == (
        "applied",
        "fail",
        "pass",
    )
