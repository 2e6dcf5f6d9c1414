"""The ``demo`` story as a function: the whole job on the embedded simulated host.

:func:`run_demo` starts a :class:`~sectigo_chain.hosts.sim.host.SimulatedHost` (default
scenario ``broken-r46``) with its real TLS listener on 127.0.0.1, checks the served chain over
TLS (legacy clients fail: the short chain), plans the fix, applies it (journal in a temporary
directory unless one is given), checks again (legacy, modern and both pass) and verifies
(:func:`sectigo_chain.run.verifier.verify`). It needs no Windows and no network.
:class:`DemoRecord` holds every step's typed result; ``to_json()`` is ``demo --json``,
``story()`` the text a newcomer reads.

``over="winrm"`` puts the simulated host behind the loopback WinRM endpoint
(:mod:`sectigo_chain.testing.winrm`, needs the ``testing`` extra): every template then travels
through :class:`~sectigo_chain.hosts.winrm.WinRMExecutor`, real pypsrp, HTTPS, WS-Management and
PSRP, and the record counts the pipelines and WS-Management requests it took.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from sectigo_chain.run.verify_report import VerifyReport
from sectigo_chain.state.models import RootStrategy
from sectigo_chain.state.plan_models import ApplyResult, Plan
from sectigo_chain.tls.report import CertSummary, ChainReport

__all__ = ["DEMO_SITE", "DemoRecord", "run_demo"]

DEMO_SITE = "Default Web Site"
DEMO_PROFILES: tuple[str, ...] = ("legacy", "modern", "both")
_THUMB = re.compile(r" \([0-9A-F]{40}\)")
_THUMB_FIRST = re.compile(r"\([0-9A-F]{40}, ")


class DemoRecord(BaseModel):
    """Everything the demo did, step by step (typed results; see :meth:`to_json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    description: str
    target: str
    site: str
    endpoint: str
    journal: str | None
    journal_dir_temporary: bool
    before: ChainReport | None  # None: the TLS check could not fetch a chain (before_error)
    before_error: str | None = None
    plan: Plan
    apply: ApplyResult
    after: ChainReport | None
    after_error: str | None = None
    verify: VerifyReport
    timings: dict[str, float]
    verdict: Literal["pass", "fail"]
    over: Literal["sim", "winrm"] = "sim"
    #: with ``over="winrm"``: pipelines, pools and WS-Management requests per action
    winrm: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        """The ``sectigo-chain demo --json`` document."""
        return {
            "scenario": self.scenario,
            "description": self.description,
            "target": self.target,
            "simulated": True,
            "site": self.site,
            "endpoint": self.endpoint,
            "verdict": self.verdict,
            "journal": self.journal,
            "journal_dir_temporary": self.journal_dir_temporary,
            "before": self.before.to_json() if self.before else {"error": self.before_error},
            "plan": self.plan.model_dump(mode="json"),
            "apply": self.apply.to_document(),
            "after": self.after.to_json() if self.after else {"error": self.after_error},
            "verify": self.verify.to_json(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "over": self.over,
            "winrm": self.winrm,
        }

    def remedies(self) -> list[str]:
        """What the plan and verification advise when the story ends badly (the plan's own
        advice, e.g. ``--strategy disable_auto_update`` when Automatic Root Update re-adds the
        root; a restart or a reboot for a stale served chain)."""
        out = [w.split("consider ", 1)[1] for w in self.plan.warnings if "consider " in w]
        out = [f"run again with {advice}" for advice in out]
        v = self.verify
        if v.reboot_required:
            out.append("no restart refreshed the served chain: reboot the host")
        out += [n for n in v.notes if "restart should help" in n]
        return out

    def story(self) -> str:
        """The before/after story, for a terminal."""
        v = self.verify
        lines = [
            f"sectigo-chain demo: the Sectigo R46/E46 chain fix on a simulated IIS host "
            f"({self.target})",
            f"  {self.description}",
            f"  Its real TLS listener {self.endpoint} serves what the modelled HTTP.sys "
            f"serves for {self.site!r}.",
        ]
        if self.over == "winrm" and self.winrm is not None:
            lines += [
                f"  Every script went over WinRM to {self.winrm['target']} (pypsrp -> HTTPS ->",
                "  WS-Management -> PSRP -> the simulated host), a loopback endpoint.",
            ]
        lines += [
            "",
            *_check_lines("1. BEFORE ", self.before, self.before_error, details=True),
        ]
        lines.append(f"2. PLAN    {len(self.plan.actions)} action(s):")
        for i, action in enumerate(self.plan.actions, 1):
            what, _, why = _short(action.reason).partition(": ")
            lines.append(f"   {i}. {what}" + (f"\n      because {why}" if why else ""))
        if not self.plan.actions:
            lines.append("   nothing to do")
        where = " (a temporary directory)" if self.journal_dir_temporary else ""
        steps = len(self.apply.steps)
        state = "changed the host" if self.apply.changed else "changed nothing"
        lines.append(f"3. APPLY   {steps} step(s) ran and {state}; journal{where}:")
        lines.append(f"   {self.journal or 'none (nothing to do)'}")
        lines += _check_lines("4. AFTER  ", self.after, self.after_error, details=False)
        host = "right" if v.host_chain is not None and v.host_chain.right else "WRONG"
        plan = "empty" if v.plan_empty else "NOT empty"
        ladder = f"; stale cache refreshed by {v.fixed_by}" if v.fixed_by else ""
        lines.append(
            f"5. VERIFY  chain built on the host {host}, served chain "
            f"{(v.served.verdict if v.served else 'unchecked').upper()}, plan {plan}{ladder}: "
            f"{v.verdict.upper()}"
        )
        lines.append("")
        served = v.served
        if self.ok and served is not None:
            others = ", ".join(n for n in served.profiles if n != "legacy")
            lines.append(
                f"Proved: clients that trust only USERTrust (legacy) validate the served chain "
                f"now ({'they failed before' if self._legacy_failed_before else 'as before'}); "
                f"{others} too. Checked over real TLS by the library's own check code."
            )
        else:
            lines.append("The story did not end well: see the steps above (and --json).")
            lines += [f"  What to do: {advice}" for advice in self.remedies()]
        lines.append(
            "The host was SIMULATED (a model from public documentation, not Windows); run "
            "plan/apply/verify with --target winrm://HOST for a real one."
        )
        if self.winrm is not None:
            lines.append(
                f"Over WinRM: {self.winrm['pipelines']} pipelines on "
                f"{self.winrm['pools_opened']} runspace pool(s), "
                f"{self.winrm['requests']} WS-Management requests."
            )
        lines.append(f"Done in {self.timings.get('total', 0.0):.2f} s.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.story()

    def _repr_markdown_(self) -> str:
        return f"```text\n{self.story()}\n```"

    @property
    def _legacy_failed_before(self) -> bool:
        legacy = self.before.profiles.get("legacy") if self.before else None
        return self.before is None or (legacy is not None and not legacy.valid)


def _check_lines(
    head: str, report: ChainReport | None, error: str | None, *, details: bool
) -> list[str]:
    if report is None:
        return [f"{head} check over TLS: ERROR: {error}"]
    lines = [
        f"{head} check over TLS: {report.verdict.upper()}",
        f"   served: {_chain(report.served_chain)}",
        f"   clients: {_profiles(report)}",
    ]
    if details:
        lines += [f"   {f.code}: {f.detail}" for f in report.findings if f.severity == "error"][:2]
    return lines


def _short(text: str) -> str:
    """Drop thumbprints from a reason (the JSON record keeps them)."""
    return _THUMB.sub("", _THUMB_FIRST.sub("(", text))


def _chain(served: Sequence[CertSummary]) -> str:
    if not served:
        return "nothing"
    names = [c.common_name for c in served]
    last = served[-1]
    issuer = _cn(last.issuer)
    tail = f" (issued by {issuer})" if len(served) > 1 and issuer != last.common_name else ""
    return " <- ".join(names) + tail


def _cn(rfc4514: str) -> str:
    for part in rfc4514.split(","):
        if part.startswith("CN="):
            return part[3:]
    return rfc4514


def _profiles(report: ChainReport) -> str:
    return ", ".join(
        f"{name} ok" if p.valid else f"{name} FAILS ({p.classification})"
        for name, p in report.profiles.items()
    )


def run_demo(
    scenario: str = "broken-r46",
    *,
    journal_dir: Path | None = None,
    profiles: Sequence[str] = DEMO_PROFILES,
    strategy: RootStrategy = "remove",
    at: dt.datetime | None = None,
    over: Literal["sim", "winrm"] = "sim",
) -> DemoRecord:
    """Run the demo story on a fresh simulated host (see the module docstring)."""
    import contextlib

    from sectigo_chain.errors import TLSFetchError
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.hosts.sim.scenarios import SCENARIOS
    from sectigo_chain.run.applier import apply, observe
    from sectigo_chain.run.verifier import verify
    from sectigo_chain.state.planner import plan as make_plan
    from sectigo_chain.state.recipe import sectigo_fix
    from sectigo_chain.tls.check import check_endpoint, resolve_profiles

    timings: dict[str, float] = {}
    started = mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = now - mark
        mark = now

    temporary = journal_dir is None
    directory = journal_dir or Path(tempfile.mkdtemp(prefix="sectigo-chain-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    with SimulatedHost(scenario) as host, contextlib.ExitStack() as stack:
        executor: Any = host
        server: Any = None
        if over == "winrm":
            from sectigo_chain.hosts.winrm import WinRMExecutor
            from sectigo_chain.testing.winrm import WinRMTestServer

            server = stack.enter_context(WinRMTestServer(host, at=at))
            executor = stack.enter_context(WinRMExecutor(server.settings()))
        catalog = host.catalog
        resolved = resolve_profiles(list(profiles), catalog)
        listener = host.start_tls()
        ip, port, name = listener.address_for(DEMO_SITE)
        lap("start")

        def check() -> tuple[ChainReport | None, str | None]:
            try:
                report = check_endpoint(
                    ip, port, servername=name, profiles=resolved, at=at, catalog=catalog
                )
            except TLSFetchError as exc:  # e.g. the host serves nothing yet (user-key)
                return None, f"{type(exc).__name__}: {exc}"
            return report, None

        before, before_error = check()
        lap("check_before")
        desired = sectigo_fix(site=DEMO_SITE, catalog=catalog, root_strategy=strategy)
        when = at or dt.datetime.now(dt.timezone.utc)
        observed = observe(executor)
        the_plan = make_plan(desired, observed, at=when, catalog=catalog, target=executor.target)
        lap("plan")
        result = apply(
            the_plan, executor, desired=desired, catalog=catalog, journal_dir=directory,
            before=observed,
        )  # fmt: skip
        lap("apply")
        after, after_error = check()
        lap("check_after")
        report = verify(
            executor, desired, endpoint=(ip, port, name), profiles=resolved, at=at, catalog=catalog
        )
        lap("verify")
        winrm = None
        if server is not None:
            winrm = {
                "target": server.target,
                "pipelines": server.stats.pipelines,
                "pools_opened": server.stats.pools_opened,
                "requests": server.stats.total_requests,
                "requests_by_action": dict(sorted(server.stats.requests.items())),
            }
        target = executor.target
    timings["total"] = time.perf_counter() - started
    if temporary and result.journal is None:
        directory.rmdir()  # nothing was journaled: leave no empty directory behind
    passed = report.ok  # verify re-checks the served chain (after the ladder, if climbed)
    return DemoRecord(
        scenario=host.scenario_name,
        description=SCENARIOS.get(host.scenario_name, ""),
        target=target,
        site=DEMO_SITE,
        endpoint=f"127.0.0.1:{port}" + (f" (SNI {name})" if name else ""),
        journal=result.journal,
        journal_dir_temporary=temporary,
        before=before,
        before_error=before_error,
        plan=the_plan,
        apply=result,
        after=after,
        after_error=after_error,
        verify=report,
        timings=timings,
        verdict="pass" if passed else "fail",
        over=over,
        winrm=winrm,
    )
