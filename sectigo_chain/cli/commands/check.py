"""``sectigo-chain check HOST[:PORT] ...``: fetch, analyse and validate served chains.

``sim://SCENARIO`` targets start a simulated host (no Windows, nothing leaves the machine) with
its real TLS listener on 127.0.0.1 and check what it serves for its first https site, judged
against the lab CA catalog its certificates come from; ``--catalog lab`` judges every target
against that lab catalog (for endpoints served by ``sectigo_chain.testing``).

Exit codes: 0 every target passed (warnings allowed), 1 a chain has problems (verdict
``fail``), 2 bad usage or input (nothing was checked), 3 a target could not be checked
(connect, handshake or timeout). With several targets the worst wins, 3 before 1.
"""

from __future__ import annotations

import argparse
import math
import sys

from sectigo_chain.cli.commands._common import emit_json, error_line

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["HELPER_MIN_TARGETS", "read_targets_file", "register", "run"]

HELPER_MIN_TARGETS = 40
"""From this many targets on, the handshakes run in a helper process, which also judges a share
of the targets once its handshakes are done (``--single-process`` turns it off). Measured on 2
cores with the loopback servers in another process: at 50 endpoints 6-8 % less time with
P-256 leaves, 0-4 % with RSA leaves (whose servers' signatures take the second core); at 25,
1 % less to 3 % more; at 200, 5-21 % less (``docs/tls.md``)."""

_EPILOG = """\
exit codes: 0 pass (warnings allowed), 1 chain problems, 2 usage or input error,
3 could not connect or handshake. With several targets: 3 if any could not be checked,
else 1 if any failed, else 0.
sim://SCENARIO: check a simulated IIS host offline (scenarios: see 'sectigo-chain demo --help').
targets file: one HOST[:PORT] per line, optionally followed by a server name (SNI);
blank lines and lines starting with # are ignored; - reads standard input.
"""


