"""display.progress_bar: a one-line bar on a terminal, an updating HTML bar in Jupyter, else
silent. (The real Jupyter path runs in tests/integration/test_notebook.py; here IPython is
replaced by a recorder, the process boundary.)"""

from __future__ import annotations

import io
import re
import sys
import types
from typing import Any

import pytest

from sectigo_chain.display import render as display
from sectigo_chain.display.progress import in_jupyter


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_in_a_terminal_redraws_one_line() -> None:
    stream = _Tty()
    bar = display.progress_bar(2, file=stream, clock=lambda: 0.0)  # no time passes: no rate
    bar(1, 2, "web01", "applied")
    bar(2, 2, "web02", "failed")
    out = stream.getvalue()
    assert out.startswith("\r[" + "#" * 15 + "-" * 15 + "] 1/2 web01 applied")
    # the second draw pads with a space to erase the longer first line, then ends the line
    assert out.split("\r")[2] == "[" + "#" * 30 + "] 2/2 web02 failed \n"
    assert out.count("\n") == 1


def test_progress_bar_shows_rate_and_time_left() -> None:
    stream = _Tty()
    now = [100.0]
    bar = display.progress_bar(10, file=stream, clock=lambda: now[0])
    now[0] = 104.0  # 2 done in 4 s: 0.5/s, 8 left -> 16 s
    bar(2, 10, "web02", "applied")
    now[0] = 120.0
    bar(10, 10, "web10", "applied")
    first, last = stream.getvalue().split("\r")[1:]
    assert " 2/10 0.5/s ETA 0:16 web02 applied" in first
    assert " 10/10 0.5/s in 0:20 web10 applied" in last


def test_progress_bar_is_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = display.progress_bar(3, file=stream)
    bar(1, 3, "web01", "applied")
    assert stream.getvalue() == ""


def test_progress_bar_in_jupyter_updates_one_display(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(("update", obj))

    def fake_display(obj: Any, display_id: bool = False) -> Handle:
        shown.append(("display", obj, display_id))
        return Handle()

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # type: ignore[attr-defined]
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = fake_display  # type: ignore[attr-defined]
    ipython_display.HTML = lambda text: ("HTML", text)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)

    bar = display.progress_bar(2)
    bar(1, 2, "<b>web01</b>", "applied")
    assert shown[0][0] == "display"
    assert shown[0][2] is True
    assert shown[1][0] == "update"
    assert "1/2 &lt;b&gt;web01&lt;/b&gt; applied" in shown[1][1][1]
    assert len(shown) == 2
    bar(2, 2, "web02", "failed")
    assert [entry[0] for entry in shown] == ["display", "update", "update"]  # one display
    assert "2/2 web02 failed" in shown[2][1][1]
    ipython.get_ipython = lambda: None  # type: ignore[attr-defined]  # plain IPython, no kernel
    terminal = _Tty()
    monkeypatch.setattr(sys, "stderr", terminal)
    display.progress_bar(2)(1, 2, "h", "s")  # no file given: Jupyter would be preferred
    assert len(shown) == 3  # no kernel: nothing goes to the notebook display...
    assert terminal.getvalue().startswith("\r[")  # ...the terminal bar draws instead
    assert re.search(r"\] 1/2 .*ETA \S+ h s$", terminal.getvalue())  # rate and ETA on a TTY


def test_in_jupyter_needs_a_kernel_and_never_imports_ipython(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert in_jupyter() is False
    assert "IPython" not in sys.modules  # looking did not import it
    shell = types.ModuleType("IPython")
    shell.get_ipython = lambda: types.SimpleNamespace()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", shell)
    assert in_jupyter() is False  # a terminal IPython: no kernel
