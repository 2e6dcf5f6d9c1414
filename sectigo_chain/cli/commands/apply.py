"""``sectigo-chain apply``: run the fix plan (backup, journal, rollback on failure).

Shows the plan and asks before changing anything unless ``--yes``. Exit codes: 0 (applied and
the host now matches, or nothing to do), 1 (applied, but observing again still finds work:
e.g. a root that came back through Automatic Root Update), 2 (bad input, refused plan, or not
confirmed), 3 (unreachable before anything changed), 4 (apply failed and was rolled back, or
rollback was incomplete: the message names the journal).
"""

from __future__ import annotations

import argparse
import sys

from sectigo_chain.cli.commands._common import emit_json, error_line
from sectigo_chain.cli.commands.plan import add_fix_arguments, handle_errors, prepare

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["register"]


def _confirm(the_plan: Any) -> bool:
    if not sys.stdin.isatty():
        return False
    sys.stderr.write(f"Apply {len(the_plan.actions)} action(s) to {the_plan.target}? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sectigo_chain.cli.main import CHAIN_PROBLEMS, OK, USAGE
    from sectigo_chain.errors import SectigoChainError
    from sectigo_chain.run.applier import apply

    journal_dir = Path(args.journal_dir) if args.journal_dir else None
    if journal_dir is not None:  # created when missing, as demo and fleet do
        try:
            journal_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error_line("apply", f"cannot create the journal folder {journal_dir}: {exc.strerror}")
            return USAGE
    try:
        executor, desired, the_plan, catalog, observed = prepare(args)
    except (SectigoChainError, ValueError) as exc:
        return handle_errors("apply", args, exc)
    with executor:
        out = sys.stderr if args.json else sys.stdout
        out.write(f"Plan for {the_plan.target}:\n{the_plan}\n")
        if the_plan.actions and not args.yes and not _confirm(the_plan):
            error_line("apply", "not confirmed; nothing changed (pass --yes to skip the question)")
            return USAGE

        def progress(index: int, total: int, action: Any) -> None:
            if not args.quiet:
                from sectigo_chain.logs import escape_controls

                reason = escape_controls(str(action.reason))
                out.write(f"[{index + 1}/{total}] {action.kind}: {reason}\n")

        try:
            result = apply(
                the_plan,
                executor,
                desired=desired,
                catalog=catalog,
                allow_group_policy_override=args.allow_group_policy,
                expiring_within_days=args.expiring_days,
                journal_dir=journal_dir,
                progress=progress,
                before=observed,  # the state the plan was made from: no second observe
            )
        except (SectigoChainError, ValueError) as exc:
            return handle_errors("apply", args, exc)
    if args.json:
        emit_json(result.to_document())
    else:
        state = "changed" if result.changed else "no change"
        sys.stdout.write(f"Applied ({state}); journal: {result.journal or 'none'}\n")
        if result.outbound is not None and result.outbound.after is not None:
            label = "WARNING: " if result.outbound.verdict != "ok" else ""
            sys.stdout.write(
                f"{label}outbound self-test: {result.outbound.after.line()} "
                f"({result.outbound.reason})\n"
            )
    if not result.after_plan_empty:
        lines = result.after_plan.summary_lines() if result.after_plan else []
        error_line("apply", "observing again still finds work to do:\n" + "\n".join(lines))
        return CHAIN_PROBLEMS
    return OK


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``apply`` to the CLI."""
    p = subparsers.add_parser(
        "apply",
        parents=parents,
        help="apply the R46/E46 fix (backup, journal, automatic rollback)",
        description="Plan as 'sectigo-chain plan' does, show the plan, ask, then run it. "
        "Every removal is backed up in a journal first; a failure rolls everything back.",
    )
    add_fix_arguments(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where to write the journal (created if missing; default: .)",
    )
    p.set_defaults(func=_run)