def register(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand."""
    from sectigo_chain.cli.main import RawDescriptionHelpFormatter

    p = sub.add_parser(
        "check",
        parents=list(parents),
        help="fetch the chain a TLS server serves and judge it per client profile",
        description=(
            "Connect to each target once (the server picks TLS 1.2 or 1.3; once per version "
            "with --each-tls-version or when that handshake fails), fetch the served chain as "
            "sent, analyse it (short chain, self-signed R46/E46 sent, order, expiry, extra "
            "certificates ...) and validate it for each client profile. The verdict is fail "
            "when a profile does not validate or a finding is an error, warn when only "
            "warnings exist, pass otherwise."
        ),
        epilog=_EPILOG,
        formatter_class=RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="HOST[:PORT]",
        help="endpoints (default port 443), or sim://SCENARIO for a simulated host",
    )
    p.add_argument("--targets-file", metavar="FILE", help="read more targets from FILE (- stdin)")
    sni = p.add_mutually_exclusive_group()
    sni.add_argument(
        "--servername",
        metavar="NAME",
        help="server name to send (SNI) and to check the certificate against (default: the host)",
    )
    sni.add_argument("--no-sni", action="store_true", help="send no server name")
    p.add_argument(
        "--profile",
        action="append",
        metavar="NAME|NAME=PEMFILE",
        help="client profile to validate for (repeatable; default: legacy and modern)",
    )
    p.add_argument("--list-profiles", action="store_true", help="list the profile names and exit")
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds one target's fetch may take (default: %(default)s)",
    )
    versions = p.add_mutually_exclusive_group()
    versions.add_argument(
        "--tls-version",
        action="append",
        choices=("1.2", "1.3"),
        help="TLS version to try, one handshake each (repeatable; default: one handshake in "
        "which the server picks 1.2 or 1.3)",
    )
    versions.add_argument(
        "--each-tls-version",
        action="store_true",
        help="one handshake per TLS version (1.2 and 1.3), to see whether they serve "
        "different chains",
    )
    p.add_argument(
        "--catalog",
        choices=("sectigo", "lab"),
        default="sectigo",
        help="CA catalog to judge against: the packaged Sectigo one, or the test lab's "
        "(sim:// targets always use the lab's; default: %(default)s)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        metavar="N",
        help="connections open at once (default: %(default)s)",
    )
    p.add_argument(
        "--single-process",
        action="store_true",
        help=f"do everything in this process (default: from {HELPER_MIN_TARGETS} targets on, "
        "on Linux, a helper process does the handshakes while this one judges the chains, "
        "then judges a share of them)",
    )
    p.set_defaults(func=run)


def read_targets_file(path: str) -> list[tuple[str, str | None]]:
    """``(target, servername or None)`` per line of ``path`` (``-``: standard input)."""
    from sectigo_chain.errors import InputError

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot read the targets file {path}: {reason}") from None
    out: list[tuple[str, str | None]] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise InputError(
                f"{path} line {number}: expected HOST[:PORT] [SERVERNAME], got {line.strip()!r}"
            )
        out.append((fields[0], fields[1] if len(fields) == 2 else None))
    return out


def _list_profiles(as_json: bool) -> int:
    from sectigo_chain.cli.main import OK
    from sectigo_chain.trust.profiles import list_profiles

    rows = list_profiles()
    if as_json:
        emit_json({"profiles": [{"name": n, "description": d} for n, d in rows]})
    else:
        width = max(len(n) for n, _ in rows)
        for name, description in rows:
            print(f"{name:<{width}}  {description}")
        print(f"{'NAME=PEMFILE':<{width}}  your own bundle: every certificate in it is an anchor")
    return OK


def run(args: argparse.Namespace) -> int:
    """Check every target; the exit code is the worst outcome (see the module docstring)."""
    from sectigo_chain.cli.main import CHAIN_PROBLEMS, OK, UNREACHABLE, USAGE
    from sectigo_chain.errors import InputError

    if args.list_profiles:
        return _list_profiles(args.json)
    try:
        targets, many, profiles = _prepare(args)
    except InputError as exc:
        error_line("check", str(exc))
        return USAGE
    from sectigo_chain.tls.report import CheckFailure, worst_verdict

    try:
        results = _check(args, targets, profiles)
    except InputError as exc:
        error_line("check", str(exc))
        return USAGE
    for result in results:
        if isinstance(result, CheckFailure):
            error_line("check", result.message)
    verdict = worst_verdict(r.verdict for r in results)
    if args.json:
        if many:
            counts = {v: sum(r.verdict == v for r in results) for v in ("pass", "warn", "fail")}
            counts["error"] = sum(isinstance(r, CheckFailure) for r in results)
            emit_json(
                {"verdict": verdict, "summary": counts, "targets": [r.to_json() for r in results]}
            )
        else:
            emit_json(results[0].to_json())
    elif not args.quiet:
        for i, result in enumerate(results):
            if not isinstance(result, CheckFailure):
                print(("\n" if i else "") + str(result))
        if many:
            print(f"\n{len(results)} targets: " + _summary(r.verdict for r in results))
    if verdict == "error":
        return UNREACHABLE
    return CHAIN_PROBLEMS if verdict == "fail" else OK


def _check(args: argparse.Namespace, targets: list[Any], profiles: Any) -> list[Any]:
    """Check real endpoints and ``sim://`` hosts (each group with its own catalog); results
    in the order the targets were given."""
    from sectigo_chain.tls.check import check_many

    versions = _tls_versions(args)
    real = [(i, t) for i, t in enumerate(targets) if not isinstance(t, str)]
    sims = [(i, t) for i, t in enumerate(targets) if isinstance(t, str)]
    out: list[Any] = [None] * len(targets)
    if real:
        catalog = None
        if args.catalog == "lab":
            from sectigo_chain.testing.lab import default_lab

            catalog = default_lab().catalog
        if catalog is not None:
            from sectigo_chain.tls.check import resolve_profiles

            profiles = resolve_profiles(args.profile, catalog)
        helper = not args.single_process and len(real) >= HELPER_MIN_TARGETS
        found = check_many([t for _, t in real], profiles=profiles, timeout=args.timeout,
                           tls_versions=versions, concurrency=args.concurrency,
                           catalog=catalog, helper_process=helper)  # fmt: skip
        for (i, _), result in zip(real, found, strict=True):
            out[i] = result
    if sims:
        for (i, _), result in zip(sims, _check_sims([t for _, t in sims], args), strict=True):
            out[i] = result
    return out


def _check_sims(names: list[str], args: argparse.Namespace) -> list[Any]:
    """Start each simulated host's TLS listener and check what it serves for its first https
    site; the reports name the ``sim://`` target."""
    import contextlib

    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.tls.check import check_many, resolve_profiles
    from sectigo_chain.tls.fetch import Target

    versions = _tls_versions(args)
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(SimulatedHost(name)) for name in names]
        endpoints = []
        for host in hosts:
            listener = host.start_tls()
            site = next(
                (s.name for s in host.model.sites.values()
                 if any(b.protocol == "https" for b in s.bindings)),
                None,
            )  # fmt: skip
            if site is None:
                from sectigo_chain.errors import InputError

                raise InputError(f"{host.target} has no https site to check")
            ip, port, servername = listener.address_for(site)
            endpoints.append(Target(ip, port, servername))
        catalog = hosts[0].catalog  # one lab for every scenario
        found = check_many(endpoints, profiles=resolve_profiles(args.profile, catalog),
                           timeout=args.timeout, tls_versions=versions,
                           concurrency=args.concurrency, catalog=catalog)  # fmt: skip
    out = []
    for host, result in zip(hosts, found, strict=True):
        out.append(result.model_copy(update={"target": host.target}))
    return out


