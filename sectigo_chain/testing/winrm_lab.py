"""Loopback WinRM endpoints as a process, with an Ansible inventory for them (rehearsals).

``python -m sectigo_chain.testing.winrm_lab --hosts 4 --scenario broken-r46 fixed
--inventory lab.yml`` starts one :class:`~sectigo_chain.testing.winrm.WinRMTestServer` per host
(Basic over HTTPS on 127.0.0.1, each with a
:class:`~sectigo_chain.hosts.sim.host.SimulatedHost` of the next scenario behind it, and the
host's TLS listener serving what its IIS would serve), writes an Ansible inventory (group
``iis``) that reaches them, prints one line per host and ``ready``, and serves until it gets
SIGINT or SIGTERM. Then::

    LAB_WINRM_PASSWORD=... ansible-playbook -i lab.yml sectigo_chain.iis.fix_chain

The endpoints' password comes from the environment variable named by ``--password-env``
(default ``LAB_WINRM_PASSWORD``); the inventory reads it back with ``lookup('env', ...)``, so
it is in no file. The inventory sets ``sectigo_chain_catalog: lab`` (the simulated hosts hold
the pinned lab hierarchy, which this process and the Ansible workers build alike),
``sectigo_chain_check`` (each host's TLS listener) and ``ansible_winrm_ca_trust_path`` (the
endpoint's own lab CA, valid while this process runs).

Needs the ``testing`` extra (psrpcore). Test material: never point it at anything real.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sectigo_chain.testing.winrm_lab",
        description="Serve loopback WinRM endpoints with simulated IIS hosts behind them and "
        "write an Ansible inventory for them (until SIGINT/SIGTERM).",
    )
    p.add_argument("--hosts", type=int, default=1, help="how many endpoints (default 1)")
    p.add_argument(
        "--scenario", nargs="+", default=["broken-r46"],
        help="scenarios of the simulated hosts, used in turn (default broken-r46)",
    )  # fmt: skip
    p.add_argument("--inventory", required=True, help="the Ansible inventory to write (YAML)")
    p.add_argument(
        "--password-env", default="LAB_WINRM_PASSWORD",
        help="environment variable holding the endpoints' password (default %(default)s)",
    )  # fmt: skip
    p.add_argument("--name-prefix", default="lab", help="host names: PREFIX01, PREFIX02, ...")
    return p


def _host_vars(
    server: Any, check: tuple[str, int, str | None], password_env: str
) -> dict[str, Any]:
    return {
        "ansible_host": "127.0.0.1",
        "ansible_port": server.port,
        "ansible_user": server.username,
        "ansible_password": "{{ lookup('env', '" + password_env + "') }}",
        "ansible_winrm_transport": "basic",
        "ansible_winrm_ca_trust_path": server.ca_file,
        "sectigo_chain_catalog": "lab",
        "sectigo_chain_check": {"host": check[0], "port": check[1], "servername": check[2]},
    }


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad input."""
    from sectigo_chain.errors import InputError
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.hosts.sim.scenarios import SCENARIOS
    from sectigo_chain.testing.winrm import WinRMTestServer

    args = _parser().parse_args(argv)
    password = os.environ.get(args.password_env)
    problems = []
    if not password:
        problems.append(f"set the endpoints' password in the environment variable "
                        f"{args.password_env} (or name another with --password-env)")  # fmt: skip
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.password_env):
        problems.append(f"--password-env must be a variable name, not {args.password_env!r}")
    if not 1 <= args.hosts <= 200:
        problems.append(f"--hosts must be 1 to 200, not {args.hosts}")
    unknown = sorted(set(args.scenario) - set(SCENARIOS))
    if unknown:
        problems.append(f"unknown scenario(s) {', '.join(unknown)}; known: "
                        + ", ".join(sorted(SCENARIOS)))  # fmt: skip
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    assert password is not None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        hosts: dict[str, Any] = {}
        try:
            for i in range(args.hosts):
                sim = SimulatedHost(args.scenario[i % len(args.scenario)])
                server = stack.enter_context(WinRMTestServer(sim, password=password))
                listener = stack.enter_context(sim.start_tls())
                check = listener.address_for("Default Web Site")
                name = f"{args.name_prefix}{i + 1:02d}"
                hosts[name] = _host_vars(server, check, args.password_env)
                print(f"{name} {server.target} {sim.target} tls {check[0]}:{check[1]}",
                      flush=True)  # fmt: skip
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        inventory = {"iis": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}
        path = Path(args.inventory)
        path.write_text(json.dumps(inventory, indent=2) + "\n", encoding="utf-8")  # JSON is YAML
        print(f"ready: {len(hosts)} endpoint(s), inventory {path}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
