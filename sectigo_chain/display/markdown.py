"""Markdown for reports (Jupyter's ``_repr_markdown_``, issue comments, runbooks).

Every value is escaped twice over: HTML characters become entities (Jupyter renders raw HTML
inside Markdown) and Markdown syntax characters are backslash-escaped, so a hostile site name
or subject stays text. Tables always have as many cells per row as headers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sectigo_chain.display.views import (
    SERVED_HEADERS,
    chain_rows,
    field,
    served_rows,
    short_date,
    verdict_of,
)

__all__ = ["chain_markdown", "md_escape", "table_markdown"]

_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
_MARK = {"pass": "✅", "fail": "❌", "warn": "⚠️", "neutral": "•"}


def md_escape(value: Any) -> str:
    """``value`` as inert Markdown text on one line."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return " ".join(text.splitlines())


def table_markdown(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table; every row has exactly ``len(headers)`` cells."""
    width = len(headers)
    lines = [
        "| " + " | ".join(md_escape(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    for row in rows:
        cells = [md_escape(c) for c in list(row)[:width]]
        cells += [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mark(verdict: str) -> str:
    """An emoji for a verdict word."""
    return _MARK[verdict_of(verdict)]


def chain_markdown(certs: Any, profiles: Any) -> str:
    """The chain per profile as a bullet list (``- legacy ❌ FAIL: leaf → R36 → ✗ why``)."""
    lines = []
    for row in chain_rows(certs, profiles):
        boxes = [f"{md_escape(b.common_name)} _({md_escape(b.role)})_" for b in row.boxes]
        if row.end is not None:
            boxes.append(f"✗ {md_escape(row.end)}")
        label = f"**{md_escape(row.label)}** {mark(row.verdict)} " if row.label else ""
        lines.append(f"- {label}{' → '.join(boxes)}")
    return "\n".join(lines)


def _chain(report: Any) -> str:
    served = list(field(report, "served_chain", ()) or ())
    profiles = field(report, "profiles", {}) or {}
    verdict = str(field(report, "verdict", ""))
    parts = [
        f"### {md_escape(field(report, 'target', ''))}: {mark(verdict)} {verdict.upper()}",
        "**Chain per client profile**",
        chain_markdown(served, profiles),
    ]
    findings = list(field(report, "findings", ()) or ())
    if findings:
        found = [(field(f, "severity"), field(f, "code"), field(f, "detail")) for f in findings]
        parts += ["**Findings**", table_markdown(found, ("severity", "code", "detail"))]
    else:
        parts.append("**Findings:** none")
    parts += [
        "**Served chain (wire order)**",
        table_markdown(served_rows(served), SERVED_HEADERS),
    ]
    parts += [f"- note: {md_escape(n)}" for n in field(report, "notes", ()) or ()]
    return "\n\n".join(parts)


def _failure(failure: Any) -> str:
    return (
        f"### {md_escape(field(failure, 'target', ''))}: {mark('fail')} ERROR\n\n"
        f"{md_escape(field(failure, 'error', ''))}: {md_escape(field(failure, 'message', ''))}"
    )


def _plan(plan: Any, title: str | None = None) -> str:
    target = field(plan, "target", "") or ""
    parts = [f"### {title or md_escape(f'Plan for {target}'.strip())}"]
    parts += [f"- ⚠️ **WARNING:** {md_escape(w)}" for w in field(plan, "warnings", ()) or ()]
    actions = list(field(plan, "actions", ()) or ())
    if actions:
        rows = [
            (i + 1, field(a, "kind"), field(a, "reason"), field(a, "rollback"))
            for i, a in enumerate(actions)
        ]
        parts += [
            f"**{len(actions)} action(s)**",
            table_markdown(rows, ("#", "action", "why", "rollback")),
        ]
    else:
        parts.append("Nothing to do.")
    noops = [f"- {md_escape(r)}" for r in field(plan, "noop_reasons", ()) or ()]
    if noops:
        parts += ["**Already right**", "\n".join(noops)]
    sites = list(field(plan, "affected_sites", ()) or ())
    if sites:
        parts.append("Sites whose served chain changes: " + md_escape(", ".join(sites)))
    return "\n\n".join(parts)


def _apply(result: Any) -> str:
    steps = list(field(result, "steps", ()) or ())
    parts = [f"### Apply on {md_escape(field(result, 'target', ''))}"]
    if steps:
        rows = [
            (
                field(s, "index", 0) + 1,
                field(s, "kind"),
                field(s, "template"),
                "changed" if field(s, "changed") else "unchanged",
            )
            for s in steps
        ]
        parts.append(table_markdown(rows, ("#", "action", "template", "result")))
    else:
        parts.append("No action was run.")
    if field(result, "journal"):
        parts.append(f"Journal: `{md_escape(field(result, 'journal'))}`")
    if field(result, "after_plan_empty", True):
        parts.append(f"{mark('pass')} The host now matches the desired state.")
    else:
        parts.append(f"{mark('fail')} The host still differs from the desired state.")
        after = field(result, "after_plan")
        if after is not None:
            parts.append(_plan(after, title="Re-plan after apply"))
    return "\n\n".join(parts)


def _file(report: Any) -> str:
    rows = []
    for c in field(report, "certificates", ()) or ():
        info, cat, need = field(c, "info"), field(c, "catalog"), field(c, "needs_cross_sign")
        rows.append(
            (
                field(info, "subject_cn"),
                field(cat, "role") if cat else ("CA" if field(info, "is_ca") else "leaf"),
                field(cat, "store") if cat else "",
                short_date(field(info, "not_after")),
                field(info, "thumbprint"),
                field(need, "name") if need else "",
            )
        )
    return "\n\n".join(
        [
            f"### {md_escape(field(report, 'path', ''))}",
            f"{md_escape(field(report, 'format', ''))}, {len(rows)} certificate(s)",
            table_markdown(
                rows, ("certificate", "role", "belongs in", "expires", "SHA-1", "needs")
            ),
        ]
    )
