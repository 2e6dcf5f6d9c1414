"""Colour on a terminal, nothing anywhere else (standard library only, cheap to import).

:func:`color_wanted` says whether a stream gets colour: only when it is a TTY, ``NO_COLOR``
(https://no-color.org) is unset or empty, ``TERM`` is not ``dumb``, the command line did not
say ``--no-color`` and no JSON document is being printed. :class:`ColorWriter` wraps a text
stream and paints the words the reports use for verdicts and outcomes (``PASS``, ``FAIL``,
``error:``, ...) with ANSI SGR codes; everything else passes through unchanged, so what a
pipe, a file, ``--json`` or a notebook gets is byte for byte what the renderers wrote.
"""

from __future__ import annotations

import functools
import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

__all__ = ["ColorWriter", "color_wanted", "paint"]

_GREEN, _RED, _YELLOW, _DIM, _BOLD, _RESET = (
    "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[1m", "\x1b[0m",
)  # fmt: skip
_WORDS = {
    "PASS": _GREEN, "OK": _GREEN, "APPLIED": _GREEN, "UNCHANGED": _GREEN, "CHECKED": _GREEN,
    "WARN": _YELLOW, "SKIPPED": _YELLOW, "STOPPED": _YELLOW, "warning:": _YELLOW,
    "FAIL": _RED, "FAILED": _RED, "ERROR": _RED, "ROLLED_BACK": _RED, "UNREACHABLE": _RED,
    "REFUSED": _RED, "error:": _RED,
}  # fmt: skip


@functools.cache
def _pattern() -> re.Pattern[str]:
    """The verdict words (compiled on first use: ``--json`` and pipes paint nothing)."""
    words = "|".join(re.escape(w) for w in sorted(_WORDS, key=len, reverse=True))
    return re.compile(r"(?<![\w-])(" + words + r")(?![\w-])")


def color_wanted(stream: object, *, no_color: bool = False, json: bool = False) -> bool:
    """True when ``stream`` is a terminal and nothing asks for plain text."""
    if no_color or json:
        return False
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(callable(isatty) and isatty())
    except (OSError, ValueError):
        return False


def paint(text: str) -> str:
    """``text`` with the verdict and outcome words in colour."""
    return _pattern().sub(lambda m: f"{_BOLD}{_WORDS[m.group(1)]}{m.group(1)}{_RESET}", text)


class ColorWriter:
    """A text stream that paints what is written to it, then passes it on."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(paint(text))
        return len(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
