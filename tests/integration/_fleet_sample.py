"""A fleet report with every kind of outcome, as large as asked: a real rollout of a few
simulated hosts (one per outcome), whose rows are then repeated under new names. Used by the
browser test and by benchmarks/bench_report_html.py (the rows are real; only their number is
multiplied, because 1,000 real rollouts would measure the fleet, not the report)."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from sectigo_chain.fleet.report import FleetReport
from sectigo_chain.fleet.rollout import run_fleet
from sectigo_chain.hosts.retry import RetryPolicy


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def _inventory(folder: Path) -> Path:
    port = _closed_port()
    hosts = [
        ("web-applied", "sim://broken-r46", ""),
        ("web-fixed", "sim://fixed", ""),
        ("web-drift", "sim://drift", ""),
        ("web-stale", "sim://stale-cache", ""),
        ("web-gpo", "sim://gpo-root", ""),
        ("web-rolled-back", "sim://broken-r46", "sim_faults = { fail_action = 1 }"),
        ("web-unreachable", "winrm://127.0.0.1",
         f'check = {{ host = "127.0.0.1", port = {port} }}'),
    ]  # fmt: skip
    lines = ["version = 1", ""]
    for name, target, extra in hosts:
        lines += ["[[hosts]]", f'name = "{name}"', f'target = "{target}"', extra, ""]
    path = folder / "fleet.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def sample_report(hosts: int, folder: Path, *, at: dt.datetime | None = None) -> FleetReport:
    """An apply report of ``hosts`` rows covering every outcome (needs a writable ``folder``)."""
    real = run_fleet(
        _inventory(folder), "apply", canary=False, stop_on_failure=False, concurrency=4,
        journal_dir=folder / "journals", retry=RetryPolicy(attempts=1, wait_initial=0),
        tls_timeout=2.0, at=at,
    )  # fmt: skip
    rows = [
        real.hosts[i % len(real.hosts)].model_copy(
            update={"name": f"{real.hosts[i % len(real.hosts)].name}-{i:04d}"}
        )
        for i in range(hosts)
    ]
    return real.model_copy(update={"hosts": tuple(rows)})
