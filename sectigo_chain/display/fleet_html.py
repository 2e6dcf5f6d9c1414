"""The HTML form of a :class:`~sectigo_chain.fleet.report.FleetReport`.

A standalone page (inline CSS, no scripts, no external assets) built to stay readable at
thousands of hosts and 1280 px wide: it opens with the count of hosts per outcome and the hosts
that need attention (with what to do), then says each distinct plan warning once (with the
hosts it concerns), then gives one compact line per host whose details (chains, actions,
evidence, timings) sit behind a ``<details>`` element. Failure kinds are told apart (chain
fails, unreachable, refused, rolled back, rollback incomplete, error). Every value goes through
:func:`html.escape` (host names, reasons, errors and certificate names are untrusted text).
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
    "chain fails": "bad", "unreachable": "bad", "refused": "bad", "rolled back": "bad",
    "rollback incomplete": "bad",
}  # fmt: skip
_NAMES_SHOWN = 12  # host names listed beside a repeated warning before "and N more"
_PAGE_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;margin:16px;
color:#1f2328}
h1{font-size:20px;margin:0 0 4px}
.small{color:#57606a;font-size:12px}
.stop{padding:6px;border:1px solid}
"""
# Scoped to the fragment (it also shows in Jupyter, where it must not restyle the notebook).
_CSS = """
.sc-fleet{max-width:100%;overflow-wrap:anywhere}
.sc-fleet *{box-sizing:border-box}
.sc-fleet h2{font-size:15px;margin:18px 0 6px}
.sc-fleet .small{color:#57606a;font-size:12px}
.sc-fleet .badge{display:inline-block;padding:0 7px;border-radius:9px;border:1px solid;
font-weight:600;white-space:nowrap}
.sc-fleet .counts{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}
.sc-fleet .tile{border:1px solid;border-radius:6px;padding:6px 12px;min-width:110px}
.sc-fleet .tile b{display:block;font-size:20px}
.sc-fleet .plain{margin:2px 0;padding-left:18px}
.sc-fleet ul.attention li{margin:2px 0}
.sc-fleet details.host{border-bottom:1px solid #d0d7de}
.sc-fleet details.host>summary{display:flex;gap:8px;align-items:baseline;padding:3px 4px;
cursor:pointer;list-style:none;white-space:nowrap}
.sc-fleet details.host>summary::-webkit-details-marker{display:none}
.sc-fleet details.host>summary::before{content:"\\25B8";color:#57606a}
.sc-fleet details.host[open]>summary::before{content:"\\25BE"}
.sc-fleet summary .name{font-weight:600;min-width:0;max-width:24%;overflow:hidden;
text-overflow:ellipsis}
.sc-fleet summary .what{min-width:0;flex:1;overflow:hidden;text-overflow:ellipsis;
color:#57606a}
.sc-fleet .body{padding:4px 8px 10px 22px;display:grid;
grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:6px 18px}
.sc-fleet .body>div{min-width:0}
.sc-fleet .body h3{font-size:12px;margin:4px 0 2px;color:#57606a;text-transform:uppercase}
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
        return '<span class="small">not checked</span>'
    parts = [_badge(check.verdict), f' <span class="small">{_e(check.source)} '
             f"{_e(check.endpoint)}</span>"]  # fmt: skip
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
    return "".join(parts)


def _actions(row: HostRow, common: set[str]) -> str:
    if not row.actions:
        items = '<span class="small">none</span>'
    else:
        items = "".join(f"<li><b>{_e(a.kind)}</b>: {_e(a.reason)}</li>" for a in row.actions)
        items = f'<ol class="plain">{items}</ol>'
    own = [w for w in row.warnings if w not in common]
    shared = len(row.warnings) - len(own)
    warnings = "".join(f'<div class="small">warning: {_e(w)}</div>' for w in own)
    if shared:
        warnings += f'<div class="small">{shared} warning(s) listed under Warnings above</div>'
    return items + warnings


def _evidence(row: HostRow) -> str:
    parts = []
    if row.error is not None:
        parts.append(f"<div><b>{_e(row.error.type)}</b>: {_e(row.error.message)}</div>")
    if row.note:
        parts.append(f"<div>{_e(row.note)}</div>")
    if row.rolled_back or row.rollback_complete is not None:
        state = "complete" if row.rollback_complete else "INCOMPLETE"
        undone = ", ".join(row.rolled_back) or "nothing"
        parts.append(f"<div>rollback {_e(state)}: {_e(undone)}</div>")
    if row.journal:
        parts.append(f'<div class="small">journal: {_e(row.journal)}</div>')
    parts += [f'<div class="small">{_e(n)}</div>' for n in row.verify_notes]
    if row.outbound:
        parts.append(f'<div class="small">outbound self-test: {_e(row.outbound)}</div>')
    if row.entries:
        rungs = ", ".join(row.entry_rungs) or "none"
        items = "".join(f'<li class="entry">{_e(e.line())}</li>' for e in row.entries)
        parts.append(
            f'<div class="small">HTTP.sys entries (rungs: {_e(rungs)}):</div>'
            f'<ol class="plain">{items}</ol>'
        )
    if row.remedy:
        parts.append(f"<div><b>to do:</b> {_e(row.remedy)}</div>")
    if row.timings:
        parts.append(
            '<div class="small">time: '
            + _e(", ".join(f"{k} {v:.2f}s" for k, v in row.timings.items()))
            + "</div>"
        )
    return "".join(parts) or '<span class="small">-</span>'


def _short(row: HostRow) -> str:
    """The compact summary after the badge: before -> after, actions, time, why."""
    before = row.before.verdict if row.before else "-"
    after = row.after.verdict if row.after else "-"
    total = row.timings.get("total")
    bits = [f"{before} \u2192 {after}", f"{len(row.actions)} action(s)"]
    if total is not None:
        bits.append(f"{total:.2f}s")
    if row.canary:
        bits.append("canary")
    why = row.detail
    if why:
        bits.append(why[:200])
    return " \u00b7 ".join(bits)


def _host(index: int, row: HostRow, common: set[str]) -> str:
    where = _e(row.target) + (f" / {_e(row.site)}" if row.site else "")
    if row.hostname:
        where += f" / {_e(row.hostname)}"
    if row.batch is not None:
        where += f" / batch {row.batch}"
    return (
        f'<details class="host" id="h{index}"><summary><span class="name">{_e(row.name)}</span>'
        f'{_badge(row.outcome)}<span class="what">{_e(_short(row))}</span></summary>'
        f'<div class="body"><div><h3>Host</h3><div class="small">{where}</div>'
        f"<h3>Before</h3>{_chain(row.before)}<h3>Plan</h3>{_actions(row, common)}</div>"
        f"<div><h3>After</h3>{_chain(row.after)}<h3>Verify</h3>{_badge(row.verify)}"
        f"<h3>Evidence</h3>{_evidence(row)}</div></div></details>"
    )


def _counts(report: FleetReport) -> str:
    tiles = []
    for outcome, count in report.outcome_counts().items():
        fg, bg = _COLORS[_TONE.get(outcome, "neutral")]
        tiles.append(
            f'<div class="tile" style="color:{fg};background:{bg};border-color:{fg}">'
            f"<b>{count}</b>{_e(outcome)}</div>"
        )
    return f'<div class="counts">{"".join(tiles)}</div>'


def _attention(report: FleetReport) -> str:
    rows = [(i, r) for i, r in enumerate(report.hosts, 1) if r.failed or r.outcome == "error"]
    if not rows:
        return '<h2>Needs attention</h2><p class="small">No host needs attention.</p>'
    items = "".join(
        f'<li><a href="#h{i}">{_e(r.name)}</a> {_badge(r.outcome)} {_e(r.detail[:300])}'
        + (f' <span class="small">\u2014 to do: {_e(r.remedy)}</span>' if r.remedy else "")
        + "</li>"
        for i, r in rows
    )
    return f'<h2>Needs attention ({len(rows)})</h2><ul class="attention">{items}</ul>'


def _common_warnings(report: FleetReport) -> tuple[str, set[str]]:
    """The Warnings section (each distinct warning once, with its hosts) and the warnings it
    lists (the host details leave those out)."""
    hosts: dict[str, list[str]] = {}
    for row in report.hosts:
        for warning in dict.fromkeys(row.warnings):
            hosts.setdefault(warning, []).append(row.name)
    if not hosts:
        return "", set()
    items = []
    for warning, names in sorted(hosts.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(names[:_NAMES_SHOWN])
        more = f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
        items.append(
            f'<li>{_e(warning)} <span class="small">({len(names)} host(s): {_e(shown)}'
            f"{more})</span></li>"
        )
    return (
        f'<h2>Warnings ({len(hosts)} distinct)</h2><ul class="plain">{"".join(items)}</ul>',
        set(hosts),
    )


def report_table(report: FleetReport) -> str:
    """Counts, hosts needing attention, warnings and the host list (an HTML fragment, e.g. for
    Jupyter; the page's stylesheet is in :func:`report_page`)."""
    warnings, common = _common_warnings(report)
    rows = "".join(_host(i, row, common) for i, row in enumerate(report.hosts, 1))
    return (
        f'<div class="sc-fleet"><style>{_CSS}</style>'
        f"<p>{_e(report.summary_line())}</p>{_counts(report)}{_attention(report)}{warnings}"
        f'<h2>Hosts ({len(report.hosts)})</h2><div class="hosts">{rows}</div></div>'
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
            f'<p class="stop" style="color:{fg};background:{bg};border-color:{fg}">'
            f"Rollout stopped: {_e(report.stop_reason)}</p>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_PAGE_CSS}</style></head><body>"
        f'<h1>{_e(title)}</h1><p class="small">{_e(" | ".join(meta))}</p>{stop}'
        f"{report_table(report)}</body></html>\n"
    )
