"""The ``sectigo-chain`` command line.

Each subcommand lives in ``sectigo_chain/commands/<name>.py`` and exposes
``register(subparsers, parents)``; the module must import only the standard library at import
time (heavy imports go inside its handler) so that ``sectigo-chain --help`` stays fast.
A handler takes the parsed ``argparse.Namespace`` and returns an exit code.

Exit codes (documented in docs/cli.md):

* 0 ``OK``: success (for ``check``: pass, warnings allowed)
* 1 ``CHAIN_PROBLEMS``: the chain is wrong (check/verify failed, or ``plan --detailed-exitcode``
  found work to do)
* 2 ``USAGE``: bad usage or input (unreadable file, bad option, refused plan)
* 3 ``UNREACHABLE``: could not connect, handshake or run a script on the target
* 4 ``APPLY_FAILED``: apply failed and was rolled back (or rollback was incomplete)
* 130 interrupted
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["APPLY_FAILED", "CHAIN_PROBLEMS", "OK", "UNREACHABLE", "USAGE", "main"]

OK = 0
CHAIN_PROBLEMS = 1
USAGE = 2
UNREACHABLE = 3
APPLY_FAILED = 4

# Subcommand modules under sectigo_chain.commands, in help order. A module that does not exist
# yet is skipped, so the CLI grows one module at a time.
COMMANDS = (
    "inspect",
    "check",
    "plan",
    "apply",
    "verify",
    "rollback",
    "render",
    "fleet",
    "demo",
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line, never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(USAGE)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    common.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every available subcommand registered."""
    parser = _Parser(
        prog="sectigo-chain",
        description="Inspect, fix and verify Sectigo R46/E46 certificate chains on Windows/IIS.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    common = _common()
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"sectigo_chain.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sectigo_chain.commands.{name}":
                continue
            raise
        module.register(sub, [common])
    return parser


def configure_logging(verbose: int, quiet: bool) -> None:
    """Route library logging to stderr at the level the flags ask for."""
    if quiet:
        level = logging.ERROR
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.WARNING
    from sectigo_chain.logs import SecretMaskFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMaskFilter())
    root = logging.getLogger("sectigo_chain")
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pypsrp's DEBUG log dumps parameters, passwords included (DESIGN.md 1.11): never below INFO.
    logging.getLogger("pypsrp").setLevel(max(level, logging.INFO))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sectigo-chain``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    from sectigo_chain.errors import SectigoChainError

    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        sys.stderr.write("sectigo-chain: interrupted\n")
        return 130
    except SectigoChainError as exc:
        # A typed error that escaped a handler: one line, no traceback.
        sys.stderr.write(f"sectigo-chain {args.command}: error: {exc}\n")
        return USAGE
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
