"""Benchmark: the fix of N hosts over WinRM (loopback endpoint), with added network latency.

Run from the repository root (needs the ``testing`` extra: psrpcore)::

    PYTHONPATH=. python benchmarks/bench_winrm.py                 # N = 1, 10; 0/20/100 ms
    PYTHONPATH=. python benchmarks/bench_winrm.py --hosts 1 --latency 0 20

Each host is a :class:`~sectigo_chain.testing.winrm.WinRMTestServer` with a ``broken-r46``
simulated host behind it, all served from a CHILD process, so the controller's CPU time
(``time.process_time`` of this process) is the controller's alone. The controller does what
``sectigo-chain apply`` does per host (observe, plan, apply every action, observe again to
confirm the plan is empty) through :class:`~sectigo_chain.hosts.winrm.WinRMExecutor` and real
pypsrp, one thread per host. The servers add the given latency before every answer (one
network round trip per WS-Management request).

Printed per (N, latency): WS-Management requests per host (and by action), pipelines per host,
runspace pools per host, wall time per run, controller CPU per host; the baseline is the
0 ms run of the same N in the same process, and each row gives its ratio to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def _serve(conn: Connection, count: int, latency: float) -> None:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.testing.winrm import TransportFaults, WinRMTestServer

    servers = [
        WinRMTestServer(SimulatedHost("broken-r46"), faults=TransportFaults(latency=latency))
        for _ in range(count)
    ]
    for s in servers:
        s.start()
    conn.send(
        [
            {"port": s.port, "ca": s.ca_file, "user": s.username, "password": s.password}
            for s in servers
        ]
    )
    conn.recv()  # "stats"
    conn.send(
        [
            {
                "requests": dict(s.stats.requests),
                "pipelines": s.stats.pipelines,
                "pools": s.stats.pools_opened,
            }
            for s in servers
        ]
    )
    conn.recv()  # "stop"
    for s in servers:
        s.stop()


def _fix_one(endpoint: dict[str, Any], journal_dir: Path) -> bool:
    from pydantic import SecretStr

    from sectigo_chain.hosts.winrm import WinRMExecutor, WinRMSettings
    from sectigo_chain.run.applier import apply, observe
    from sectigo_chain.state.planner import plan
    from sectigo_chain.state.recipe import sectigo_fix
    from sectigo_chain.testing import default_lab

    catalog = default_lab().catalog
    settings = WinRMSettings(
        host="127.0.0.1",
        port=endpoint["port"],
        username=endpoint["user"],
        password=SecretStr(endpoint["password"]),
        auth="basic",
        cert_validation=endpoint["ca"],
    )
    now = dt.datetime.now(dt.timezone.utc)
    with WinRMExecutor(settings) as ex:
        desired = sectigo_fix(site="Default Web Site", catalog=catalog, root_strategy="remove")
        the_plan = plan(desired, observe(ex), at=now, catalog=catalog, target=ex.target)
        result = apply(
            the_plan, ex, desired=desired, catalog=catalog, journal_dir=journal_dir, at=now
        )
        return bool(result.after_plan_empty)


def run(count: int, latency: float) -> dict[str, Any]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_serve, args=(child, count, latency))
    proc.start()
    try:
        endpoints = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            with ThreadPoolExecutor(max_workers=count) as pool:
                ok = list(pool.map(lambda e: _fix_one(e, Path(tmp)), endpoints))
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        parent.send("stats")
        stats = parent.recv()
        parent.send("stop")
    finally:
        proc.join(timeout=30)
    requests: Counter[str] = Counter()
    for s in stats:
        requests.update(s["requests"])
    return {
        "hosts": count,
        "latency_ms": latency * 1000,
        "ok": all(ok),
        "wall": wall,
        "cpu_per_host": cpu / count,
        "requests_per_host": sum(requests.values()) / count,
        "by_action": {k: v / count for k, v in sorted(requests.items())},
        "pipelines_per_host": sum(s["pipelines"] for s in stats) / count,
        "pools_per_host": sum(s["pools"] for s in stats) / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 20, 100], help="ms")
    args = parser.parse_args()
    # warm-up: imports, the lab, pypsrp (not timed)
    run(1, 0)
    print(
        f"{'hosts':>5} {'lat ms':>6} {'req/host':>8} {'pipes/host':>10} {'pools':>5} "
        f"{'wall s':>7} {'x base':>6} {'CPU ms/host':>11} {'x base':>6}  requests by action"
    )
    for count in args.hosts:
        base: dict[str, Any] | None = None
        for latency in args.latency:
            r = run(count, latency / 1000)
            base = base or r
            actions = ", ".join(f"{k} {v:g}" for k, v in r["by_action"].items())
            print(
                f"{r['hosts']:>5} {r['latency_ms']:>6.0f} {r['requests_per_host']:>8.1f} "
                f"{r['pipelines_per_host']:>10.1f} {r['pools_per_host']:>5.1f} "
                f"{r['wall']:>7.2f} {r['wall'] / base['wall']:>6.2f} "
                f"{r['cpu_per_host'] * 1000:>11.1f} "
                f"{r['cpu_per_host'] / base['cpu_per_host']:>6.2f}  {actions}"
                + ("" if r["ok"] else "  (NOT converged)")
            )


if __name__ == "__main__":
    main()
