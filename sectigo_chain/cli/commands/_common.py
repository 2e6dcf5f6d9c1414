"""Helpers shared by the subcommands (standard library only, and little of it: imported by
every command module)."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # typing, json and pathlib load when used, not at --help time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_secret_options", "emit_json", "error_line", "read_secret"]


def add_secret_options(
    parser: argparse.ArgumentParser, what: str, prefix: str = "password"
) -> None:
    """Add ``--<prefix>-env VAR`` and ``--<prefix>-file FILE`` (never the value itself)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        f"--{prefix}-env",
        metavar="VAR",
        help=f"read the {what} from environment variable VAR",
    )
    group.add_argument(
        f"--{prefix}-file",
        metavar="FILE",
        help=f"read the {what} from the first line of FILE",
    )


def read_secret(env: str | None, file: str | None, what: str) -> str | None:
    """The secret from an environment variable or a file; ``InputError`` if unusable.

    The value is registered with the log filter, so it is masked in every log line.
    """
    from sectigo_chain.errors import InputError
    from sectigo_chain.logs import register_secret

    value: str | None = None
    if env:
        value = os.environ.get(env)
        if value is None:
            raise InputError(f"environment variable {env} is not set (it should hold the {what})")
    elif file:
        try:
            with open(file, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read the {what} file {file}: {exc.strerror}") from None
        value = text.splitlines()[0] if text else ""
    if value:
        register_secret(value)
    return value


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    import json

    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def error_line(command: str, message: str) -> None:
    """One line on stderr, never a traceback."""
    sys.stderr.write(f"sectigo-chain {command}: error: {message}\n")