def _tls_versions(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The versions to shake hands with one by one; None: one handshake, the server picks."""
    if args.each_tls_version:
        return ("1.2", "1.3")
    return tuple(dict.fromkeys(args.tls_version)) if args.tls_version else None


def _summary(verdicts: Any) -> str:
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    names = {"pass": "pass", "warn": "warn", "fail": "fail", "error": "not checked"}
    return ", ".join(f"{counts.get(k, 0)} {label}" for k, label in names.items())


def _sim_name(text: str) -> str:
    """``sim://SCENARIO`` -> ``SCENARIO``; InputError for an unknown scenario."""
    from sectigo_chain.errors import InputError
    from sectigo_chain.hosts.sim.scenarios import SCENARIOS

    name = text.split("://", 1)[1].strip("/")
    if name not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        raise InputError(f"unknown scenario {name!r} in {text!r}; scenarios: {known}")
    return name


def _prepare(args: argparse.Namespace) -> tuple[list[Any], bool, list[Any]]:
    """(targets, whether the many-targets form is used, profiles); raises InputError."""
    from sectigo_chain.errors import InputError
    from sectigo_chain.tls.check import parse_target, resolve_profiles
    from sectigo_chain.tls.fetch import NO_SNI, Target

    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise InputError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, not {args.concurrency}")
    default_sni = NO_SNI if args.no_sni else args.servername
    entries: list[tuple[str, str | None]] = [(t, default_sni) for t in args.targets]
    if args.targets_file:
        extra = read_targets_file(args.targets_file)
        entries += [(t, name if name is not None else default_sni) for t, name in extra]
    if not entries:
        raise InputError("no target given: give HOST[:PORT] or --targets-file FILE")
    targets: list[Any] = []
    for text, name in entries:
        if text.lower().startswith("sim://"):
            targets.append(_sim_name(text))
            continue
        parsed = parse_target(text)
        targets.append(Target(parsed.host, parsed.port, name))
    many = len(targets) > 1 or bool(args.targets_file)
    return targets, many, resolve_profiles(args.profile)
