"""Benchmark: what an Ansible playbook's tasks cost over WinRM, next to this tool's full fix.

Run from the repository root (needs the ``testing`` extra and ansible-core)::

    PYTHONPATH=. python benchmarks/bench_ansible_winrm.py                  # 5 tasks; 0/20/100 ms
    PYTHONPATH=. python benchmarks/bench_ansible_winrm.py --tasks 5 --latency 0 20

Both sides talk to the same loopback endpoint (:mod:`sectigo_chain.testing.winrm`, Basic over
HTTPS, the given latency added before every answer), and the endpoint counts WS-Management
requests, runspace pools, pipelines and the bytes of every request body.

* **this tool** (the baseline): one host's full fix as ``sectigo-chain apply`` then ``verify``
  (without the TLS check) run it: observe, plan, every action and the observe after them (one
  ``apply_plan`` pipeline), verify on the host (one ``verify_host`` pipeline), through
  ``WinRMExecutor``; controller CPU is the worker thread's ``thread_time``.
* **Ansible**: ``ansible-playbook`` with ``ansible_connection=psrp`` running N tasks of a
  minimal PowerShell module that uses ``Ansible.Basic`` (the exec wrapper and C# module util
  every ``ansible.windows`` module uses; ``ansible.windows`` itself is not installed here). The
  endpoint cannot run Ansible's exec wrapper: it answers each task's pipeline with an error
  record at once, the task fails and the play goes on (``ignore_errors``). So the Ansible
  figures are a **lower bound**: the connection, the runspace pool and the module payload are
  all paid, but a real module would run longer (more ``Receive``) and an ``ansible.windows``
  module sends its own code on top. Costs per task are marginal: (run with N tasks - run with
  1 task) / (N - 1), which takes ansible-playbook's own start-up out; its CPU is the child
  process's user+system time. Wall and CPU are the best of ``--repeat`` runs (a shared
  machine's noise only ever adds).

The same steps as a playbook (``--steps``, default 6 tasks): read the certificate stores,
copy the cross-sign's file to the host (``win_copy``: counted as one task, a lower bound),
import it into ``Cert:\\LocalMachine\\CA`` and remove the self-signed root
(``win_certificate_store`` twice), ``iisreset`` (``win_command``), read the stores again.

Printed per latency: requests, runspace pools, pipelines, KiB sent, wall and controller CPU;
for this tool per full fix, for Ansible per task and for the playbook's steps, and the
playbook's ratios to this tool's full fix (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODULE = """#!powershell
#AnsibleRequires -CSharpUtil Ansible.Basic
$spec = @{ options = @{ store = @{ type = 'str' }; thumbprint = @{ type = 'str' } } }
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$module.ExitJson()
"""


def _server(latency: float) -> Any:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.testing.winrm import TransportFaults, WinRMTestServer

    return WinRMTestServer(
        SimulatedHost("broken-r46"), faults=TransportFaults(latency=latency), record_wire=True
    ).start()


def _sent(server: Any) -> int:
    return sum(len(m.body) for m in server.wire if m.direction == "request")


def ours(latency: float, journal_dir: Path) -> dict[str, Any]:
    """One full fix by this tool (the baseline)."""
    from sectigo_chain.hosts.winrm import WinRMExecutor
    from sectigo_chain.run.applier import apply, observe
    from sectigo_chain.run.verifier import verify
    from sectigo_chain.state.planner import plan
    from sectigo_chain.state.recipe import sectigo_fix

    server = _server(latency)
    try:
        catalog = server.host.catalog
        now = dt.datetime.now(dt.timezone.utc)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        with WinRMExecutor(server.settings()) as ex:
            desired = sectigo_fix(site="Default Web Site", catalog=catalog, root_strategy="remove")
            before = observe(ex)
            the_plan = plan(desired, before, at=now, catalog=catalog, target=ex.target)
            result = apply(
                the_plan, ex, desired=desired, catalog=catalog, journal_dir=journal_dir, at=now,
                before=before,
            )  # fmt: skip
            report = verify(ex, desired, catalog=catalog, at=now)
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    finally:
        server.stop()
    return {
        "ok": bool(result.after_plan_empty) and report.plan_empty,
        "requests": server.stats.total_requests,
        "pools": server.stats.pools_opened,
        "pipelines": server.stats.pipelines,
        "sent": _sent(server),
        "wall": wall,
        "cpu": cpu,
    }


def _playbook(folder: Path, tasks: int) -> Path:
    (folder / "library").mkdir(exist_ok=True)
    (folder / "library" / "sc_probe.ps1").write_text(MODULE, encoding="utf-8")
    lines = ["- hosts: win", "  gather_facts: false", "  tasks:"]
    for i in range(tasks):
        lines += [
            f"    - name: step {i + 1}",
            f"      sc_probe: {{store: CA, thumbprint: '{i:040d}'}}",
            "      ignore_errors: true",
        ]
    path = folder / f"play-{tasks}.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ansible(latency: float, tasks: int, folder: Path) -> dict[str, Any]:
    """``ansible-playbook`` with ``tasks`` module tasks against one loopback endpoint."""
    server = _server(latency)
    try:
        inventory = folder / f"inventory-{tasks}.ini"
        inventory.write_text(
            "[win]\nh1 ansible_host=127.0.0.1 "
            f"ansible_port={server.port} ansible_user={server.username} "
            f"ansible_password={server.password} ansible_connection=psrp "
            f"ansible_psrp_auth=basic ansible_psrp_protocol=https "
            f"ansible_psrp_ca_cert={server.ca_file}\n",
            encoding="utf-8",
        )
        play = _playbook(folder, tasks)
        command = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable))
        if command is None:
            raise SystemExit(
                "ansible-playbook not found next to this Python (pip install ansible-core)"
            )
        env = dict(
            os.environ,
            ANSIBLE_HOME=str(folder / "home"),
            ANSIBLE_LOCAL_TEMP=str(folder / "tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall0 = time.perf_counter()
        done = subprocess.run(
            [command, "-i", str(inventory), str(play)],
            capture_output=True, text=True, env=env, cwd=folder, timeout=600, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - wall0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        server.stop()
    if f"ignored={tasks}" not in done.stdout:
        raise SystemExit(f"the playbook did not run as expected:\n{done.stdout}\n{done.stderr}")
    return {
        "requests": server.stats.total_requests,
        "pools": server.stats.pools_opened,
        "pipelines": server.stats.pipelines,
        "sent": _sent(server),
        "wall": wall,
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "by_action": dict(server.stats.requests),
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts of the first run (they do not vary), the least wall and CPU of all."""
    best = dict(runs[0])
    best["wall"] = min(r["wall"] for r in runs)
    best["cpu"] = min(r["cpu"] for r in runs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5, help="tasks of the measured playbook")
    parser.add_argument("--steps", type=int, default=6, help="tasks the same fix needs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 20, 100], help="ms")
    args = parser.parse_args()
    tasks = max(2, args.tasks)
    with tempfile.TemporaryDirectory(prefix="bench-ansible-") as tmp:
        folder = Path(tmp)
        ours(0, folder)  # warm-up: imports, the lab, pypsrp (not timed)
        print(
            f"{'lat ms':>6} {'who':<30} {'requests':>8} {'pools':>5} {'pipes':>5} "
            f"{'KiB sent':>8} {'wall s':>7} {'CPU ms':>7}"
        )
        for latency_ms in args.latency:
            latency = latency_ms / 1000
            base = _best([ours(latency, folder) for _ in range(args.repeat)])
            one = _best([ansible(latency, 1, folder) for _ in range(args.repeat)])
            many = _best([ansible(latency, tasks, folder) for _ in range(args.repeat)])
            per = {k: (many[k] - one[k]) / (tasks - 1) for k in ("requests", "pools",
                   "pipelines", "sent", "wall", "cpu")}  # fmt: skip
            rows = [
                (f"this tool, full fix ({base['pipelines']} scripts)", base, ""),
                ("Ansible, per task", per, ""),
            ]
            play = {k: per[k] * args.steps for k in per}
            rows.append((f"Ansible, {args.steps} tasks", play, "ratio"))
            for who, r, _ in rows:
                print(
                    f"{latency_ms:>6.0f} {who:<30} {r['requests']:>8.1f} {r['pools']:>5.1f} "
                    f"{r['pipelines']:>5.1f} {r['sent'] / 1024:>8.1f} {r['wall']:>7.2f} "
                    f"{r['cpu'] * 1000:>7.0f}"
                )
            print(
                f"{'':>6} x this tool: "
                + ", ".join(
                    f"{k} {play[k] / base[k]:.1f}"
                    for k in ("requests", "pools", "pipelines", "sent", "wall", "cpu")
                )
            )
            by_action = {
                k: (many["by_action"].get(k, 0) - one["by_action"].get(k, 0)) / (tasks - 1)
                for k in sorted(many["by_action"])
            }
            print(
                f"{'':>6} Ansible per task by action: "
                + ", ".join(f"{k} {v:g}" for k, v in by_action.items())
                + f"; this tool's fix {'converged' if base['ok'] else 'did NOT converge'}"
            )


if __name__ == "__main__":
    main()
