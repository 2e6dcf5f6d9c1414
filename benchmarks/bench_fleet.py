"""Fleet rollout benchmark: N simulated hosts, 100 ms of latency per pipeline, concurrency C.

A ``fleet apply`` of ``sim://broken-r46`` hosts (observe, the three actions in one
``apply_plan`` with a journal, then verify = one ``verify_host``: 3 pipelines per host; 6
before issue 12 point 3) where every pipeline first sleeps
``--latency`` seconds, the way a WinRM round trip would. The served chain is read from the
model (``sim-model``, no TLS: 1,000 loopback listeners would measure TLS, not the fleet).
Two kinds of host (``--hosts``):

* ``replay``: a fake host replaying what one real ``SimulatedHost`` answered to the same
  rollout (checked script by script); it costs ~0.03 ms per host, so it measures the
  controller. The fair measure of the controller's goals.
* ``sim``: a real ``SimulatedHost`` per host; its model's CPU (which stands in for the remote
  Windows machine) is metered apart.

Printed per size (each in a fresh subprocess, so peak RSS is that size's own):

* wall time against the ideal ``hosts x pipelines x latency / concurrency`` (pipelines: the
  measured mean per host), and against the ideal plus the canary (which runs alone first);
* CPU (``os.times``: user + system, and the system part): the whole process, the simulated
  hosts' own share (thread CPU inside ``SimulatedHost.run``/``served_chain``/construction),
  and the rest = the controller's, per host;
* memory: RSS after setup and peak RSS (``ru_maxrss``), and the growth per host.

    PYTHONPATH=. python benchmarks/bench_fleet.py                  # 100, 500, 1000 hosts
    PYTHONPATH=. python benchmarks/bench_fleet.py --sizes 1000 --hosts replay --no-canary
    PYTHONPATH=. python benchmarks/bench_fleet.py --journal-dir /dev/shm   # journals on tmpfs
    PYTHONPATH=. python benchmarks/bench_fleet.py --breakdown 200   # where controller CPU goes
    PYTHONPATH=. python benchmarks/bench_fleet.py --breakdown 200 --cold

``--breakdown N`` runs N replayed hosts one at a time without latency and meters the thread CPU
of the controller's parts exclusively (a part's time excludes the metered parts it calls).
``--cold`` also clears the certificate and chain memos before every host, as if each host
served a certificate of its own (the replayed hosts all serve the same one).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sectigo_chain.fleet.inventory import HostSecrets, Inventory, ResolvedHost
from sectigo_chain.fleet.rollout import run_fleet
from sectigo_chain.hosts.base import ScriptResult
from sectigo_chain.hosts.sim.host import SimulatedHost


class _Meter:
    """Thread CPU spent inside the simulated hosts, summed over every worker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sim_cpu = 0.0
        self.pipelines = 0

    def add(self, seconds: float, pipelines: int = 0) -> None:
        with self.lock:
            self.sim_cpu += seconds
            self.pipelines += pipelines


METER = _Meter()


class LatencyHost(SimulatedHost):
    """A SimulatedHost whose every pipeline first waits ``latency`` seconds (a WAN/WinRM
    round trip); the model's own CPU is metered apart from the controller's."""

    latency = 0.1

    def run(self, script: Any, *, timeout: float = 60.0) -> ScriptResult:
        time.sleep(self.latency)
        start = time.thread_time()
        try:
            return super().run(script, timeout=timeout)
        finally:
            METER.add(time.thread_time() - start, 1)

    def served_chain(self, site_or_endpoint: str) -> Any:
        start = time.thread_time()
        try:
            return super().served_chain(site_or_endpoint)
        finally:
            METER.add(time.thread_time() - start)


def _sim_factory(host: ResolvedHost, secrets: HostSecrets) -> LatencyHost:
    start = time.thread_time()
    sim = LatencyHost("broken-r46")
    METER.add(time.thread_time() - start)
    return sim


