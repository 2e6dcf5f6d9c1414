"""The served chain in the plan (issue 14, point 1): the caller observes what a site serves and
passes it in ``ObservedState.served``; the planner (pure) plans a refresh when the stores are
right but the served chain is stale, and warns when it could not be observed."""

from __future__ import annotations

import datetime as dt

import pytest

from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import observe
from sectigo_chain.state.models import ObservedServed, ObservedState
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.x509.certs import thumbprint

SITE = "Default Web Site"


def _state(scenario: str) -> tuple[SimulatedHost, ObservedState, list[str]]:
    host = SimulatedHost(scenario)
    served = [thumbprint(c) for c in host.served_chain(SITE)]
    return host, observe(host), served


def _at(host: SimulatedHost) -> dt.datetime:
    return host.served_chain(SITE)[0].not_valid_before_utc + dt.timedelta(days=1)


def test_a_stale_served_chain_is_refreshed_by_the_configured_restart() -> None:
    host, observed, served = _state("stale-cache")
    desired = sectigo_fix(site=SITE, catalog=host.catalog)
    stores_only = plan(desired, observed, at=_at(host), catalog=host.catalog)
    assert stores_only.actions == ()  # what the plan said before: "nothing to do"
    seen = ObservedServed(site=SITE, endpoint="127.0.0.1:443", thumbprints=tuple(served))
    with_served = plan(desired, observed.model_copy(update={"served": (seen,)}),
                       at=_at(host), catalog=host.catalog)  # fmt: skip
    assert [a.kind for a in with_served.actions] == ["restart"]
    action = with_served.actions[0]
    assert action.params["mode"] == "iisreset"
    assert "still serves a stale chain" in action.reason
    assert "without the cross-sign" in action.reason


def test_a_fresh_served_chain_plans_nothing_and_restart_none_warns() -> None:
    host, observed, served = _state("fixed")
    desired = sectigo_fix(site=SITE, catalog=host.catalog)
    seen = ObservedServed(site=SITE, thumbprints=tuple(served))
    fresh = plan(desired, observed.model_copy(update={"served": (seen,)}), at=_at(host),
                 catalog=host.catalog)  # fmt: skip
    assert fresh.actions == ()
    stale_host, stale_observed, stale = _state("stale-cache")
    no_restart = sectigo_fix(site=SITE, catalog=stale_host.catalog, restart="none")
    seen = ObservedServed(site=SITE, thumbprints=tuple(stale))
    warned = plan(no_restart, stale_observed.model_copy(update={"served": (seen,)}),
                  at=_at(stale_host), catalog=stale_host.catalog)  # fmt: skip
    assert warned.actions == ()
    assert any("restart 'none' leaves it so" in w for w in warned.warnings)


@pytest.mark.parametrize("scenario", ["stale-cache", "fixed"])
def test_an_unreachable_endpoint_is_a_warning(scenario: str) -> None:
    host, observed, _ = _state(scenario)
    desired = sectigo_fix(site=SITE, catalog=host.catalog)
    seen = ObservedServed(site=SITE, endpoint="web01:443", error="connection refused")
    result = plan(desired, observed.model_copy(update={"served": (seen,)}), at=_at(host),
                  catalog=host.catalog)  # fmt: skip
    assert result.actions == ()
    assert any(
        "could not be observed (web01:443: connection refused)" in w for w in result.warnings
    )
