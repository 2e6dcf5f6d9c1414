"""``sectigo-chain rollback JOURNAL``: undo what an apply journal recorded, in reverse.

Exit codes: 0 (everything undone), 2 (bad journal or input), 3 (unreachable), 4 (some steps
could not be undone: they are listed, and the journal says which).
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

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from sectigo_chain.cli.main import APPLY_FAILED, OK, UNREACHABLE, USAGE
    from sectigo_chain.errors import ExecutionError, SectigoChainError
    from sectigo_chain.hosts.targets import open_target
    from sectigo_chain.run.journal import Journal, rollback

    try:
        journal = Journal.load(args.journal)
        target = args.target or str(journal.doc.get("target") or "")
        pw = read_secret(args.password_env, args.password_file, "WinRM password")
        executor = open_target(target, password=SecretStr(pw) if pw else None)
    except (SectigoChainError, ValueError) as exc:
        error_line("rollback", str(exc))
        return USAGE
    try:
        with executor:
            result = rollback(journal, executor)
    except ExecutionError as exc:
        error_line("rollback", str(exc))
        return UNREACHABLE
    except (SectigoChainError, ValueError) as exc:
        error_line("rollback", str(exc))
        return USAGE
    if args.json:
        emit_json({"target": target, **result.model_dump(mode="json"), "complete": result.complete})
    else:
        sys.stdout.write(f"Rolled back on {target}: {', '.join(result.undone) or 'nothing'}\n")
        if result.complete and not result.checked:
            sys.stdout.write(
                "note: this journal holds no 'before' snapshot (an older version wrote it): "
                "the host was not compared with its state before apply\n"
            )
    if not result.complete:
        error_line("rollback", "incomplete: " + "; ".join(result.errors))
        return APPLY_FAILED
    return OK


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``rollback`` to the CLI."""
    p = subparsers.add_parser(
        "rollback",
        parents=parents,
        help="undo an apply from its journal",
        description="Replay the inverse of every step an apply journal recorded, newest first.",
    )
    p.add_argument("journal", help="the journal file apply wrote")
    p.add_argument("--target", help="the host (default: the target recorded in the journal)")
    add_secret_options(p, "WinRM password", "password")
    p.set_defaults(func=_run)