class _Recorder(SimulatedHost):
    """Records what one real simulated host answers, in order."""

    def __init__(self) -> None:
        super().__init__("broken-r46")
        self.results: list[tuple[str, ScriptResult]] = []
        self.chains: list[Any] = []

    def run(self, script: Any, *, timeout: float = 60.0) -> ScriptResult:
        result = super().run(script, timeout=timeout)
        self.results.append((script.name, result))
        return result

    def served_chain(self, site_or_endpoint: str) -> Any:
        chain = super().served_chain(site_or_endpoint)
        self.chains.append(chain)
        return chain


class ReplayHost:
    """A lightweight fake host: replays what one real ``SimulatedHost`` answered to the same
    rollout (same scripts in the same order, checked by name), after ``latency`` seconds.
    It costs the benchmark almost no CPU, so what remains is the controller's."""

    latency = 0.1

    def __init__(self, recorded: _Recorder) -> None:
        self._results = recorded.results
        self._chains = recorded.chains
        self.catalog = recorded.catalog
        self._next = 0
        self._next_chain = 0

    @property
    def target(self) -> str:
        return "sim://broken-r46"

    def run(self, script: Any, *, timeout: float = 60.0) -> ScriptResult:
        time.sleep(self.latency)
        start = time.thread_time()
        name, result = self._results[self._next]
        if name != script.name:
            raise AssertionError(f"replay diverged: expected {name}, got {script.name}")
        self._next += 1
        METER.add(time.thread_time() - start, 1)
        return result

    def served_chain(self, site_or_endpoint: str) -> Any:
        chain = self._chains[min(self._next_chain, len(self._chains) - 1)]
        self._next_chain += 1
        return chain

    def close(self) -> None:
        pass

    def __enter__(self) -> ReplayHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _replay_factory() -> Any:
    recorder = _Recorder()
    one = Inventory.model_validate({"hosts": [{"name": "rec", "target": "sim://broken-r46"}]})
    with tempfile.TemporaryDirectory() as tmp:
        report = run_fleet(one, "apply", executor_factory=lambda h, s: recorder,
                           journal_dir=tmp, sim_tls=False)  # fmt: skip
    assert report.counts == {"applied": 1}, report

    def factory(host: ResolvedHost, secrets: HostSecrets) -> ReplayHost:
        return ReplayHost(recorder)

    return factory


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(
    hosts: int, concurrency: int, latency: float, canary: bool, kind: str, journal_dir: str | None
) -> dict[str, Any]:
    LatencyHost.latency = ReplayHost.latency = latency
    factory = _replay_factory() if kind == "replay" else _sim_factory
    inv = Inventory.model_validate(
        {"hosts": [{"name": f"h{i:05d}", "target": "sim://broken-r46"} for i in range(hosts)]}
    )
    with tempfile.TemporaryDirectory(dir=journal_dir) as tmp:
        # warm up: the lab hierarchy, the scenario and the imports (not measured)
        run_fleet(inv.model_copy(update={"hosts": inv.hosts[:1]}), "apply",
                  executor_factory=factory, journal_dir=tmp, sim_tls=False)  # fmt: skip
        METER.sim_cpu, METER.pipelines = 0.0, 0
        rss_setup = _rss_now_mb()
        t0, wall0 = os.times(), time.perf_counter()
        report = run_fleet(
            inv, "apply", concurrency=concurrency, canary=canary, executor_factory=factory,
            journal_dir=Path(tmp) / "journals", report_path=Path(tmp) / "report.json",
            sim_tls=False,
        )  # fmt: skip
        wall = time.perf_counter() - wall0
        t1 = os.times()
        user, system = t1.user - t0.user, t1.system - t0.system
        cpu = user + system
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pipelines = METER.pipelines / hosts
    ideal = hosts * pipelines * latency / concurrency
    canary_extra = pipelines * latency if canary else 0.0
    return {
        "hosts": hosts,
        "concurrency": concurrency,
        "latency": latency,
        "canary": canary,
        "statuses": report.counts,
        "pipelines_per_host": round(pipelines, 2),
        "wall": round(wall, 3),
        "ideal": round(ideal, 3),
        "ratio": round(wall / ideal, 3),
        "ratio_with_canary": round(wall / (ideal + canary_extra), 3),
        "host": kind,
        "cpu_total_ms_per_host": round(cpu / hosts * 1000, 2),
        "cpu_system_ms_per_host": round(system / hosts * 1000, 2),
        "cpu_sim_ms_per_host": round(METER.sim_cpu / hosts * 1000, 2),
        "cpu_controller_ms_per_host": round((cpu - METER.sim_cpu) / hosts * 1000, 2),
        "rss_setup_mb": round(rss_setup, 1),
        "rss_peak_mb": round(peak_mb, 1),
        "rss_growth_kb_per_host": round((peak_mb - rss_setup) * 1024 / hosts, 1),
    }


