"""The HTML form of a :class:`~sectigo_chain.fleet.report.FleetReport`.

A standalone page: inline CSS, no scripts, no external assets, one table row per host. Every
value goes through :func:`html.escape` (host names, reasons, errors and certificate names are
untrusted text).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sectigo_chain.fleet.report import ChainCheck, FleetReport, HostRow

__all__ = ["report_page", "report_table"]

_COLORS = {
    "good": ("#1a7f37", "#dafbe1"),
    "bad": ("#cf222e", "#ffebe9"),
    "warn": ("#9a6700", "#fff8c5"),
    "neutral": ("#57606a", "#f6f8fa"),
}
_TONE = {
    "pass": "good", "applied": "good", "unchanged": "good", "checked": "good",
    "planned": "neutral", "warn": "warn", "skipped": "warn",
    "fail": "bad", "error": "bad", "failed": "bad", "rolled_back": "bad",
}  # fmt: skip
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;margin:16px}
table.fleet{border-collapse:collapse;width:100%}
table.fleet th,table.fleet td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;
vertical-align:top}
table.fleet th{background:#f6f8fa}
.badge{display:inline-block;padding:0 7px;border-radius:9px;border:1px solid;font-weight:600}
.small{color:#57606a;font-size:12px}
ul.plain{margin:0;padding-left:16px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _badge(word: str | None) -> str:
    if not word:
        return '<span class="small">-</span>'
    fg, bg = _COLORS[_TONE.get(word, "neutral")]
    return (
        f'<span class="badge" style="color:{fg};background:{bg};border-color:{fg}">'
        f"{_e(word.upper())}</span>"
    )


def _chain(check: ChainCheck | None) -> str:
    if check is None:
        return '<span class="small">-</span>'
    parts = [_badge(check.verdict)]
    if check.error:
        parts.append(f"<div>{_e(check.error)}</div>")
    if check.chain:
        items = "".join(
            f'<li>{_e(c.common_name)} <span class="small">({_e(c.thumbprint)}, '
            f"expires {_e(c.not_after)})</span></li>"
            for c in check.chain
        )
        parts.append(f'<ol class="plain">{items}</ol>')
    if check.findings:
        parts.append(f'<div class="small">{_e(", ".join(check.findings))}</div>')
    bad = [name for name, ok in check.profiles.items() if not ok]
    if bad:
        parts.append(f'<div class="small">fails for: {_e(", ".join(bad))}</div>')
    parts.append(f'<div class="small">{_e(check.source)} {_e(check.endpoint)}</div>')
    return "".join(parts)


def _actions(row: HostRow) -> str:
    if not row.actions:
        return '<span class="small">none</span>'
    items = "".join(f"<li><b>{_e(a.kind)}</b>: {_e(a.reason)}</li>" for a in row.actions)
    warnings = "".join(f'<div class="small">warning: {_e(w)}</div>' for w in row.warnings)
    return f'<ol class="plain">{items}</ol>{warnings}'


def _timings(row: HostRow) -> str:
    if not row.timings:
        return '<span class="small">-</span>'
    total = row.timings.get("total")
    rest = ", ".join(f"{k} {v:.2f}s" for k, v in row.timings.items() if k != "total")
    head = f"{total:.2f}s" if total is not None else ""
    return f'{_e(head)}<div class="small">{_e(rest)}</div>'


def _evidence(row: HostRow) -> str:
    parts = []
    if row.error is not None:
        kind = "unreachable: " if row.error.unreachable else ""
        parts.append(f"<div><b>{_e(kind + row.error.type)}</b>: {_e(row.error.message)}</div>")
    if row.note:
        parts.append(f"<div>{_e(row.note)}</div>")
    if row.rolled_back or row.rollback_complete is not None:
        state = "complete" if row.rollback_complete else "INCOMPLETE"
        undone = ", ".join(row.rolled_back) or "nothing"
        parts.append(f"<div>rollback {_e(state)}: {_e(undone)}</div>")
    if row.journal:
        parts.append(f'<div class="small">journal: {_e(row.journal)}</div>')
    parts += [f'<div class="small">{_e(n)}</div>' for n in row.verify_notes]
    return "".join(parts) or '<span class="small">-</span>'


def _row(index: int, row: HostRow) -> str:
    tags = []
    if row.canary:
        tags.append("canary")
    if row.batch is not None:
        tags.append(f"batch {row.batch}")
    who = (
        f'<b>{_e(row.name)}</b><div class="small">{_e(row.target)}</div>'
        f'<div class="small">{_e(row.site)}{" / " + _e(row.hostname) if row.hostname else ""}'
        f'</div><div class="small">{_e(", ".join(tags))}</div>'
    )
    cells = [
        str(index),
        who,
        _badge(row.status),
        _chain(row.before),
        _actions(row),
        _chain(row.after),
        _badge(row.verify),
        _timings(row),
        _evidence(row),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def report_table(report: FleetReport) -> str:
    """The summary line and the host table (an HTML fragment, e.g. for Jupyter)."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "Host", "Status", "Before", "Actions", "After", "Verify", "Time", "Evidence")
    )
    rows = "".join(_row(i + 1, row) for i, row in enumerate(report.hosts))
    return (
        f"<p>{_e(report.summary_line())}</p>"
        f'<table class="fleet"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def report_page(report: FleetReport) -> str:
    """A complete standalone HTML document."""
    title = f"sectigo-chain fleet {report.mode}"
    meta = [
        f"inventory: {report.inventory or '-'}",
        f"started {report.started_at.isoformat()}",
        f"finished {report.finished_at.isoformat() if report.finished_at else '-'}",
        f"concurrency {report.concurrency}",
        f"canary {'on' if report.canary else 'off'}",
        f"batch size {report.batch_size or 'rolling'}",
    ]
    if report.resumed_from:
        meta.append(f"resumed from {report.resumed_from}")
    stop = ""
    if report.stopped:
        fg, bg = _COLORS["bad"]
        stop = (
            f'<p style="color:{fg};background:{bg};padding:6px;border:1px solid {fg}">'
            f"Rollout stopped: {_e(report.stop_reason)}</p>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{_e(title)}</h1><p class="small">{_e(" | ".join(meta))}</p>{stop}'
        f"{report_table(report)}</body></html>\n"
    )
