"""``sectigo-chain fleet plan|apply|check INVENTORY``: many hosts from an inventory file;
``sectigo-chain fleet merge REPORT...``: join the reports of ``--shard K/N`` runs.

``apply`` rolls the fix out: a canary host first, then the others (``--concurrency`` at a time,
optionally in ``--batch-size`` groups), stopping when a host's change fails or does not verify;
it asks before changing anything unless ``--yes``. ``plan`` and ``check`` change nothing and
visit every host. The JSON report (``--report``; for apply, by default a new
``sectigo-chain-fleet-<time>.json``) lets ``--resume`` continue a stopped rollout.

Exit codes: 0 every host is fine; 1 a chain problem, a failed host or a stopped rollout;
2 bad input (inventory, environment variables, options, not confirmed); 3 every host that was
tried was unreachable; 4 an apply failed on some host (rolled back, or rollback incomplete).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from sectigo_chain.cli.commands._common import emit_json, error_line

TYPE_CHECKING = False  # typing, pathlib and datetime are not imported at --help time
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = ["register"]


def _confirm(count: int, first: str | None) -> bool:
    if not sys.stdin.isatty():
        return False
    canary = f" (canary {first} first)" if first else ""
    sys.stderr.write(f"Apply the R46/E46 fix to {count} host(s){canary}? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


class _Interrupted(Exception):
    def __init__(self, what: str, code: int) -> None:
        super().__init__(what)
        self.what, self.code = what, code


@contextlib.contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """SIGTERM and SIGINT end the rollout the orderly way: hosts that are running finish (a
    host is never left half-changed by the controller), the final report is written, and the
    command exits 143 / 130. Only in the main thread (signal handlers live there)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)  # a second signal must not break the clean-up
        name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
        raise _Interrupted(name, 128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _report_path(args: argparse.Namespace) -> str | None:
    if args.report:
        return str(args.report)
    if args.resume:
        return str(args.resume)  # a resumed rollout updates its own report
    if args.mode == "apply":
        import datetime as dt

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return f"sectigo-chain-fleet-{stamp}.json"
    return None


def _merge(args: argparse.Namespace) -> int:
    from sectigo_chain.cli.main import USAGE
    from sectigo_chain.errors import SectigoChainError
    from sectigo_chain.fleet.report import FleetReport
    from sectigo_chain.fleet.shard import merge_reports

    try:
        merged = merge_reports([FleetReport.load(p) for p in [args.inventory, *args.more_reports]])
        if args.report:
            merged.write(args.report)
        if args.html:
            from pathlib import Path

            Path(args.html).write_text(merged.to_html(), encoding="utf-8")
    except SectigoChainError as exc:
        error_line("fleet", str(exc))
        return USAGE
    except OSError as exc:
        error_line("fleet", f"cannot write the merged report: {exc.strerror}")
        return USAGE
    if args.json:
        emit_json(merged.to_json())
    else:
        sys.stdout.write(str(merged) + "\n")
    return merged.exit_code()


def _run(args: argparse.Namespace) -> int:
    from sectigo_chain.cli.main import USAGE

    if args.mode == "merge":
        return _merge(args)
    if args.more_reports:
        error_line(
            "fleet", f"fleet {args.mode} takes one INVENTORY (got {1 + len(args.more_reports)})"
        )
        return USAGE
    from sectigo_chain.errors import SectigoChainError
    from sectigo_chain.fleet.inventory import load_inventory
    from sectigo_chain.fleet.rollout import run_fleet

    try:
        inventory, _folder = load_inventory(args.inventory)
    except SectigoChainError as exc:
        error_line("fleet", str(exc))
        return USAGE
    if args.mode == "apply" and not args.yes:
        first = inventory.hosts[0].name if not args.no_canary else None
        if not _confirm(len(inventory.hosts), first):
            error_line("fleet", "not confirmed; nothing changed (pass --yes to skip the question)")
            return USAGE
    report_path = _report_path(args)
    progress: Any = None
    if not args.json and not args.quiet:
        from sectigo_chain.display.render import progress_bar

        progress = progress_bar(len(inventory.hosts))
    try:
        with _signals_end_the_run():
            report = run_fleet(
                args.inventory,
                args.mode,
                concurrency=args.concurrency,
                canary=not args.no_canary,
                batch_size=args.batch_size,
                stop_on_failure=not args.no_stop,
                progress=progress,
                report_path=report_path,
                resume_from=args.resume,
                journal_dir=args.journal_dir,
                climb_ladder=args.climb_ladder,
                entries=args.entries,
                shard=args.shard,
            )
    except (SectigoChainError, ValueError) as exc:
        error_line("fleet", str(exc))
        return USAGE
    except _Interrupted as exc:
        if report_path:
            sys.stderr.write(
                f"fleet: interrupted by {exc.what}; every host that finished is in {report_path} "
                f"(and its .hosts.jsonl log)\nresume with: sectigo-chain fleet {args.mode} "
                f"{args.inventory} --resume {report_path}\n"
            )
        else:
            sys.stderr.write(f"fleet: interrupted by {exc.what}\n")
        return exc.code
    if args.html:
        from pathlib import Path

        try:
            Path(args.html).write_text(report.to_html(), encoding="utf-8")
        except OSError as exc:
            error_line("fleet", f"cannot write {args.html}: {exc.strerror}")
            return USAGE
    if args.json:
        emit_json(report.to_json())
    else:
        sys.stdout.write(str(report) + "\n")
    if report_path and not args.quiet:
        sys.stderr.write(f"report: {report_path}\n")
    if report.stopped and not args.quiet:
        sys.stderr.write(
            f"resume with: sectigo-chain fleet {args.mode} {args.inventory} "
            f"--resume {report_path}\n"
        )
    return report.exit_code()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``fleet`` to the CLI."""
    p = subparsers.add_parser(
        "fleet",
        parents=parents,
        help="plan, apply or check the fix on many hosts from an inventory",
        description="Run plan, apply or check for every host of an inventory (TOML; YAML with "
        "pyyaml installed). apply: a canary host first, then the others, stopping when a "
        "host's change fails or does not verify. See docs/fleet.md.",
    )
    p.add_argument(
        "mode",
        choices=("plan", "apply", "check", "merge"),
        help="what to do on each host; merge: join shard reports (REPORT... instead of INVENTORY)",
    )
    p.add_argument("inventory", metavar="INVENTORY", help="inventory file (.toml/.yaml/.json)")
    p.add_argument("more_reports", nargs="*", metavar="REPORT", help=argparse.SUPPRESS)
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="run only shard K of N (hosts assigned by a hash of their name; each shard has its "
        "own canary); join the reports with 'fleet merge'",
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=8,
        metavar="N",
        help="hosts at a time (default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive,
        metavar="N",
        help="apply in groups of N, stopping after a group with a failure "
        "(default: rolling, stop at the first failure)",
    )
    p.add_argument("--no-canary", action="store_true", help="do not run the first host alone")
    p.add_argument(
        "--no-stop",
        action="store_true",
        help="keep going when a host's change fails (every host is still isolated)",
    )
    p.add_argument("--report", metavar="FILE", help="write the JSON report here")
    p.add_argument("--html", metavar="FILE", help="also write an HTML report here")
    p.add_argument(
        "--resume",
        metavar="REPORT",
        help="skip hosts this report has applied/unchanged and run the rest",
    )
    p.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="apply journals (default: sectigo-chain-journals/ beside the report)",
    )
    p.add_argument(
        "--climb-ladder",
        action="store_true",
        help="when the served chain is stale after apply, re-bind/restart until it "
        "refreshes (see 'verify')",
    )
    p.add_argument(
        "--entries",
        action="store_true",
        help="also check every HTTP.sys entry of each site (IP:port, host:port, CCS), with and "
        "without SNI, per TLS version (with --climb-ladder: refresh a stale entry on its own "
        "before iisreset); a failing entry fails the host",
    )
    p.add_argument("--yes", action="store_true", help="apply without asking")
    p.set_defaults(func=_run)
