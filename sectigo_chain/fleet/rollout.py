"""Many hosts: ``run_fleet(inventory, mode)`` with bounded concurrency, a canary, batches,
stop-on-failure, isolation, progress, JSON/HTML reports and resume.

The rollout (``mode="apply"``):

1. **Canary**: the first host to run goes alone. If it does not end ``applied`` or
   ``unchanged`` (for any reason, unreachable included), the rollout stops there.
2. **Then the rest**, at most ``concurrency`` hosts at a time (threads; each worker opens its
   own executor for its host, so one WinRM runspace pool per host, and closes it when done).
   With ``batch_size=N`` hosts go in groups of N: a group always runs to its end, and the
   rollout stops after a group in which a host's change went wrong. Without it (the default)
   hosts start as slots free up and the first such failure stops new starts at once; hosts
   already running finish.
3. **What stops it** (``stop_on_failure``): a host whose apply failed (rolled back or not), or
   whose served chain or desired state does not verify afterwards. A host that was unreachable,
   whose plan was refused or whose input was bad changed nothing: it is reported ``failed`` and
   the rollout goes on. Hosts never started are reported ``skipped`` with the reason.

``plan`` and ``check`` change nothing, so they have no canary and never stop: every host is
planned/checked. Every host is isolated: its failure is its row (see
:mod:`sectigo_chain.fleet.host`). ``resume_from`` takes the report of an earlier run of the same
mode and skips the hosts it reports ``applied``/``unchanged``; the rest run again (apply is
idempotent: a host that was done after the last save re-plans to nothing).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import SimpleQueue
from typing import TYPE_CHECKING

from sectigo_chain.errors import InputError
from sectigo_chain.fleet.host import ExecutorFactory, FleetContext, run_host
from sectigo_chain.fleet.inventory import (
    HostSecrets,
    Inventory,
    ResolvedHost,
    host_secrets,
    load_inventory,
)
from sectigo_chain.fleet.report import (
    DONE_STATUSES,
    FleetReport,
    HostRow,
    Mode,
    ProgressLog,
    progress_log_path,
)
from sectigo_chain.fleet.shard import Shard

if TYPE_CHECKING:
    from sectigo_chain.hosts.retry import RetryPolicy

__all__ = ["FleetReport", "Inventory", "ProgressCallback", "load_inventory", "run_fleet"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str, str], None]
"""``progress(done, total, host, status)``, called from the controlling thread."""

_MODES = ("plan", "apply", "check")


def _preflight(
    hosts: Sequence[ResolvedHost], mode: Mode, environ: Mapping[str, str] | None
) -> dict[str, HostSecrets]:
    """Secrets, PFX files and simulated scenarios, checked before any host is touched."""
    problems: list[str] = []
    secrets: dict[str, HostSecrets] = {}
    scenarios: set[str] = set()
    for host in hosts:
        if host.is_sim:
            from sectigo_chain.hosts.sim.state import parse_sim_target

            try:
                scenarios.add(parse_sim_target(host.target.split("://", 1)[1])[0])
            except InputError as exc:
                problems.append(f"host {host.name}: {exc}")
        if mode == "check":
            secrets[host.name] = HostSecrets(None, None)
            continue
        try:
            secrets[host.name] = host_secrets(host, environ)
        except InputError as exc:
            problems.append(str(exc))
        if host.pfx and not os.path.isfile(host.pfx):
            problems.append(f"host {host.name}: PFX file {host.pfx} not found; check the path")
    if scenarios:
        from sectigo_chain.hosts.sim.scenarios import build_scenario
        from sectigo_chain.testing.lab import default_lab

        lab = default_lab()  # built once here: the workers share it
        for name in sorted(scenarios):
            try:
                build_scenario(name, lab)  # also caches the scenario's leaf before threads start
            except InputError as exc:
                problems.append(str(exc))
    if problems:
        raise InputError("the rollout cannot start:\n  " + "\n  ".join(problems))
    return secrets


def _resume(
    source: str | os.PathLike[str] | FleetReport, mode: Mode
) -> tuple[dict[str, HostRow], str]:
    """The rows of an earlier run, newest per host: the report, updated by the progress log
    beside it (which has every host that finished, even when the run was killed before the
    report was saved)."""
    if isinstance(source, FleetReport):
        previous_mode, rows, label = source.mode, {r.name: r for r in source.hosts}, "(report)"
    else:
        label = str(source)
        log_mode, logged = ProgressLog.read(progress_log_path(source))
        if Path(source).exists() or not logged:
            report = FleetReport.load(source)
            previous_mode, rows = report.mode, {r.name: r for r in report.hosts}
        else:  # killed before the first save: the log alone
            previous_mode, rows = log_mode or mode, {}
        if log_mode is not None and log_mode != previous_mode:
            raise InputError(f"{label} and its progress log are of different fleet modes")
        rows.update(logged)
    if previous_mode != mode:
        raise InputError(
            f"{label} is a fleet {previous_mode} report; resume it with 'fleet {previous_mode}'"
        )
    return rows, label


def _sim_tls_available() -> bool:
    try:
        import sectigo_chain.hosts.sim.listener  # noqa: F401
    except ImportError:
        return False
    return True


def run_fleet(
    inventory: Inventory | str | os.PathLike[str],
    mode: Mode = "plan",
    *,
    concurrency: int = 8,
    canary: bool = True,
    batch_size: int | None = None,
    stop_on_failure: bool = True,
    progress: ProgressCallback | None = None,
    report_path: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | FleetReport | None = None,
    executor_factory: ExecutorFactory | None = None,
    journal_dir: str | os.PathLike[str] | None = None,
    sim_tls: bool | None = None,
    climb_ladder: bool = False,
    entries: bool = False,
    retry: RetryPolicy | None = None,
    tls_timeout: float = 5.0,
    base_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    at: dt.datetime | None = None,
    save_every: float = 2.0,
    shard: Shard | str | None = None,
) -> FleetReport:
    """Plan, apply or check every host of ``inventory`` (see the module docstring).

    ``inventory`` is an :class:`Inventory` or a path to one (relative PFX paths then resolve
    against its folder; else against ``base_dir``). ``report_path``: the JSON report, written
    atomically at most every ``save_every`` seconds while running and at the end.
    ``journal_dir``: apply journals (default ``sectigo-chain-journals/`` beside the report, or
    in the current folder). ``sim_tls``: check ``sim://`` hosts over a real loopback TLS
    listener (default: when :mod:`sectigo_chain.hosts.sim.listener` is available).
    ``entries``: also check every HTTP.sys entry of each host's site, with and without SNI, per
    TLS version (:mod:`sectigo_chain.run.entries`; a ``sim://`` host then always gets a
    loopback listener); with ``climb_ladder``, a stale entry is refreshed on its own before
    ``iisreset``. A failing entry fails the host.
    ``executor_factory(host, secrets)`` replaces how executors are opened (tests, benchmarks;
    a wrapper around a ``SimulatedHost`` exposes it as ``.sim_host``). ``at`` is the
    validation time of every check (default: when the run starts). Input problems (bad
    inventory, missing environment variables, PFX files or scenarios) raise
    :class:`InputError` before any host is touched.
    """
    if mode not in _MODES:
        raise InputError(f"unknown fleet mode {mode!r}; use plan, apply or check")
    if concurrency < 1:
        raise InputError("concurrency must be at least 1")
    if batch_size is not None and batch_size < 1:
        raise InputError("batch size must be at least 1 (or None for a rolling rollout)")
    label: str | None = None
    if isinstance(inventory, Inventory):
        inv, folder = inventory, Path(base_dir) if base_dir is not None else None
    else:
        inv, folder = load_inventory(inventory)
        label = str(inventory)
    hosts = inv.resolved(folder)
    positions = {h.name: i for i, h in enumerate(hosts)}
    if shard is not None:
        shard = Shard.parse(shard) if isinstance(shard, str) else shard
        hosts = [h for h in hosts if shard.holds(h.name)]
    carried: dict[str, HostRow] = {}
    resumed: str | None = None
    if resume_from is not None:
        previous, resumed = _resume(resume_from, mode)
        # A host is carried over only when it is done AND defined exactly as it was run (a
        # changed target, site, PFX or any other setting runs it again).
        for h in hosts:
            row = previous.get(h.name)
            if row is None or row.status not in DONE_STATUSES:
                continue
            if row.definition == h.definition():
                carried[h.name] = row
            else:
                log.info("%s: defined differently than in %s: running it again", h.name, resumed)
    todo = [h for h in hosts if h.name not in carried]
    secrets = _preflight(todo, mode, environ)
    rollout = mode == "apply"
    started_at = at or dt.datetime.now(dt.timezone.utc)
    if rollout:
        jdir = Path(journal_dir) if journal_dir is not None else (
            (Path(report_path).parent if report_path is not None else Path.cwd())
            / "sectigo-chain-journals"
        )  # fmt: skip
        jdir = jdir.absolute()
        jdir.mkdir(parents=True, exist_ok=True)
    else:
        jdir = None
    ctx = FleetContext(
        mode=mode, at=started_at, retry=retry, journal_dir=jdir,
        sim_tls=_sim_tls_available() if sim_tls is None else sim_tls, climb_ladder=climb_ladder,
        entries=entries, tls_timeout=tls_timeout, executor_factory=executor_factory,
    )  # fmt: skip
    progress_log = ProgressLog(progress_log_path(report_path), mode) if report_path else None
    run = _Rollout(
        ctx, hosts, todo, secrets, carried,
        canary=canary and rollout, batch_size=batch_size, concurrency=concurrency,
        stop_on_failure=stop_on_failure and rollout, progress=progress, log=progress_log,
        positions=positions,
    )  # fmt: skip

    def report(*, complete: bool) -> FleetReport:
        return FleetReport(
            mode=mode, inventory=label, started_at=started_at,
            finished_at=dt.datetime.now(dt.timezone.utc) if complete else None,
            concurrency=concurrency, canary=run.canary, batch_size=batch_size,
            stop_on_failure=run.stop_on_failure, stopped=run.stop_reason is not None,
            stop_reason=run.stop_reason, resumed_from=resumed, complete=complete,
            shard=str(shard) if shard is not None else None, hosts=run.rows(complete=complete),
        )  # fmt: skip

    last_save, interval = time.monotonic(), save_every

    def saved() -> None:
        # at most every save_every seconds, and never more than ~5% of the controller's time
        nonlocal last_save, interval
        if report_path is not None and time.monotonic() - last_save >= interval:
            started = time.monotonic()
            report(complete=False).write(report_path)
            last_save = time.monotonic()
            interval = max(save_every, 20 * (last_save - started))

    try:
        run.execute(saved)
    finally:
        final = report(complete=True)
        if report_path is not None:
            final.write(report_path)
        if progress_log is not None:
            progress_log.close()
    return final


class _Rollout:
    """The controlling loop: canary, then batches or a rolling window; rows by host name."""

    def __init__(
        self,
        ctx: FleetContext,
        hosts: list[ResolvedHost],
        todo: list[ResolvedHost],
        secrets: dict[str, HostSecrets],
        carried: dict[str, HostRow],
        *,
        canary: bool,
        batch_size: int | None,
        concurrency: int,
        stop_on_failure: bool,
        progress: ProgressCallback | None,
        log: ProgressLog | None = None,
        positions: Mapping[str, int] | None = None,
    ) -> None:
        self.ctx = ctx
        self.log = log
        self.positions = dict(positions or {})
        self.hosts = hosts
        self.todo = todo
        self.secrets = secrets
        self.done: dict[str, HostRow] = {
            name: row.model_copy(
                update={
                    "note": row.note or "done in an earlier run",
                    "position": self.positions.get(name),
                }
            )
            for name, row in carried.items()
        }
        if log is not None:
            for row in self.done.values():  # the new log is complete on its own
                log.append(row)
        self.canary = canary and bool(todo)
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.stop_on_failure = stop_on_failure
        self.progress = progress
        self.stop_reason: str | None = None
        self.finished = 0
        self.running = 0
        self.finished_q: SimpleQueue[Future[HostRow]] = SimpleQueue()
        self._progress_broken = False

    def rows(self, *, complete: bool) -> tuple[HostRow, ...]:
        """Rows in inventory order; hosts not run are ``skipped`` in a complete report."""
        out = []
        why = f"rollout stopped: {self.stop_reason}" if self.stop_reason else "not run"
        for host in self.hosts:
            row = self.done.get(host.name)
            if row is None and complete:
                row = HostRow(name=host.name, target=host.target, site=host.site,
                              hostname=host.hostname, status="skipped", note=why,
                              definition=host.definition(),
                              position=self.positions.get(host.name))  # fmt: skip
            if row is not None:
                out.append(row)
        return tuple(out)

    def _record(self, row: HostRow) -> None:
        if row.name in self.positions:
            row = row.model_copy(update={"position": self.positions[row.name]})
        self.done[row.name] = row
        if self.log is not None:
            self.log.append(row)  # fsync'd before the next host is started or reported
        self.finished += 1
        if self.stop_reason is None and self.stop_on_failure:
            if row.canary and not row.ok:
                self.stop_reason = f"canary host {row.name} ended {row.status}"
            elif row.stops_rollout:
                self.stop_reason = f"host {row.name} ended {row.status}" + (
                    f" ({row.note})" if row.note else ""
                )
        self._tell(row.name, row.status)

    def _tell(self, host: str, status: str) -> None:
        if self.progress is None or self._progress_broken:
            return
        try:
            self.progress(self.finished, len(self.todo), host, status)
        except Exception:  # a broken progress display must not end the rollout
            self._progress_broken = True
            log.warning("the progress callback failed; continuing without it", exc_info=True)

    def execute(self, saved: Callable[[], None]) -> None:
        queue = list(self.todo)
        if not queue:
            return
        if self.canary:
            first = queue.pop(0)
            self._record(run_host(first, self.secrets[first.name], self.ctx, canary=True, batch=0))
            saved()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="fleet") as pool:
            try:
                if self.batch_size is None:
                    self._rolling(pool, iter(queue), saved)
                else:
                    self._batches(pool, queue, saved)
            except BaseException:
                self.stop_reason = self.stop_reason or "interrupted"
                pool.shutdown(wait=True, cancel_futures=True)  # running hosts finish
                while not self.finished_q.empty():
                    future = self.finished_q.get()
                    if not future.cancelled() and future.exception() is None:
                        self._record(future.result())
                raise
        if self.finished < len(self.todo):
            self._tell("", "stopped")

    def _submit(self, pool: ThreadPoolExecutor, host: ResolvedHost, batch: int | None) -> None:
        future = pool.submit(run_host, host, self.secrets[host.name], self.ctx, batch=batch)
        self.running += 1
        future.add_done_callback(self.finished_q.put)  # O(1) per host, unlike wait()

    def _collect(self, saved: Callable[[], None]) -> None:
        """Wait for one host to finish, then record every host that has finished."""
        future = self.finished_q.get()
        while True:
            self.running -= 1
            self._record(future.result())
            if self.finished_q.empty():
                break
            future = self.finished_q.get()
        saved()

    def _rolling(
        self, pool: ThreadPoolExecutor, queue: Iterator[ResolvedHost], saved: Callable[[], None]
    ) -> None:
        while True:
            while self.stop_reason is None and self.running < self.concurrency:
                host = next(queue, None)
                if host is None:
                    break
                self._submit(pool, host, None)
            if not self.running:
                return
            self._collect(saved)

    def _batches(
        self, pool: ThreadPoolExecutor, queue: list[ResolvedHost], saved: Callable[[], None]
    ) -> None:
        assert self.batch_size is not None
        for number, start in enumerate(range(0, len(queue), self.batch_size), 1):
            if self.stop_reason is not None:
                return
            for host in queue[start : start + self.batch_size]:
                self._submit(pool, host, number)
            while self.running:
                self._collect(saved)
