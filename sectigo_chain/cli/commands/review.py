"""``sectigo-chain review JOURNAL...``: list the fixes due for review.

Exit codes: 0 (nothing due), 1 (at least one fix is due), 2 (bad journal or input).
"""

from __future__ import annotations

import argparse
import sys

from sectigo_chain.cli.commands._common import emit_json, error_line

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    import datetime as dt

    from sectigo_chain.cli.main import CHAIN_PROBLEMS, OK, USAGE
    from sectigo_chain.errors import SectigoChainError
    from sectigo_chain.run.review import review

    try:
        at = dt.date.fromisoformat(args.at) if args.at else dt.datetime.now(dt.timezone.utc)
    except ValueError:
        error_line("review", f"--at {args.at!r} is not a date (YYYY-MM-DD)")
        return USAGE
    try:
        report = review(args.journals, at=at, within_days=args.within)
    except SectigoChainError as exc:
        error_line("review", str(exc))
        return USAGE
    if args.json:
        emit_json(
            {
                **report.model_dump(mode="json"),
                "due": [i.model_dump(mode="json") for i in report.due],
            }
        )
    else:
        sys.stdout.write(str(report) + "\n")
    return CHAIN_PROBLEMS if report.due else OK


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``review`` to the CLI."""
    p = subparsers.add_parser(
        "review",
        parents=parents,
        help="list the fixes whose revert date is due",
        description="Read apply journals and list every distrust action (root removed or "
        "disallowed, Automatic Root Update disabled) with its revert date; exit 1 when one "
        "is due.",
    )
    p.add_argument("journals", nargs="+", metavar="JOURNAL", help="journal files apply wrote")
    p.add_argument(
        "--within",
        type=int,
        default=0,
        metavar="DAYS",
        help="also list as due what falls due within DAYS days (default 0)",
    )
    p.add_argument("--at", metavar="YYYY-MM-DD", help="judge at this date (default: today, UTC)")
    p.set_defaults(func=_run)
