"""``sectigo-chain plan``: what the R46/E46 fix would change on a target, and why.

Exit codes: 0 (plan computed; with ``--detailed-exitcode``: nothing to do), 1 (only with
``--detailed-exitcode``: there are actions), 2 (bad input, or the plan was refused, e.g. a Group
Policy root), 3 (target unreachable).
"""

from __future__ import annotations

import argparse
import sys

from sectigo_chain.cli.commands._common import (
    add_secret_options,
    emit_json,
    error_line,
    read_secret,
)

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_fix_arguments", "prepare", "register"]

STRATEGIES = ("remove", "remove_and_disallow", "disable_auto_update", "keep")


def add_fix_arguments(p: argparse.ArgumentParser) -> None:
    """The options plan and apply share."""
    p.add_argument("--target", required=True, help="sim://SCENARIO, local or winrm://[user@]host")
    p.add_argument("--site", default="Default Web Site", help="IIS site (default: %(default)s)")
    p.add_argument("--hostname", help="host header of the https binding (turns SNI on)")
    p.add_argument("--ip", default="*", help="binding IP address (default: *)")
    p.add_argument("--port", type=int, default=443, help="binding port (default: 443)")
    sni = p.add_mutually_exclusive_group()
    sni.add_argument("--sni", dest="sni", action="store_true", default=None, help="require SNI")
    sni.add_argument("--no-sni", dest="sni", action="store_false", help="no SNI")
    p.add_argument(
        "--pfx", metavar="FILE", help="PFX to import and bind (default: keep the bound one)"
    )
    add_secret_options(p, "PFX password", "pfx-password")
    add_secret_options(p, "WinRM password", "password")
    p.add_argument("--strategy", choices=STRATEGIES, default="remove",
                   help="what to do about the self-signed root (default: %(default)s)")  # fmt: skip
    p.add_argument("--restart", choices=("iisreset", "recycle", "none"), default="iisreset",
                   help="how to refresh the served chain (default: %(default)s)")  # fmt: skip
    p.add_argument(
        "--no-served",
        action="store_true",
        help="do not fetch the chain the site serves (the plan then compares the stores only)",
    )
    p.add_argument(
        "--allow-group-policy",
        action="store_true",
        help="plan the rest of the fix even if a Group Policy root cannot be removed",
    )
    p.add_argument(
        "--expiring-days",
        type=int,
        default=30,
        metavar="N",
        help="also remove intermediates in LocalMachine\\CA that expire within N days "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--rebuild-ccs",
        action="store_true",
        help="plan to rebuild a Central Certificate Store PFX that lacks the intermediates "
        "with the full chain (the original is kept beside it; undone by rollback)",
    )
    add_secret_options(p, "private-key password of the CCS PFX files", "ccs-password")
    p.add_argument(
        "--outbound-url",
        metavar="URL",
        help="after a distrust action, test the host's own outbound TLS to this https URL "
        "(e.g. your ACME directory); a chain that was trusted before and is not after fails "
        "the apply and rolls it back (default: no self-test)",
    )


def prepare(args: argparse.Namespace) -> tuple[Any, Any, Any, Any, Any]:
    """Open the target, observe it and build desired state and plan.

    Returns ``(executor, desired, plan, catalog, observed)``; raises the library's errors.
    """
    import datetime as dt

    from pydantic import SecretStr

    from sectigo_chain.hosts.targets import catalog_for, open_target
    from sectigo_chain.run.applier import observe
    from sectigo_chain.run.outbound import check_outbound_url
    from sectigo_chain.state.planner import plan
    from sectigo_chain.state.recipe import sectigo_fix

    winrm_pw = read_secret(args.password_env, args.password_file, "WinRM password")
    pfx_pw = read_secret(args.pfx_password_env, args.pfx_password_file, "PFX password")
    executor = open_target(args.target, password=SecretStr(winrm_pw) if winrm_pw else None)
    try:
        catalog = catalog_for(executor)
        desired = sectigo_fix(
            site=args.site,
            hostname=args.hostname,
            ip=args.ip,
            port=args.port,
            sni=args.sni,
            pfx=args.pfx,
            pfx_password=pfx_pw,
            restart=args.restart,
            root_strategy=args.strategy,
            catalog=catalog,
        )
        ccs_pw = read_secret(getattr(args, "ccs_password_env", None),
                             getattr(args, "ccs_password_file", None), "CCS password")  # fmt: skip
        desired = desired.model_copy(
            update={
                "rebuild_ccs": bool(getattr(args, "rebuild_ccs", False)),
                "ccs_password": SecretStr(ccs_pw) if ccs_pw is not None else None,
                "outbound_url": check_outbound_url(getattr(args, "outbound_url", None)),
            }
        )
        observed = observe(executor, ccs_password=desired.ccs_password)
        if not getattr(args, "no_served", False):
            observed = observed.model_copy(update={"served": (observe_served(args, executor),)})
        the_plan = plan(
            desired,
            observed,
            at=dt.datetime.now(dt.timezone.utc),
            catalog=catalog,
            allow_group_policy_override=args.allow_group_policy,
            target=executor.target,
            expiring_within_days=args.expiring_days,
        )
    except BaseException:
        executor.close()
        raise
    return executor, desired, the_plan, catalog, observed


