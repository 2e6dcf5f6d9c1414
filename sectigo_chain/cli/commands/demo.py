"""``sectigo-chain demo``: the whole job on the embedded simulated host, in seconds.

Starts a simulated IIS host (``broken-r46`` unless ``--scenario``) with its real TLS listener
on 127.0.0.1, checks the served chain, shows the plan, applies it, checks again and verifies;
prints the before/after story, or with ``--json`` the whole record. No Windows, no network, no
arguments needed. Exit codes: 0 (the story ends with pass), 1 (it does not), 2 (bad input, a
refused plan), 3 (the loopback listener could not be reached), 4 (apply failed, rolled back).
"""

from __future__ import annotations

import argparse
import sys

from sectigo_chain.cli.commands._common import emit_json, error_line

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    from pathlib import Path

    from sectigo_chain.cli.main import APPLY_FAILED, CHAIN_PROBLEMS, OK, UNREACHABLE, USAGE
    from sectigo_chain.demo import run_demo
    from sectigo_chain.errors import ApplyError, PlanRefused, SectigoChainError, TLSFetchError

    try:
        record = run_demo(
            args.scenario,
            journal_dir=Path(args.journal_dir) if args.journal_dir else None,
            strategy=args.strategy,
            over=args.over,
        )
    except ApplyError as exc:
        error_line("demo", str(exc))
        return APPLY_FAILED
    except TLSFetchError as exc:
        error_line("demo", f"the simulated host's loopback listener did not answer: {exc}")
        return UNREACHABLE
    except PlanRefused as exc:
        guidance = "".join(f"\n  - {g}" for g in exc.guidance)
        error_line("demo", f"{exc}{guidance}")
        return USAGE
    except (SectigoChainError, OSError) as exc:
        error_line("demo", str(exc))
        return USAGE
    except ImportError as exc:
        error_line(
            "demo",
            f"--over winrm needs the testing extra (pip install 'sectigo-chain[testing]'): {exc}",
        )
        return USAGE
    if args.json:
        emit_json(record.to_json())
    else:
        sys.stdout.write(record.story() + "\n")
    return OK if record.ok else CHAIN_PROBLEMS


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the CLI."""
    p = subparsers.add_parser(
        "demo",
        parents=parents,
        help="check, plan, apply and verify the fix on a simulated host (no Windows needed)",
        description="The whole job on the embedded simulated IIS host: check the served chain "
        "over real TLS on 127.0.0.1 (legacy clients fail), plan the fix, apply it, check "
        "again (legacy, modern and both pass) and verify. No Windows, no network.",
    )
    p.add_argument(
        "--scenario",
        default="broken-r46",
        help="simulated starting state: broken-r46 (default), broken-e46, misplaced, "
        "shared-ip, user-key, stale-cache, fixed, ... (see docs/simulated-host.md)",
    )
    p.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where apply writes its journal (default: a new temporary directory)",
    )
    p.add_argument(
        "--strategy",
        choices=("remove", "remove_and_disallow", "disable_auto_update", "keep"),
        default="remove",
        help="what to do about the self-signed root (default: %(default)s; the 'drift' "
        "scenario needs disable_auto_update or remove_and_disallow)",
    )
    p.add_argument(
        "--over",
        choices=("sim", "winrm"),
        default="sim",
        help="sim: call the simulated host directly (default); winrm: put it behind a loopback "
        "WinRM endpoint so every script goes through pypsrp, HTTPS, WS-Management and PSRP "
        "(needs the testing extra)",
    )
    p.set_defaults(func=run)
