"""``sectigo-chain verify``: is the fix in place on the host, and is it what clients receive?

Observes the target again (the plan for the same options must be empty), builds the chain on the
host (``verify_chain``) and checks the served chain over TLS; when the host chain is right but
the served one is stale, climbs the ladder (re-apply the binding, ``iisreset``, restart HTTP)
and says which rung fixed it, or that a reboot is required. Exit codes: 0 (pass), 1 (fail),
2 (bad input), 3 (target unreachable).

The TLS endpoint: ``--endpoint HOST[:PORT]``; for ``sim://`` targets the simulated host's own
loopback listener; for ``winrm://HOST`` that host on ``--port``; for ``local`` ``localhost``.
"""

from __future__ import annotations

import argparse
import sys

from sectigo_chain.cli.commands._common import emit_json, error_line, read_secret

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["register", "run"]


def _endpoint(args: argparse.Namespace, executor: Any) -> tuple[str, int, str | None] | None:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.hosts.targets import parse_target as parse_host_target
    from sectigo_chain.tls.check import parse_target

    name = args.servername or args.hostname or None
    if args.endpoint:
        target = parse_target(args.endpoint, default_port=args.port)
        return target.host, target.port, name
    if args.no_tls:
        return None
    if isinstance(executor, SimulatedHost):
        host, port, sim_name = executor.start_tls().address_for(args.site)
        return host, port, name or sim_name
    scheme, rest = parse_host_target(args.target)
    if scheme == "winrm":
        host = rest.rpartition("@")[2]
        host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
        return host, args.port, name
    return "localhost", args.port, name


def run(args: argparse.Namespace) -> int:
    """Verify one site on one target; returns the exit code."""
    from pydantic import SecretStr

    from sectigo_chain.cli.main import CHAIN_PROBLEMS, OK, UNREACHABLE, USAGE
    from sectigo_chain.errors import ExecutionError, SectigoChainError
    from sectigo_chain.hosts.targets import catalog_for, open_target
    from sectigo_chain.run.verifier import DEFAULT_VERIFY_PROFILES, verify
    from sectigo_chain.state.recipe import sectigo_fix

    try:
        winrm_pw = read_secret(args.password_env, args.password_file, "WinRM password")
        pfx_pw = read_secret(args.pfx_password_env, args.pfx_password_file, "PFX password")
        executor = open_target(args.target, password=SecretStr(winrm_pw) if winrm_pw else None)
    except (SectigoChainError, ValueError) as exc:
        error_line("verify", str(exc))
        return USAGE
    with executor:
        try:
            catalog = catalog_for(executor)
            desired = sectigo_fix(
                site=args.site, hostname=args.hostname, ip=args.ip, port=args.port,
                sni=args.sni, pfx=args.pfx, pfx_password=pfx_pw, restart=args.restart,
                root_strategy=args.strategy, catalog=catalog,
            )  # fmt: skip
            report = verify(
                executor, desired, endpoint=_endpoint(args, executor), site=args.site,
                profiles=args.profile or DEFAULT_VERIFY_PROFILES, catalog=catalog,
                climb_ladder=not args.no_ladder, settle=args.settle,
                expiring_within_days=args.expiring_days,
            )  # fmt: skip
            entries = _entries(args, executor, report, catalog) if args.entries else None
        except ExecutionError as exc:
            error_line("verify", str(exc))
            return UNREACHABLE
        except (SectigoChainError, ValueError) as exc:
            error_line("verify", str(exc))
            return USAGE
    passed = report.ok and (entries is None or entries.verdict == "pass")
    if args.json:
        doc = report.to_json()
        if entries is not None:
            doc["entries"] = {**entries.model_dump(mode="json"), "verdict": entries.verdict}
        emit_json(doc)
    else:
        sys.stdout.write(f"{report}\n")
        if entries is not None:
            sys.stdout.write(f"Entries: {entries}\n")
    return OK if passed else CHAIN_PROBLEMS


def _entries(args: argparse.Namespace, executor: Any, report: Any, catalog: Any) -> Any:
    """``--entries``: every HTTP.sys entry and handshake of the site (run/entries.py); the
    per-entry ladder only when the stores are right (plan empty, host chain right)."""
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.run.entries import verify_entries
    from sectigo_chain.run.verifier import DEFAULT_VERIFY_PROFILES

    if isinstance(executor, SimulatedHost):
        listener = executor.start_tls()

        def address(probe: Any) -> tuple[str, int]:
            ip, port, _name = listener.address_for(probe.entry)
            return ip, port
    else:
        endpoint = _endpoint(args, executor)
        host = endpoint[0] if endpoint else "localhost"

        def address(probe: Any) -> tuple[str, int]:
            return host, probe.port

    stores_right = report.plan_empty and report.host_chain is not None and report.host_chain.right
    return verify_entries(
        executor, report.site, address, profiles=args.profile or DEFAULT_VERIFY_PROFILES,
        catalog=catalog, climb_ladder=stores_right and not args.no_ladder,
    )  # fmt: skip


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``verify`` to the CLI."""
    from sectigo_chain.cli.commands.plan import add_fix_arguments

    p = subparsers.add_parser(
        "verify",
        parents=parents,
        help="verify the fix: desired state, the chain on the host, the chain served over TLS",
        description="Observe again (the plan must be empty), build the chain on the host "
        "(verify_chain) and check the served chain over TLS against client profiles; when the "
        "host chain is right but the served one is stale, climb the ladder (re-apply the "
        "binding, iisreset, restart HTTP) and say which rung fixed it or that a reboot is "
        "required.",
    )
    add_fix_arguments(p)
    p.add_argument(
        "--endpoint",
        metavar="HOST[:PORT]",
        help="where the site answers TLS (default: the target's host on --port; the loopback "
        "listener for sim:// targets)",
    )
    p.add_argument("--servername", metavar="NAME", help="SNI name (default: --hostname)")
    p.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="client profile (repeat; default: legacy, modern, both)",
    )
    p.add_argument("--no-tls", action="store_true", help="do not check the served chain")
    p.add_argument(
        "--entries",
        action="store_true",
        help="also check every HTTP.sys entry of the site (IP:port, host:port, CCS), with and "
        "without SNI, per TLS version; refresh a stale entry on its own before iisreset",
    )
    p.add_argument(
        "--no-ladder", action="store_true", help="report a stale served chain, restart nothing"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the site to answer again after a rung (default: 30)",
    )
    p.set_defaults(func=run)