def observe_served(args: argparse.Namespace, executor: Any) -> Any:
    """What the site serves over TLS (an ``ObservedServed``), fetched from here: a simulated
    host's loopback listener, else the target's host on ``--port`` (``localhost`` for
    ``local``). Unreachable is data (the plan then warns), never an error."""
    from sectigo_chain.errors import InputError, TLSFetchError
    from sectigo_chain.hosts.targets import parse_target as parse_host_target
    from sectigo_chain.state.models import ObservedServed
    from sectigo_chain.tls.fetch import fetch_served_chain
    from sectigo_chain.x509.certs import thumbprint

    name = args.hostname or None
    start_tls = getattr(executor, "start_tls", None)  # a simulated host
    try:
        if start_tls is not None:
            host, port, sim_name = start_tls().address_for(args.site)
            name = name or sim_name
        else:
            scheme, rest = parse_host_target(args.target)
            host = rest.rpartition("@")[2] if scheme == "winrm" else "localhost"
            host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
            port = args.port
    except InputError as exc:
        return ObservedServed(site=args.site, error=str(exc))
    where = f"{host}:{port}" + (f" (SNI {name})" if name else "")
    try:
        fetched = fetch_served_chain(host, port, servername=name, timeout=5.0)
    except TLSFetchError as exc:
        return ObservedServed(site=args.site, endpoint=where, error=str(exc))
    chain = fetched.chain.certificates
    return ObservedServed(site=args.site, endpoint=where, thumbprints=tuple(map(thumbprint, chain)))


def handle_errors(command: str, args: argparse.Namespace, exc: BaseException) -> int:
    """Map the library's errors onto exit codes (and one JSON document with ``--json``)."""
    from sectigo_chain.cli.main import APPLY_FAILED, UNREACHABLE, USAGE
    from sectigo_chain.errors import ApplyError, ExecutionError, PlanRefused, SectigoChainError

    if isinstance(exc, PlanRefused):
        if args.json:
            emit_json({"target": args.target, "refused": {"message": str(exc),
                                                          "guidance": exc.guidance}})  # fmt: skip
        error_line(command, f"{exc}")
        for line in exc.guidance:
            sys.stderr.write(f"  - {line}\n")
        return USAGE
    if isinstance(exc, ApplyError):
        if args.json:
            emit_json({"target": args.target, "error": str(exc), "journal": exc.journal,
                       "rolled_back": exc.rolled_back,
                       "rollback_complete": exc.rollback_complete})  # fmt: skip
        error_line(command, str(exc))
        return APPLY_FAILED
    if isinstance(exc, ExecutionError):
        error_line(command, str(exc))
        return UNREACHABLE
    if isinstance(exc, (SectigoChainError, ValueError)):
        error_line(command, str(exc))
        return USAGE
    raise exc


def _run(args: argparse.Namespace) -> int:
    from sectigo_chain.cli.main import CHAIN_PROBLEMS, OK
    from sectigo_chain.errors import SectigoChainError

    try:
        executor, _desired, the_plan, _cat, _observed = prepare(args)
    except (SectigoChainError, ValueError) as exc:
        return handle_errors("plan", args, exc)
    executor.close()
    if args.json:
        emit_json({"target": the_plan.target, "plan": the_plan.model_dump(mode="json")})
    else:
        sys.stdout.write(f"Plan for {the_plan.target}:\n{the_plan}\n")
    if args.detailed_exitcode and the_plan.actions:
        return CHAIN_PROBLEMS
    return OK


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``plan`` to the CLI."""
    p = subparsers.add_parser(
        "plan",
        parents=parents,
        help="show what the R46/E46 fix would change on a target",
        description="Observe the target, compare it with the manual fix procedure and list "
        "the actions (and why), the reasons nothing else is needed, and warnings.",
    )
    add_fix_arguments(p)
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 1 when there are actions, 0 when there is nothing to do")  # fmt: skip
    p.set_defaults(func=_run)
