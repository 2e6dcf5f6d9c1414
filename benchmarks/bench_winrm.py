"""Benchmark: the fix of N hosts over WinRM (loopback endpoint), with added network latency.

Run from the repository root (needs the ``testing`` extra: psrpcore)::

    PYTHONPATH=. python benchmarks/bench_winrm.py                 # N = 1, 10; 0/20/100 ms
    PYTHONPATH=. python benchmarks/bench_winrm.py --hosts 1 --latency 0 20

Each host is a :class:`~sectigo_chain.testing.winrm.WinRMTestServer` with a ``broken-r46``
simulated host behind it (the lab catalog: the plan is import cross-sign, remove the
self-signed root, iisreset). The controller does a full fix per host, as ``sectigo-chain
apply`` then ``verify`` (without the TLS check) do: observe, plan, apply every action (one
``apply_plan`` pipeline, which also observes again to confirm the plan is empty), verify on
the host (one ``verify_host`` pipeline), through
:class:`~sectigo_chain.hosts.winrm.WinRMExecutor` and real pypsrp, one thread per host. The
baseline, run the same way in the same process, is the same fix with one pipeline per
template, as before issue 12 point 3 (observe; each action; observe again; verify's observe
and ``verify_chain``): each row gives the ratio of its requests and wall time to that.

The servers run in this process on their own threads; the controller's CPU per host is the
``time.thread_time()`` of the worker thread that fixed that host (pypsrp, requests and TLS
run in that thread; the endpoint's work does not). The servers add the given latency before
every answer (one network round trip per WS-Management request).

Printed per (N, latency): WS-Management requests per host (and by action), pipelines per host,
runspace pools per host, wall time per run, controller CPU per host, and the ratios to the
one-pipeline-per-template baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def _fix_one(server: Any, journal_dir: Path, per_template: bool) -> tuple[bool, float]:
    """One host's fix; returns (converged, CPU seconds of THIS thread: the controller's)."""
    from sectigo_chain.hosts.winrm import WinRMExecutor
    from sectigo_chain.run.applier import apply, observe
    from sectigo_chain.run.verifier import verify
    from sectigo_chain.state.planner import plan
    from sectigo_chain.state.recipe import sectigo_fix

    cpu0 = time.thread_time()
    catalog = server.host.catalog
    now = dt.datetime.now(dt.timezone.utc)
    with WinRMExecutor(server.settings()) as ex:
        desired = sectigo_fix(site="Default Web Site", catalog=catalog, root_strategy="remove")
        before = observe(ex)
        the_plan = plan(desired, before, at=now, catalog=catalog, target=ex.target)
        if per_template:
            ok = _one_pipeline_per_template(ex, the_plan, desired, catalog, now)
        else:
            result = apply(
                the_plan, ex, desired=desired, catalog=catalog, journal_dir=journal_dir, at=now,
                before=before,
            )  # fmt: skip
            report = verify(ex, desired, catalog=catalog, at=now)
            ok = (
                bool(result.after_plan_empty)
                and report.plan_empty
                and report.host_chain is not None
            )
    return ok, time.thread_time() - cpu0


def _one_pipeline_per_template(
    ex: Any, the_plan: Any, desired: Any, catalog: Any, now: Any
) -> bool:
    """The baseline: the same fix with one pipeline per template (no journal, no rollback)."""
    from sectigo_chain.hosts.retry import run_script
    from sectigo_chain.run.applier import observe
    from sectigo_chain.state.planner import plan
    from sectigo_chain.templates.render import render

    for action in the_plan.actions:
        if not run_script(ex, render(action.template, action.render_params()), timeout=120).ok:
            return False
    after = plan(desired, observe(ex), at=now, catalog=catalog, target=ex.target)
    observed = observe(ex)  # verify's own observe
    (site,) = [s for s in observed.sites if s.name == "Default Web Site"]
    tp = next(b.certificate_hash for b in site.bindings if b.protocol == "https")
    chain = run_script(ex, render("verify_chain", {"thumbprint": tp}), timeout=120)
    return after.empty and chain.ok


def run(count: int, latency: float, per_template: bool = False) -> dict[str, Any]:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.testing.winrm import TransportFaults, WinRMTestServer

    servers = [
        WinRMTestServer(SimulatedHost("broken-r46"), faults=TransportFaults(latency=latency))
        for _ in range(count)
    ]
    for srv in servers:
        srv.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wall0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=count) as pool:
                done = list(pool.map(lambda srv: _fix_one(srv, Path(tmp), per_template), servers))
            wall = time.perf_counter() - wall0
    finally:
        for srv in servers:
            srv.stop()
    requests: Counter[str] = Counter()
    for srv in servers:
        requests.update(srv.stats.requests)
    return {
        "hosts": count,
        "latency_ms": latency * 1000,
        "ok": all(ok for ok, _ in done),
        "wall": wall,
        "cpu_per_host": sum(cpu for _, cpu in done) / count,
        "requests_per_host": sum(requests.values()) / count,
        "by_action": {k: v / count for k, v in sorted(requests.items())},
        "pipelines_per_host": sum(s.stats.pipelines for s in servers) / count,
        "pools_per_host": sum(s.stats.pools_opened for s in servers) / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 20, 100], help="ms")
    args = parser.parse_args()
    # warm-up: imports, the lab, pypsrp (not timed)
    run(1, 0)
    run(1, 0, per_template=True)
    print(
        f"{'hosts':>5} {'lat ms':>6} {'req/host':>8} {'pipes/host':>10} {'pools':>5} "
        f"{'wall s':>7} {'CPU ms/host':>11} | {'x req':>5} {'x wall':>6} {'x CPU':>5}"
        "  (x: ratio to one pipeline per template)  requests by action"
    )
    for count in args.hosts:
        for latency in args.latency:
            base = run(count, latency / 1000, per_template=True)
            r = run(count, latency / 1000)
            for label, row in (("per template", base), ("apply_plan", r)):
                actions = ", ".join(f"{k} {v:g}" for k, v in row["by_action"].items())
                print(
                    f"{row['hosts']:>5} {row['latency_ms']:>6.0f} "
                    f"{row['requests_per_host']:>8.1f} {row['pipelines_per_host']:>10.1f} "
                    f"{row['pools_per_host']:>5.1f} {row['wall']:>7.2f} "
                    f"{row['cpu_per_host'] * 1000:>11.1f} | "
                    f"{row['requests_per_host'] / base['requests_per_host']:>5.2f} "
                    f"{row['wall'] / base['wall']:>6.2f} "
                    f"{row['cpu_per_host'] / base['cpu_per_host']:>5.2f}  {label}: {actions}"
                    + ("" if row["ok"] else "  (NOT converged)")
                )


if __name__ == "__main__":
    main()
