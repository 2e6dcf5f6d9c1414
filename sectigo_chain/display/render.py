"""One renderer for every report: terminal text, Markdown and HTML (Jupyter).

``to_text(obj)``, ``to_markdown(obj)`` and ``to_html(obj)`` dispatch on the report type
(``Plan``, ``ApplyResult``, ``ChainReport``, ``CheckFailure``, ``VerifyReport``,
``FleetReport``, ``FileReport``); anything else renders as its escaped ``repr``. The report
classes' ``_repr_html_``/``_repr_markdown_`` delegate here, so Jupyter shows the rich form.

Reusable pieces: :func:`chain_html` (the chain picture, see :mod:`sectigo_chain.display.html`),
:func:`table_text` for terminals, :func:`table_markdown`, and :func:`progress_bar` for
``run_fleet``. Text is plain (no ANSI codes) unless ``color=True``; :func:`use_color` says
whether a stream wants colour (a TTY, ``NO_COLOR`` unset, ``TERM`` not ``dumb``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from sectigo_chain.display import html as _h
from sectigo_chain.display import more as _more
from sectigo_chain.display import text as _t
from sectigo_chain.display.html import chain_html
from sectigo_chain.display.markdown import md_escape, table_markdown
from sectigo_chain.display.progress import ProgressCallback, progress_bar
from sectigo_chain.display.text import table_text
from sectigo_chain.display.views import kind_of

__all__ = [
    "ProgressCallback",
    "chain_html",
    "md_escape",
    "progress_bar",
    "table_markdown",
    "table_text",
    "to_html",
    "to_markdown",
    "to_text",
    "use_color",
]

_HTML: dict[str, Callable[[Any], str]] = {
    "plan": _h.plan_html,
    "apply": _h.apply_result_html,
    "chain": _h.chain_report_html,
    "check_failure": _h.check_failure_html,
    "file": _h.file_report_html,
    "verify": _more.verify_html,
    "fleet": _more.fleet_html,
}
_TEXT: dict[str, Callable[[Any, bool], str]] = {
    "plan": _t.plan_text,
    "apply": _t.apply_result_text,
    "chain": _t.chain_report_text,
    "check_failure": _t.check_failure_text,
    "file": _t.file_report_text,
    "verify": _more.verify_text,
    "fleet": _more.fleet_text,
}


def to_html(obj: Any) -> str:
    """An HTML fragment for ``obj`` (inline CSS, no scripts, every value escaped)."""
    kind = kind_of(obj)
    renderer = _HTML.get(kind or "")
    return renderer(obj) if renderer is not None else _h.unknown_html(obj)


def to_text(obj: Any, *, color: bool = False) -> str:
    """Terminal text for ``obj``; ANSI colours only with ``color=True``."""
    kind = kind_of(obj)
    renderer = _TEXT.get(kind or "")
    return renderer(obj, color) if renderer is not None else repr(obj)


def to_markdown(obj: Any) -> str:
    """Markdown for ``obj``: headings, lists and well-formed tables; values escaped."""
    kind = kind_of(obj)
    return _more.markdown_for(obj, kind)


def use_color(stream: IO[str] | None) -> bool:
    """True when ``stream`` is a terminal that wants colour (``NO_COLOR`` and
    ``TERM=dumb`` turn it off)."""
    if stream is None or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
