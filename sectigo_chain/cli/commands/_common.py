"""Helpers shared by the subcommands (standard library only, and little of it: imported by
every command module)."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # typing, json and pathlib load when used, not at --help time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_SECRET_FILE_BYTES", "add_secret_options", "emit_json", "error_line", "read_secret"]

#: A password file larger than this is refused (a password is one short line).
MAX_SECRET_FILE_BYTES = 64 * 1024


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
        text = _read_secret_file(file, what)
        value = text.splitlines()[0] if text else ""
    if value:
        register_secret(value)
    return value


def _read_secret_file(file: str, what: str) -> str:
    """The text of a regular, small, UTF-8 file (a FIFO or a device would block or never end)."""
    import stat

    from sectigo_chain.errors import InputError
    from sectigo_chain.logs import escape_controls

    shown = escape_controls(file)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"cannot read the {what} file {shown}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"the {what} file {shown} is not a regular file; pass a file")
        if st.st_size > MAX_SECRET_FILE_BYTES:
            raise InputError(
                f"the {what} file {shown} is {st.st_size} bytes; a password file holds one "
                f"line (at most {MAX_SECRET_FILE_BYTES} bytes)"
            )
        data = fh.read(MAX_SECRET_FILE_BYTES + 1)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise InputError(f"the {what} file {shown} grew while read; pass a plain file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # Notepad's UTF-8 byte-order mark
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"the {what} file {shown} is not UTF-8 text; save it as UTF-8") from None


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout (as ``json.dumps(indent=2, default=str)`` writes it)."""
    from sectigo_chain.display.jsondoc import dumps_indented

    sys.stdout.write(dumps_indented(document) + "\n")


def error_line(command: str, message: str) -> None:
    """One line on stderr, never a traceback (control characters, newlines included, are
    shown escaped: a file name or a remote message cannot forge lines)."""
    from sectigo_chain.logs import escape_controls

    sys.stderr.write(f"sectigo-chain {command}: error: {escape_controls(message)}\n")
