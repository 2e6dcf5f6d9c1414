"""The ``sectigo-chain`` command line.

Each subcommand lives in ``sectigo_chain/commands/<name>.py`` and exposes
``register(subparsers, parents)``; the module must import only the standard library at import
time (heavy imports go inside its handler). A handler takes the parsed ``argparse.Namespace``
and returns an exit code.

Startup: ``sectigo-chain --help`` (and any call that names no subcommand) lists the commands
from :data:`COMMAND_HELP` without importing their modules; a call that names one imports only
that module (the others are listed by name). :func:`build_parser` registers them all.

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
import sys

TYPE_CHECKING = False  # typing, collections.abc and logging are not imported at --help time
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

__all__ = ["APPLY_FAILED", "CHAIN_PROBLEMS", "OK", "UNREACHABLE", "USAGE", "console", "main"]

OK = 0
CHAIN_PROBLEMS = 1
USAGE = 2
UNREACHABLE = 3
APPLY_FAILED = 4

# Subcommand modules under sectigo_chain.cli.commands, in help order, with the one-line help each
# registers (the same text: the top-level --help shows this table without importing them).
COMMAND_HELP = {
    "inspect": "identify certificates (PEM, DER, .cer, .p7b, .pfx) and the store each belongs in",
    "check": "fetch the chain a TLS server serves and judge it per client profile",
    "plan": "show what the R46/E46 fix would change on a target",
    "apply": "apply the R46/E46 fix (backup, journal, automatic rollback)",
    "verify": "verify the fix: desired state, the chain on the host, the chain served over TLS",
    "rollback": "undo an apply from its journal",
    "review": "list the fixes whose revert date is due",
    "render": "print a standalone PowerShell script for a template or a plan",
    "fleet": "plan, apply or check the fix on many hosts from an inventory",
    "demo": "check, plan, apply and verify the fix on a simulated host (no Windows needed)",
}
COMMANDS = tuple(COMMAND_HELP)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized as ``shutil.get_terminal_size`` would size it (``COLUMNS``,
    else the terminal, else 80) without importing ``shutil`` (5 ms of a 60 ms ``--help``)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, _HelpFormatter):
    """argparse's ``RawDescriptionHelpFormatter`` sized as :class:`_HelpFormatter` (its own
    sizing imports ``shutil``, with ``bz2`` and ``lzma``: a few ms of ``check``'s start-up)."""


def _columns() -> int:
    import os

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line, never a traceback."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        # One line (docs/cli.md), with where to look; the usage block is what --help shows.
        text = " ".join(message.split())
        sys.stderr.write(f"{self.prog}: error: {text}; see '{self.prog} --help'\n")
        raise SystemExit(USAGE)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    common.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    common.add_argument(
        "--no-color",
        action="store_true",
        help="no colour even on a terminal (also: the NO_COLOR environment variable)",
    )
    return common


def build_parser(only: str | None = None, *, others: bool = True) -> argparse.ArgumentParser:
    """The parser with every available subcommand registered.

    With ``only``, that subcommand is registered from its module and the others are listed by
    name and help line only (enough for the top-level help and for parsing ``only``'s
    arguments); ``only=""`` lists them all that way (the top-level ``--help``).
    ``others=False`` leaves the others out (when ``only`` is the first argument, nothing else
    can be parsed or shown: 10 sub-parsers less, about 1.5 ms of ``check``'s start-up).
    """
    parser = _Parser(
        prog="sectigo-chain",
        description="Inspect, fix and verify Sectigo R46/E46 certificate chains on Windows/IIS.",
    )
    from sectigo_chain import __version__

    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    common: argparse.ArgumentParser | None = None
    for name in COMMANDS:
        if only is not None and name != only:
            if others:
                sub.add_parser(name, help=COMMAND_HELP[name], add_help=False)
            continue
        if common is None:
            common = _common()
        try:
            module = importlib.import_module(f"sectigo_chain.cli.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sectigo_chain.cli.commands.{name}":
                continue
            raise
        module.register(sub, [common])
    return parser


def _named_command(argv: Sequence[str]) -> str:
    """The subcommand ``argv`` names ("" for none or an unknown one). The top-level parser has
    no option that takes a value, so the first argument that is not an option names it."""
    first = next((a for a in argv if not a.startswith("-")), "")
    return first if first in COMMAND_HELP else ""


QUIET_LOGGING_COMMANDS = frozenset({"check"})
"""Commands whose code logs nothing at the default level (WARNING) in a normal run: logging is
configured, and imported (about 5 ms), only for ``-v`` or ``-q``. A test keeps ``check`` free
of it. The one warning ``check`` can log (its helper process ended early: ``tls/_helper.py``)
then reaches stderr through logging's last-resort handler, as the bare message."""


def configure_logging(verbose: int, quiet: bool) -> None:
    """Route library logging to stderr at the level the flags ask for."""
    import logging

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
    arguments = sys.argv[1:] if argv is None else list(argv)
    named = _named_command(arguments)
    # The command first: every argument after it is the command's, so the others are not needed.
    parser = build_parser(only=named, others=not named or arguments[:1] != [named])
    args = parser.parse_args(arguments)
    verbose, quiet = getattr(args, "verbose", 0), getattr(args, "quiet", False)
    if named not in QUIET_LOGGING_COMMANDS or verbose or quiet:
        configure_logging(verbose, quiet)
    from sectigo_chain.errors import SectigoChainError

    saved = sys.stdout, sys.stderr
    _colorize(args)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        sys.stderr.write("sectigo-chain: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, like other command-line tools.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except SectigoChainError as exc:
        # A typed error that escaped a handler: one line, no traceback, controls escaped.
        from sectigo_chain.logs import escape_controls

        sys.stderr.write(f"sectigo-chain {args.command}: error: {escape_controls(str(exc))}\n")
        return USAGE
    finally:
        sys.stdout, sys.stderr = saved
    return code


FAST_EXIT_COMMANDS = frozenset({"check"})
"""Commands that leave with ``os._exit`` from :func:`console` (they only read and print)."""


def console() -> NoReturn:
    """The ``sectigo-chain`` console script and ``python -m sectigo_chain``: :func:`main`, then
    exit. Two things a caller of :func:`main` inside its own process does not get (as mypy does
    for its command line): the cyclic garbage collector runs less often (a short run allocates
    much and frees little: 15-20 ms of a `check` of 200 endpoints), and a read-only command
    (:data:`FAST_EXIT_COMMANDS`) leaves with ``os._exit`` once its output and logging are
    flushed, without the interpreter's teardown (freeing every module and object, about 16 ms
    after a `check`). A command that writes state exits normally."""
    import gc

    gc.set_threshold(200_000, 20, 20)
    code = main()
    if _named_command(sys.argv[1:]) in FAST_EXIT_COMMANDS:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed or broken stream: the normal exit reports it
            raise SystemExit(code) from None
        if "logging" in sys.modules:
            import logging

            logging.shutdown()
        import os

        os._exit(code)
    raise SystemExit(code)


def _colorize(args: argparse.Namespace) -> None:
    """Paint verdict words on the streams that are terminals (see :mod:`.style`)."""
    from sectigo_chain.cli.style import ColorWriter, color_wanted

    no_color = getattr(args, "no_color", False)
    as_json = getattr(args, "json", False)
    if color_wanted(sys.stdout, no_color=no_color, json=as_json):
        sys.stdout = ColorWriter(sys.stdout)
    if color_wanted(sys.stderr, no_color=no_color):
        sys.stderr = ColorWriter(sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    console()