class _Parts:
    """Exclusive thread-CPU meters around named functions (single-threaded use)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.stack: list[list[float]] = []

    def wrap(self, name: str, fn: Any) -> Any:
        def metered(*args: Any, **kwargs: Any) -> Any:
            frame = [time.thread_time(), 0.0]  # start, time spent in metered children
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                spent = time.thread_time() - frame[0]
                self.totals[name] = self.totals.get(name, 0.0) + spent - frame[1]
                if self.stack:
                    self.stack[-1][1] += spent

        return metered


# Memos of facts about certificates and chains (module, name); ``--cold`` clears them before
# every host, as if each host served a certificate of its own (an upper bound: the
# intermediates' facts would stay warm in a real fleet).
_MEMOS = (
    ("sectigo_chain.state.models", "parse_der_b64"),
    ("sectigo_chain.x509.certs", "thumbprint"),
    ("sectigo_chain.x509.certs", "sha256_hex"),
    ("sectigo_chain.x509.findings", "issued_by"),
    ("sectigo_chain.x509.findings", "fingerprint"),
    ("sectigo_chain.x509.findings", "spki"),
    ("sectigo_chain.tls.judge", "summary"),
    ("sectigo_chain.state.rules", "_identify"),
    ("sectigo_chain.state.planner", "_cross_sign"),
    ("sectigo_chain.run.verifier", "_describe"),
    ("sectigo_chain.run.verifier", "_expected_served"),
    ("sectigo_chain.run.verifier", "_report"),
)


def _clear_memos(ctx: Any) -> None:
    import importlib

    for module, name in _MEMOS:
        memo = getattr(importlib.import_module(module), name, None)
        if callable(getattr(memo, "cache_clear", None)):
            memo.cache_clear()  # type: ignore[union-attr]
    for attr in ("_memo", "_labelled"):
        getattr(ctx, attr, {}).clear()


def breakdown(hosts: int, journal_dir: str | None, cold: bool = False) -> None:
    """Where the controller's CPU goes per host (replayed hosts, no latency, one at a time)."""
    import sectigo_chain.fleet.host as fleet_host
    import sectigo_chain.fleet.rollout as fleet_mod
    import sectigo_chain.run.applier as apply_mod
    import sectigo_chain.run.journal as journal_mod
    import sectigo_chain.run.verifier as verify_mod
    import sectigo_chain.state.planner as plan_mod
    import sectigo_chain.templates.render as templates_mod

    ReplayHost.latency = 0.0
    factory = _replay_factory()
    parts = _Parts()
    patches = [
        (journal_mod.Journal, "write", "apply: journal writes (json + fsync)"),
        (verify_mod, "report_for_chain", "judge chains (report_for_chain, on memo misses)"),
        (apply_mod, "observe", "observe: parse the document (x2)"),
        (plan_mod, "plan", "plan (x2: fleet + verify)"),
        (apply_mod, "make_plan", "plan (x2: fleet + verify)"),
        (templates_mod, "render", "render templates (x6)"),
        (fleet_host.FleetContext, "judge", "fleet: served chain before/after (the rest)"),
        (apply_mod, "apply", "apply: the rest (plan dump, step records, results)"),
        (verify_mod, "verify", "verify: the rest (verify_chain parsing, report)"),
        (fleet_mod, "run_host", "fleet: the rest (worker, row, timings)"),
    ]
    for owner, attr, name in patches:
        setattr(owner, attr, parts.wrap(name, getattr(owner, attr)))
    if cold:
        metered_host = getattr(fleet_mod, "run_host")  # noqa: B009 - not exported

        def cold_host(host: Any, secrets: Any, ctx: Any, **kwargs: Any) -> Any:
            _clear_memos(ctx)
            return metered_host(host, secrets, ctx, **kwargs)

        setattr(fleet_mod, "run_host", cold_host)  # noqa: B010
    inv = Inventory.model_validate(
        {"hosts": [{"name": f"h{i:05d}", "target": "sim://broken-r46"} for i in range(hosts)]}
    )
    with tempfile.TemporaryDirectory(dir=journal_dir) as tmp:
        run_fleet(inv.model_copy(update={"hosts": inv.hosts[:1]}), "apply",
                  executor_factory=factory, journal_dir=tmp, sim_tls=False)  # fmt: skip
        parts.totals.clear()
        start = time.process_time()  # the pool's one worker does the work; main only waits
        run_fleet(inv, "apply", concurrency=1, canary=False, executor_factory=factory,
                  journal_dir=Path(tmp) / "j", sim_tls=False)  # fmt: skip
        total = time.process_time() - start
    where = journal_dir or tempfile.gettempdir()
    memos = "every memo cleared before each host" if cold else "memos warm"
    print(f"controller CPU per host, {hosts} replayed hosts one at a time, journals in {where}, "
          f"{memos}")  # fmt: skip
    print("| part | ms/host |\n|---|---|")
    for name, spent in sorted(parts.totals.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {spent / hosts * 1000:.2f} |")
    print(f"| outside these (the rollout loop, retries, executor calls) | "
          f"{(total - sum(parts.totals.values())) / hosts * 1000:.2f} |")  # fmt: skip
    print(f"| **total (this thread)** | {total / hosts * 1000:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,500,1000", help="host counts (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per pipeline")
    parser.add_argument("--no-canary", action="store_true")
    parser.add_argument("--hosts", default="replay,sim",
                        help="replay (fake hosts: controller only) and/or sim (a SimulatedHost "
                        "per host)")  # fmt: skip
    parser.add_argument("--breakdown", type=int, metavar="N", help="see the module docstring")
    parser.add_argument("--cold", action="store_true",
                        help="with --breakdown: clear the certificate/chain memos before each "
                        "host (as if every host had its own certificate)")  # fmt: skip
    parser.add_argument("--journal-dir", help="where journals go (default: the temp folder)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="replay", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.breakdown, args.journal_dir, cold=args.cold)
        return
    if args.child:
        canary = not args.no_canary
        result = child(
            args.child, args.concurrency, args.latency, canary, args.kind, args.journal_dir
        )
        sys.stdout.write(json.dumps(result) + "\n")
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}"
          f"; journals in {args.journal_dir or tempfile.gettempdir()}"
          f"; concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms/pipeline, "
          f"canary {'off' if args.no_canary else 'on'}")  # fmt: skip
    head = ("host", "hosts", "pipes", "wall s", "ideal s", "x ideal", "x(+canary)", "CPU ms/h",
            "sys ms/h", "sim ms/h", "ctrl ms/h", "RSS0 MB", "peak MB", "KB/host")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for kind in args.hosts.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            cmd = [sys.executable, __file__, "--child", str(size), "--kind", kind]
            cmd += ["--concurrency", str(args.concurrency), "--latency", str(args.latency)]
            if args.journal_dir:
                cmd += ["--journal-dir", args.journal_dir]
            if args.no_canary:
                cmd.append("--no-canary")
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            values = (
                kind, r["hosts"], r["pipelines_per_host"], r["wall"], r["ideal"], r["ratio"],
                r["ratio_with_canary"], r["cpu_total_ms_per_host"], r["cpu_system_ms_per_host"],
                r["cpu_sim_ms_per_host"], r["cpu_controller_ms_per_host"], r["rss_setup_mb"],
                r["rss_peak_mb"], r["rss_growth_kb_per_host"],
            )  # fmt: skip
            print("| " + " | ".join(str(v) for v in values) + " |")
            if r["statuses"] != {"applied": size}:
                print(f"  unexpected statuses: {r['statuses']}")


if __name__ == "__main__":
    main()
