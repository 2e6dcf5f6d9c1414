"""Suites 1 and 2 of issue 13: the rollback matrix and idempotence, on every ``sim://`` scenario.

Rollback matrix: for every scenario (plus ``broken-r46`` with ``--pfx``), every action index of
its plan and every fault below, apply is run against a simulated host whose HTTP.sys cache is
warm (a serving host), then rolled back *from a fresh process*: the journal file is loaded anew
and the rollback runs against a new host object carrying the same model
(:meth:`SimulatedHost.reopen`), as a new ``sectigo-chain rollback`` would after a kill. The point
is "restored exactly" when the rollback reports complete, the full snapshot (every store and
physical store, friendly names and keys, sites, bindings, HTTP.sys entries, policy value) equals
the one taken before apply, and every HTTP.sys entry serves the chain it served before (for
``stale-cache`` the chain a restart of the untouched host serves is accepted too: a stale cache
cannot come back once any restart refreshed it).

Faults, at action index ``i``:

* ``error``: the script fails (the host reports an error);
* ``drop`` / ``timeout``: the script runs, its reply is lost once (retried if idempotent);
* ``host-lost``: the script runs, then the host is unreachable until the fresh rollback (for the
  restart step: the host lost during the restart);
* ``kill-before``: the process is killed after the journal write, before the action reaches
  the host; ``kill-after``: killed after the action ran, before its reply is read;
* ``kill-in-rollback``: the action fails, then the process is killed after (and, separately,
  before) each script of the automatic rollback, and the rollback is resumed.

Plus, per scenario, the rollback of a successful apply, uninterrupted and killed after each of
its scripts; each of those killed rollbacks is resumed and killed again after each script of the
resumed one, then resumed to the end.

Idempotence: after apply, a fresh plan is empty and a second apply runs no action script.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sectigo_chain.errors import ApplyError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost, SimulatedKill
from sectigo_chain.hosts.sim.scenarios import SCENARIOS, scenario_leaf
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import rollback
from sectigo_chain.state.models import DesiredState
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.testing.lab import LabHierarchy, default_lab
from sectigo_chain.x509.certs import thumbprint

FAST = RetryPolicy(attempts=2, wait_initial=0)
SITE = "Default Web Site"
PFX_PASSWORD = "matrix-pfx-password"
STRATEGY = {"drift": "disable_auto_update"}
OVERRIDE = {"gpo-root"}
NON_ACTION = ("observe", "verify_chain")  # read-only templates


@dataclass
class Setup:
    """One starting point: a scenario and the desired state applied to it."""

    label: str
    scenario: str
    desired: Callable[[SimulatedHost], DesiredState]
    override: bool = False


def setups(lab: LabHierarchy) -> list[Setup]:
    out = []
    for name in sorted(SCENARIOS):
        strategy = STRATEGY.get(name, "remove")

        def desired(host: SimulatedHost, strategy: str = strategy) -> DesiredState:
            return sectigo_fix(site=SITE, catalog=host.catalog, root_strategy=strategy)  # type: ignore[arg-type]

        out.append(Setup(name, name, desired, name in OVERRIDE))
    new = lab.issue_leaf(["www.example.test"], at=_at(lab))
    pfx = new.pfx(PFX_PASSWORD)

    def with_pfx(host: SimulatedHost) -> DesiredState:
        return sectigo_fix(site=SITE, catalog=host.catalog, pfx=pfx, pfx_password=PFX_PASSWORD)

    out.append(Setup("broken-r46+pfx", "broken-r46", with_pfx))
    return out


def _at(lab: LabHierarchy) -> dt.datetime:
    """The one clock of the suite: a day into the scenarios' leaf's validity."""
    return scenario_leaf(lab).cert.not_valid_before_utc + dt.timedelta(days=1)


@dataclass
class Figure:
    tried: int = 0
    restored: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    by_fault: dict[str, list[int]] = field(default_factory=dict)  # fault -> [tried, restored]

    def count(self, label: str, problem: str | None, fault: str = "") -> None:
        self.tried += 1
        tally = self.by_fault.setdefault(fault, [0, 0])
        tally[0] += 1
        if problem:
            self.failures.append(f"{label}: {problem}")
        else:
            self.restored += 1
            tally[1] += 1

    def breakdown(self) -> str:
        return "\n".join(f"  {f}: {t} tried / {r} restored" for f, (t, r) in self.by_fault.items())

    def line(self, what: str) -> str:
        return f"{what}: {self.tried} points tried / {self.restored} restored exactly"


class Matrix:
    """Runs the points of suite 1 (and suite 2) for one lab and one clock."""

    def __init__(self, tmp: Path, lab: LabHierarchy | None = None) -> None:
        self.lab = lab or default_lab()
        self.at = _at(self.lab)
        self.tmp = tmp
        self.counter = 0
        self._plans: dict[str, Plan] = {}
        self._fresh: dict[str, dict[str, list[str]]] = {}

    # ------------------------------------------------------------------ hosts and plans

    def host(self, s: Setup, faults: Faults | None = None) -> SimulatedHost:
        return SimulatedHost(s.scenario, lab=self.lab, clock=lambda: self.at, faults=faults)

    def plan(self, s: Setup, host: SimulatedHost | None = None) -> Plan:
        if host is None and s.label in self._plans:
            return self._plans[s.label]
        h = host or self.host(s)
        p = plan(
            s.desired(h), observe(h), at=self.at, catalog=h.catalog,
            allow_group_policy_override=s.override, target=h.target,
        )  # fmt: skip
        if host is None:
            self._plans[s.label] = p
        return p

    @staticmethod
    def served(host: SimulatedHost) -> dict[str, list[str]]:
        return {
            ep: [thumbprint(c) for c in host.served_chain(ep)] for ep in sorted(host.model.sslcert)
        }

    def fresh_served(self, s: Setup) -> dict[str, list[str]]:
        """What the untouched host serves once a restart refreshed its cache."""
        if s.label not in self._fresh:
            h = self.host(s)
            h.model.refresh_served("http_service", h.served_cache_refresh, self.at)
            self._fresh[s.label] = self.served(h)
        return self._fresh[s.label]

    # ------------------------------------------------------------------ one point

    def point(
        self,
        s: Setup,
        faults: Faults,
        *,
        after_success: Faults | None = None,
        resume_kill: int | None = None,
    ) -> str | None:
        """Run one point; "" when restored exactly, else what went wrong. ``resume_kill``: the
        resumed rollback is killed too, after its script number ``resume_kill``, and resumed
        again by another fresh process (``None`` returned: it ran fewer scripts than that)."""
        self.counter += 1
        path = self.tmp / f"journal-{self.counter}.json"
        host = self.host(s, faults)
        host.tls_chains()  # a serving host: every HTTP.sys entry has built and cached its chain
        before, before_served = _state(host), self.served(host)
        p = self.plan(s)
        try:
            apply(p, host, journal_path=path, retry=FAST, at=self.at)
        except (ApplyError, SimulatedKill):
            pass
        else:
            if after_success is not None:  # roll the successful apply back, killed there
                host.faults = after_success
                with contextlib.suppress(SimulatedKill):
                    rollback(path, host, retry=FAST)
        if not path.exists():
            return "no journal was written"
        again = host.reopen()  # a fresh process against the same host
        if resume_kill is not None:
            again.faults = Faults(kill_after=resume_kill)
            try:
                rollback(path, again, retry=FAST)
            except SimulatedKill:
                again = again.reopen()
            else:
                return None
        result = rollback(path, again, retry=FAST)
        if not result.complete:
            return "incomplete: " + "; ".join(result.errors)
        if _state(again) != before:
            return "the host differs from before apply"
        served = self.served(again)
        if served != before_served and served != self.fresh_served(s):
            return f"serves {served}, served {before_served} before apply"
        return ""

    # ------------------------------------------------------------------ the suites

    def points(self, s: Setup) -> Iterator[tuple[str, Faults, Faults | None]]:
        n = len(self.plan(s).actions)
        for i in range(n):
            yield f"error@{i}", Faults(fail_action=i), None
            yield f"drop@{i}", Faults(drop_connection_at=i), None
            yield f"timeout@{i}", Faults(timeout_at=i), None
            yield f"host-lost@{i}", Faults(drop_connection_at=i, persistent=True), None
            yield f"kill-before@{i}", Faults(kill_before=i), None
            yield f"kill-after@{i}", Faults(kill_after=i), None
            # the automatic rollback after a failure at i: its scripts are i+1, i+2, ...
            for k in range(self.rollback_scripts(s, Faults(fail_action=i))):
                yield f"kill-in-rollback@{i}+{k}", Faults(fail_action=i, kill_after=i + 1 + k), None
                yield (
                    f"kill-before-rollback-script@{i}+{k}",
                    Faults(fail_action=i, kill_before=i + 1 + k),
                    None,
                )
        if n:
            yield "rollback-after-success", Faults(), Faults()
            for k in range(self.rollback_scripts(s, None)):
                yield f"kill-in-rollback-after-success+{k}", Faults(), Faults(kill_after=n + k)

    def rollback_scripts(self, s: Setup, faults: Faults | None) -> int:
        """How many action scripts the rollback runs after apply with ``faults`` (``None``:
        after a successful apply)."""
        self.counter += 1
        path = self.tmp / f"journal-{self.counter}.json"
        host = self.host(s, faults)
        try:
            apply(self.plan(s), host, journal_path=path, retry=FAST, at=self.at)
        except ApplyError:
            assert faults is not None
            assert faults.fail_action is not None
            return _actions(host.calls[_nth_action(host.calls, faults.fail_action) + 1 :])
        mark = len(host.calls)
        rollback(path, host, retry=FAST)
        return _actions(host.calls[mark:])

    def run_matrix(self) -> Figure:
        fig = Figure()
        start = time.perf_counter()
        for s in setups(self.lab):
            for label, faults, after in self.points(s):
                fault = label.split("@")[0].split("+")[0]
                fig.count(f"{s.label} {label}", self.point(s, faults, after_success=after), fault)
                if after is None or after.kill_after is None:
                    continue
                # that interrupted rollback, resumed, interrupted again after each script
                for j in itertools.count():
                    problem = self.point(s, faults, after_success=after, resume_kill=j)
                    if problem is None:
                        break
                    fig.count(
                        f"{s.label} {label}, resumed and killed again +{j}",
                        problem,
                        "kill-in-resumed-rollback",
                    )
        fig.seconds = time.perf_counter() - start
        return fig

    def run_idempotence(self) -> Figure:
        """Apply, then plan again and apply again: the second apply runs no action."""
        fig = Figure()
        start = time.perf_counter()
        for s in setups(self.lab):
            fig.tried += 1
            host = self.host(s)
            apply(self.plan(s), host, journal_dir=self.tmp, retry=FAST, at=self.at)
            second = self.plan(s, host)
            mark = len(host.calls)
            result = apply(second, host, journal_dir=self.tmp, retry=FAST, at=self.at)
            ran = _actions(host.calls[mark:])
            if second.actions or ran or result.changed or result.journal is not None:
                fig.failures.append(
                    f"{s.label}: second plan {[a.kind for a in second.actions]}, {ran} action(s)"
                )
            else:
                fig.restored += 1
        fig.seconds = time.perf_counter() - start
        return fig


def _actions(calls: list[str]) -> int:
    return sum(1 for c in calls if c not in NON_ACTION)


def _nth_action(calls: list[str], n: int | None) -> int:
    """Position in ``calls`` of action script number ``n`` (0-based)."""
    seen = -1
    for pos, name in enumerate(calls):
        if name not in NON_ACTION:
            seen += 1
            if seen == n:
                return pos
    raise AssertionError(f"action {n} not found in {calls}")


def _state(host: SimulatedHost) -> dict[str, Any]:
    """The full snapshot without the raw cache (the served chains are compared separately)."""
    snap = host.snapshot()
    snap["_sim"].pop("served_cache")
    return snap
