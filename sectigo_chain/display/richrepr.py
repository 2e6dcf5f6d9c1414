"""Notebook rendering for report models, in one place.

Jupyter calls ``_repr_html_`` / ``_repr_markdown_``; both delegate to
:mod:`sectigo_chain.display.render` (imported lazily: only notebooks need it), the one
renderer of every report. ``str(report)`` is the terminal text of the same renderer (what the
CLI prints), never pydantic's field dump; a class may define its own ``__str__``.
"""

from __future__ import annotations

__all__ = ["RichRepr"]


class RichRepr:
    """Mixin: render through :func:`display.to_html` / :func:`display.to_markdown`."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        from sectigo_chain.display.render import to_html

        return to_html(self)

    def __str__(self) -> str:
        from sectigo_chain.display.render import to_text

        return to_text(self)

    def _repr_markdown_(self) -> str:
        from sectigo_chain.display.render import to_markdown

        return to_markdown(self)
