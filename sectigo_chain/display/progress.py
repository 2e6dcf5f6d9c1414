"""A progress callback for long runs (``run_fleet``): a terminal bar, a Jupyter bar, or nothing.

:func:`progress_bar` returns ``callback(done, total, host, status)``. In a Jupyter kernel it
shows an HTML bar updated in place (``display(..., display_id=True).update(...)``); when the
stream (default ``sys.stderr``) is a terminal it redraws one line with ``\\r`` (the bar,
``done/total``, the rate per second and the time left once an item is done) and ends it with a
newline when ``done == total``; otherwise it stays silent (logs and CI output stay
clean). IPython is only looked at when it is already imported: the library never imports it.
The callback is thread-safe (fleet workers may call it concurrently).
"""

from __future__ import annotations

import html
import importlib
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["ProgressCallback", "in_jupyter", "progress_bar"]

ProgressCallback = Callable[[int, int, str, str], None]
_WIDTH = 30


def in_jupyter() -> bool:
    """True inside a running IPython kernel (Jupyter), without importing IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _clock_text(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _pace(done: int, total: int, elapsed: float | None) -> str:
    """``2.5/s ETA 0:40`` once something is done and time has passed, else ``""``."""
    if elapsed is None or done <= 0 or elapsed <= 0:
        return ""
    rate = done / elapsed
    shown = f"{rate:.1f}/s" if rate < 100 else f"{rate:.0f}/s"
    if done >= total:
        return f"{shown} in {_clock_text(elapsed)}"
    return f"{shown} ETA {_clock_text((total - done) / rate)}"


def _line(done: int, total: int, host: str, status: str, elapsed: float | None = None) -> str:
    total = max(total, 1)
    filled = min(_WIDTH, _WIDTH * done // total)
    bar = "#" * filled + "-" * (_WIDTH - filled)
    pace = _pace(done, total, elapsed)
    pace = f" {pace}" if pace else ""
    return f"[{bar}] {done}/{total}{pace} {_clean(host)[:40]} {_clean(status)[:20]}".rstrip()


def _html(done: int, total: int, host: str, status: str) -> str:
    pct = 100 * min(done, max(total, 1)) // max(total, 1)
    return (
        '<div class="sc-progress" style="font-family:system-ui,sans-serif;font-size:13px;">'
        '<div style="display:inline-block;width:240px;height:10px;border:1px solid #d0d7de;'
        'border-radius:5px;vertical-align:middle;background:#f6f8fa;">'
        f'<div style="width:{pct}%;height:100%;background:#1a7f37;border-radius:5px;"></div>'
        f"</div> {done}/{total} {html.escape(host)} {html.escape(status)}</div>"
    )


class _Terminal:
    def __init__(self, stream: IO[str], clock: Callable[[], float]) -> None:
        self.stream = stream
        self.width = 0
        self.lock = threading.Lock()
        self.clock = clock
        self.started = clock()

    def __call__(self, done: int, total: int, host: str, status: str) -> None:
        line = _line(done, total, host, status, self.clock() - self.started)
        with self.lock:
            pad = " " * max(0, self.width - len(line))
            self.width = len(line)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{line}{pad}{end}")
            self.stream.flush()


class _Notebook:
    def __init__(self, total: int) -> None:
        shown: Any = importlib.import_module("IPython.display")  # untyped: keep it Any
        self.html: Any = shown.HTML
        self.lock = threading.Lock()
        self.handle: Any = shown.display(
            self.html(_html(0, total, "", "starting")), display_id=True
        )

    def __call__(self, done: int, total: int, host: str, status: str) -> None:
        with self.lock:
            if self.handle is not None:
                self.handle.update(self.html(_html(done, total, host, status)))


def _silent(done: int, total: int, host: str, status: str) -> None:
    return None


def progress_bar(
    total: int, *, file: IO[str] | None = None, clock: Callable[[], float] = time.monotonic
) -> ProgressCallback:
    """A progress callback for ``total`` items (see the module docstring).

    ``file`` forces terminal mode on that stream when it is a TTY (silent when it is not);
    without it, Jupyter is preferred, then ``sys.stderr`` when it is a TTY. ``clock`` (seconds)
    times the rate and the time left.
    """
    if file is None and in_jupyter():
        return _Notebook(total)
    stream = file if file is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if stream is not None and callable(isatty) and isatty():
        return _Terminal(stream, clock)
    return _silent
