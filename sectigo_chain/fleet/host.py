"""One host of a fleet run: open, check, observe, plan, apply, verify, close -> a ``HostRow``.

:func:`run_host` never raises for a host's own problem: every exception becomes that host's row
(status ``failed`` or ``rolled_back``, the error class and its message with the host's secrets
masked), so one host never stops the others from being reported.

The served chain of a host is read, in this order of preference:

* ``tls``: over TLS from the host's ``check`` endpoint, or from the binding's address
  (``ip``, else the WinRM host name; SNI = ``hostname``) for ``winrm://`` and ``local`` targets;
* ``sim-tls``: for ``sim://`` targets when ``sim_tls`` is on, from a real TLS listener on
  127.0.0.1 serving exactly what the simulated host serves
  (:mod:`sectigo_chain.hosts.sim.listener`);
* ``sim-model``: otherwise, straight from the simulated host's model
  (``SimulatedHost.served_chain``) judged by the pure
  :func:`~sectigo_chain.tls.check.report_for_chain`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from sectigo_chain.errors import (
    ApplyError,
    ConnectionFailed,
    PlanRefused,
    ScriptTimeout,
    TLSFetchError,
)
from sectigo_chain.fleet.context import (
    ChainModel,
    Endpoint,
    ExecutorFactory,
    FleetContext,
    chain_check,
    endpoint_label,
    model_of,
    open_executor,
    tls_endpoint,
)
from sectigo_chain.fleet.inventory import HostSecrets, ResolvedHost
from sectigo_chain.fleet.report import ActionLine, ChainCheck, HostError, HostRow, HostStatus

if TYPE_CHECKING:
    from sectigo_chain.hosts.base import Executor
    from sectigo_chain.state.models import DesiredState
    from sectigo_chain.trust.profiles import Profile
    from sectigo_chain.x509.catalog import Catalog

__all__ = ["ExecutorFactory", "FleetContext", "open_executor", "run_host"]

_NO_TLS_NOTE = "the served chain was not checked (no TLS endpoint given)"


# ----------------------------------------------------------------------------- the worker


class _Host:
    """The state of one host's run (filled in as it goes, so a failure keeps what was seen)."""

    def __init__(self, host: ResolvedHost, secrets: HostSecrets, ctx: FleetContext) -> None:
        self.host = host
        self.secrets = secrets
        self.ctx = ctx
        self.timings: dict[str, float] = {}
        self.out: dict[str, Any] = {}
        self.executor: Executor | None = None
        self.sim: ChainModel | None = None
        self.endpoint: Endpoint | None = None
        self.source: Any = "tls"
        self.catalog: Catalog | None = None
        self.listener: Any = None

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.perf_counter() - started, 4)

    # ---------------------------------------------------------------- opening

    def open(self) -> None:
        started = time.perf_counter()
        from sectigo_chain.hosts.sim.host import SimulatedHost
        from sectigo_chain.hosts.targets import catalog_for

        self.executor = open_executor(self.host, self.secrets, self.ctx)
        self.sim = model_of(self.executor)
        self.catalog = catalog_for(self.sim or self.executor)  # type: ignore[arg-type]
        if self.sim is not None and self.host.check is None:
            if (self.ctx.sim_tls or self.ctx.entries) and isinstance(self.sim, SimulatedHost):
                listener = self.listener = self.sim.start_tls()
                self.endpoint = listener.address_for(self.host.site)
                self.source = "sim-tls"
            else:
                self.source = "sim-model"
        else:
            self.endpoint = tls_endpoint(self.host)
        self.timed("open", started)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
        if self.sim is not None and id(self.sim) != id(self.executor):
            self.sim.close()

    # ---------------------------------------------------------------- checks

    def check(self, name: str) -> ChainCheck:
        started = time.perf_counter()
        try:
            return self._check()
        finally:
            self.timed(name, started)

    def _check(self) -> ChainCheck:
        from sectigo_chain.tls.check import check_endpoint

        if self.source == "sim-model":
            assert self.sim is not None
            assert self.catalog is not None
            where = f"model of {self.sim.target}, site {self.host.site}"
            return self.ctx.judge(self.sim.served_chain(self.host.site), self.host, self.catalog,
                                  where)  # fmt: skip
        assert self.endpoint is not None
        label = endpoint_label(self.endpoint)
        try:
            report = check_endpoint(
                self.endpoint[0], self.endpoint[1], servername=self.endpoint[2],
                profiles=self._profiles(), timeout=self.ctx.tls_timeout, at=self.ctx.at,
                catalog=self.catalog,
            )  # fmt: skip
        except TLSFetchError as exc:
            return ChainCheck(source=self.source, endpoint=label, verdict="error",
                              error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        return chain_check(report, self.source, label)

    def _profiles(self) -> list[Profile]:
        from sectigo_chain.x509.catalog import default_catalog

        return self.ctx.profiles(self.host.profiles, self.catalog or default_catalog())

    # ---------------------------------------------------------------- the steps

    def run(self) -> HostStatus:
        mode = self.ctx.mode
        if mode == "check" and not _needs_executor(self.host) and not self.ctx.entries:
            from sectigo_chain.hosts.targets import env_catalog

            self.endpoint = tls_endpoint(self.host)
            self.catalog = env_catalog()  # as a host with an executor would be judged
            before = self.out["before"] = self.check("before")
            return self._checked(before)
        self.open()
        before = self.out["before"] = self.check("before")
        if mode == "check":
            status = self._checked(before)
            if self.ctx.entries:  # check mode changes nothing: no ladder
                status = "failed" if not self._entries(climb=False) else status
            return status
        assert self.executor is not None
        assert self.catalog is not None
        from sectigo_chain.run.applier import observe
        from sectigo_chain.state.planner import plan

        desired = self.ctx.desired(self.host, self.secrets, self.catalog)
        started = time.perf_counter()
        observed = observe(self.executor, timeout=self.host.timeout, retry=self.ctx.retry)
        observed = observed.model_copy(update={"served": (self._served(before),)})
        self.timed("observe", started)
        started = time.perf_counter()
        the_plan = plan(
            desired, observed, at=self.ctx.at, catalog=self.catalog,
            allow_group_policy_override=self.host.allow_group_policy, target=self.executor.target,
        )  # fmt: skip
        self.timed("plan", started)
        self.out["actions"] = self.ctx.share(
            tuple(
                self.ctx.share(ActionLine(kind=a.kind, reason=a.reason)) for a in the_plan.actions
            )
        )
        self.out["warnings"] = self.ctx.share(the_plan.warnings)
        if mode == "plan":
            return "planned" if the_plan.actions else "unchanged"
        if the_plan.actions:
            self._apply(the_plan, observed)
        return self._verify(desired, changed=bool(the_plan.actions))

    def _served(self, before: ChainCheck) -> Any:
        """The served chain the "before" check saw, as planner input (see ObservedServed)."""
        from sectigo_chain.state.models import ObservedServed

        if before.verdict == "error":
            return ObservedServed(site=self.host.site, endpoint=before.endpoint,
                                  error=before.error or "not reachable")  # fmt: skip
        thumbprints = tuple(c.thumbprint for c in before.chain)
        return ObservedServed(
            site=self.host.site, endpoint=before.endpoint, thumbprints=thumbprints
        )

    def _checked(self, before: ChainCheck) -> HostStatus:
        if before.verdict == "error":
            self.out["error"] = HostError(type="TLSFetchError", message=before.error or "",
                                          unreachable=True)  # fmt: skip
            return "failed"
        return "failed" if before.verdict == "fail" else "checked"

    def _apply(self, the_plan: Any, observed: Any) -> None:
        from sectigo_chain.run.applier import apply, default_journal_path

        assert self.executor is not None
        journal = default_journal_path(self.host.name, self.ctx.journal_dir)
        started = time.perf_counter()
        try:
            result = apply(
                the_plan, self.executor, catalog=self.catalog,
                allow_group_policy_override=self.host.allow_group_policy, journal_path=journal,
                timeout=self.host.timeout, retry=self.ctx.retry, at=self.ctx.at,
                before=observed,
            )  # fmt: skip
        except ApplyError as exc:
            self.out.update(journal=exc.journal, rolled_back=tuple(exc.rolled_back),
                            rollback_complete=exc.rollback_complete, changed=False)  # fmt: skip
            self.timed("apply", started)
            try:  # what the host serves now that it was rolled back (evidence)
                self.out["after"] = self.check("after")
            except Exception as check_exc:  # the row must survive a failing evidence check
                self.out["note"] = (
                    f"after rollback, the served chain could not be read: {check_exc}"
                )
            raise
        self.timed("apply", started)
        self.out.update(journal=result.journal, changed=result.changed)
        if result.outbound is not None and result.outbound.after is not None:
            self.out["outbound"] = (
                f"{result.outbound.verdict}: {result.outbound.after.line()} "
                f"({result.outbound.reason})"
            )

    def _verify(self, desired: DesiredState, *, changed: bool) -> HostStatus:
        from sectigo_chain.run.verifier import verify

        assert self.executor is not None
        assert self.catalog is not None
        tls = self.source != "sim-model"
        started = time.perf_counter()
        try:
            report = verify(
                self.executor, desired, endpoint=self.endpoint if tls else None,
                site=self.host.site, profiles=self._profiles(), at=self.ctx.at,
                catalog=self.catalog, climb_ladder=self.ctx.climb_ladder,
                timeout=self.host.timeout, tls_timeout=self.ctx.tls_timeout,
                retry=self.ctx.retry,
            )  # fmt: skip
        except Exception:
            self.out["verify"] = "error"
            self.timed("verify", started)
            raise
        self.timed("verify", started)
        notes = [n for n in report.notes if tls or n != _NO_TLS_NOTE]
        if not report.plan_empty:
            notes.append("observing again still finds work: " + "; ".join(report.remaining))
        if report.host_chain is not None and report.host_chain.problem:
            notes.append(report.host_chain.problem)
        if report.fixed_by:
            notes.append(f"the served chain refreshed after: {report.fixed_by}")
        if report.reboot_required:
            notes.append("no restart refreshed the served chain: a reboot is needed")
        if tls:
            after = (
                chain_check(report.served, self.source, endpoint_label(self.endpoint))
                if report.served is not None and self.endpoint is not None
                else ChainCheck(source=self.source, endpoint=endpoint_label(self.endpoint),
                                verdict="error", error=report.served_error or "not checked")
            )  # fmt: skip
        else:
            after = self.check("after")
        passed = report.verdict == "pass" and after.verdict in ("pass", "warn")
        self.out.update(after=after, converged=report.plan_empty, verify_notes=tuple(notes))
        if self.ctx.entries:
            stores_right = report.plan_empty and (
                report.host_chain is not None and report.host_chain.right
            )
            passed = self._entries(climb=self.ctx.climb_ladder and stores_right) and passed
        self.out["verify"] = "pass" if passed else "fail"
        if passed:
            return "applied" if changed else "unchanged"
        self.out["note"] = (
            "the host does not verify after the change"
            if changed
            else ("nothing to change, but the host does not verify")
        )
        return "failed"

    def _entries(self, *, climb: bool) -> bool:
        """``--entries``: every HTTP.sys entry of the site, with and without SNI, per TLS
        version, and (``climb``) a refresh of each stale entry on its own before ``iisreset``
        (:func:`sectigo_chain.run.entries.verify_entries`); the rows go into the host's row.
        True when every handshake passes."""
        from sectigo_chain.fleet.report import EntryLine
        from sectigo_chain.run.entries import EntryProbe, verify_entries

        assert self.executor is not None
        started = time.perf_counter()
        notes = list(self.out.get("verify_notes", ()))
        if self.listener is not None:
            listener = self.listener

            def address(probe: EntryProbe) -> tuple[str, int]:
                ip, port, _name = listener.address_for(probe.entry)
                return ip, port
        elif self.endpoint is not None:
            host = self.endpoint[0]

            def address(probe: EntryProbe) -> tuple[str, int]:
                return host, probe.port
        else:
            notes.append("the HTTP.sys entries were not checked (no TLS endpoint)")
            self.out["verify_notes"] = tuple(notes)
            return False
        try:
            report = verify_entries(
                self.executor, self.host.site, address, profiles=self._profiles(),
                at=self.ctx.at, catalog=self.catalog, climb_ladder=climb,
                timeout=self.host.timeout, tls_timeout=self.ctx.tls_timeout,
                retry=self.ctx.retry,
            )  # fmt: skip
        finally:
            self.timed("entries", started)
        lines = tuple(
            EntryLine(
                entry=r.probe.entry, kind=r.probe.kind, handshake=r.probe.handshake,
                tls_version=r.tls_version, initial_verdict=r.initial_verdict,
                verdict=r.verdict, fixed_by=r.fixed_by, served=r.served, error=r.error,
            )
            for r in report.rows
        )  # fmt: skip
        self.out.update(entries=lines, entry_rungs=report.rungs)
        bad = sorted({f"{line.entry} ({line.handshake})" for line in lines if not line.ok})
        if bad:
            notes.append("HTTP.sys entries failing: " + ", ".join(bad))
        if report.reboot_required:
            notes.append("no rung fixed every HTTP.sys entry: a reboot may be required")
        self.out["verify_notes"] = tuple(notes)
        return report.verdict == "pass"


def _needs_executor(host: ResolvedHost) -> bool:
    """Check mode reads a simulated host's chain through its executor; others go over TLS."""
    return host.is_sim and host.check is None


def _error(exc: BaseException, secrets: HostSecrets) -> tuple[HostStatus, HostError]:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, PlanRefused) and exc.guidance:
        message += " (" + "; ".join(exc.guidance) + ")"
    from sectigo_chain.logs import bounded, mask_text

    message = bounded(mask_text(message, extra=(secrets.winrm_password, secrets.pfx_password)))
    unreachable = isinstance(exc, (ConnectionFailed, ScriptTimeout, TLSFetchError))
    status: HostStatus = "failed"
    if isinstance(exc, ApplyError) and exc.rollback_complete:
        status = "rolled_back"
    return status, HostError(type=type(exc).__name__, message=message, unreachable=unreachable)


def run_host(
    host: ResolvedHost,
    secrets: HostSecrets,
    ctx: FleetContext,
    *,
    canary: bool = False,
    batch: int | None = None,
) -> HostRow:
    """Run ``ctx.mode`` on one host and report it as a row (never raises for host problems)."""
    started_at = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    state = _Host(host, secrets, ctx)
    status: HostStatus
    try:
        status = state.run()
    except Exception as exc:  # isolation: any failure of this host becomes its row
        status, error = _error(exc, secrets)
        state.out["error"] = error
    finally:
        try:
            state.close()
        except Exception as exc:  # closing must not lose the row either
            state.out.setdefault("note", f"closing the connection failed: {type(exc).__name__}")
    state.timings["total"] = round(time.perf_counter() - started, 4)
    return HostRow(
        name=host.name, target=host.target, site=host.site, hostname=host.hostname,
        status=status, canary=canary, batch=batch, started_at=started_at,
        finished_at=dt.datetime.now(dt.timezone.utc), timings=state.timings,
        definition=host.definition(), **state.out,
    )  # fmt: skip
