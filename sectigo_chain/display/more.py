"""Renderers for the reports of ``verify`` and ``fleet`` (text, Markdown and HTML).

Kept apart from :mod:`sectigo_chain.display.html` and :mod:`sectigo_chain.display.text` only
for size; the same rules hold (duck-typed inputs, every value escaped, no scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sectigo_chain.display import html as h
from sectigo_chain.display import markdown as m
from sectigo_chain.display import text as t
from sectigo_chain.display.views import field
from sectigo_chain.logs import escape_controls

__all__ = [
    "fleet_html",
    "fleet_markdown",
    "fleet_rows",
    "fleet_text",
    "verify_html",
    "verify_markdown",
    "verify_text",
]


# ----------------------------------------------------------------------------- verify


def _host_chain_certs(hc: Any) -> list[dict[str, str]]:
    """The host chain's elements as certificate dicts; a valid Windows chain ends at a root."""
    elements = list(field(hc, "elements", ()) or ())
    out = []
    for i, e in enumerate(elements):
        name = str(field(e, "common_name", ""))
        root = bool(field(hc, "valid")) and i == len(elements) - 1 and i > 0
        subject = f"CN={name}"
        out.append(
            {
                "common_name": name,
                "subject": subject,
                "issuer": subject if root else "",
                "thumbprint": str(field(e, "thumbprint", "")),
            }
        )
    return out


def _host_row(hc: Any) -> dict[str, bool]:
    """The host chain is one chain (Windows builds one): one row, green when it is right."""
    return {"Windows": bool(field(hc, "right"))}


def _rung_rows(report: Any) -> list[tuple[Any, ...]]:
    rows = []
    for i, r in enumerate(field(report, "rungs", ()) or (), 1):
        after = field(r, "served_verdict") or f"unreachable ({field(r, 'served_error')})"
        rows.append((i, field(r, "action"), "FIXED" if field(r, "fixed") else f"still {after}"))
    return rows


def verify_html(report: Any) -> str:
    """A ``VerifyReport``: desired state, the chain on the host, the chain served, the ladder."""
    parts = [h.heading("1. Desired state (observe again, re-plan)")]
    if field(report, "plan_empty"):
        parts.append(f"<div>{h.badge('pass')} the plan is empty</div>")
    else:
        parts.append(f"<div>{h.badge('fail')} the plan is not empty:</div>")
        parts.append(h._list(field(report, "remaining", ()) or (), "fail"))
    hc = field(report, "host_chain")
    parts.append(h.heading("2. On the host (the chain Windows builds)"))
    if hc is None:
        parts.append("<div>not checked</div>")
    else:
        parts.append(h.chain_html(_host_chain_certs(hc), _host_row(hc)))
        judged = " ".join(
            f"{h._e(name)} {h.badge('pass' if ok else 'fail')}"
            for name, ok in (field(hc, "profiles", {}) or {}).items()
        )
        parts.append(f"<div>{judged} {h._e(field(hc, 'problem') or '')}</div>")
    served = field(report, "served")
    parts.append(h.heading(f"3. Served over TLS ({field(report, 'endpoint') or 'no endpoint'})"))
    if served is not None:
        parts.append(f"<div>{h.badge(field(served, 'verdict', 'neutral'))}</div>")
        parts.append(
            h.chain_html(field(served, "served_chain", ()) or (), field(served, "profiles", {}))
        )
        parts.append(h.findings_html(field(served, "findings", ()) or ()))
    elif field(report, "served_error"):
        parts.append(f"<div>{h.badge('error')} {h._e(field(report, 'served_error'))}</div>")
    else:
        parts.append("<div>not checked (no endpoint given)</div>")
    rungs = _rung_rows(report)
    if rungs:
        parts += [
            h.heading("Served chain was stale: restart ladder"),
            h.table_html(rungs, ("#", "action", "served chain after")),
        ]
    if field(report, "reboot_required"):
        parts.append(f"<div>{h.badge('fail')} REBOOT REQUIRED: no rung refreshed the chain</div>")
    parts.append(h._list(field(report, "notes", ()) or ()))
    title = f"Verify {field(report, 'target', '')}, site {field(report, 'site', '')}"
    return h.wrap(title, field(report, "verdict", "neutral"), *parts)


def verify_text(report: Any, color: bool = False) -> str:
    """A ``VerifyReport`` for terminals (the report's own ``str`` plus the chain lines)."""
    verdict = str(field(report, "verdict", ""))
    lines = [
        f"verify {field(report, 'target', '')}, site {field(report, 'site', '')}: "
        + t.paint(verdict.upper(), verdict, color)
    ]
    lines.append(
        "  desired state: plan empty"
        if field(report, "plan_empty")
        else "  desired state: plan NOT empty: " + "; ".join(field(report, "remaining", ()))
    )
    hc = field(report, "host_chain")
    if hc is not None:
        right = "right" if field(hc, "right") else "WRONG"
        lines.append(
            f"  on the host: {t.paint(right, 'pass' if right == 'right' else 'fail', color)}"
        )
        lines += [f"    {x}" for x in t.chain_lines(_host_chain_certs(hc), _host_row(hc), color)]
        judged = ", ".join(
            f"{n} {'ok' if ok else 'FAILS'}" for n, ok in (field(hc, "profiles", {}) or {}).items()
        )
        if judged:
            lines.append(f"    judged: {judged}")
        if field(hc, "problem"):
            lines.append(f"    {escape_controls(str(field(hc, 'problem')))}")
    served = field(report, "served")
    if served is not None:
        sv = str(field(served, "verdict", ""))
        lines.append(
            f"  served over TLS ({field(report, 'endpoint')}): {t.paint(sv.upper(), sv, color)}"
        )
        lines += [
            f"    {line}"
            for line in t.chain_lines(
                field(served, "served_chain", ()), field(served, "profiles", {}), color
            )
        ]
    elif field(report, "served_error"):
        lines.append(
            f"  served over TLS: ERROR {escape_controls(str(field(report, 'served_error')))}"
        )
    rungs = _rung_rows(report)
    if rungs:
        lines.append("  restart ladder:")
        lines.append(t.table_text(rungs, ("#", "action", "served chain after"), indent="    "))
    if field(report, "reboot_required"):
        lines.append(t.paint("  REBOOT REQUIRED", "fail", color))
    lines += [f"  note: {n}" for n in field(report, "notes", ()) or ()]
    return "\n".join(lines)


def verify_markdown(report: Any) -> str:
    """A ``VerifyReport`` in Markdown."""
    verdict = str(field(report, "verdict", ""))
    parts = [
        f"### Verify {m.md_escape(field(report, 'target', ''))}, site "
        f"{m.md_escape(field(report, 'site', ''))}: {m.mark(verdict)} {verdict.upper()}"
    ]
    empty = field(report, "plan_empty")
    parts.append(
        f"1. Desired state: {m.mark('pass' if empty else 'fail')} "
        + ("the plan is empty" if empty else "the plan is not empty")
    )
    hc = field(report, "host_chain")
    if hc is not None:
        parts.append(f"2. On the host: {m.mark('pass' if field(hc, 'right') else 'fail')}")
        parts.append(m.chain_markdown(_host_chain_certs(hc), _host_row(hc)))
    served = field(report, "served")
    if served is not None:
        sv = str(field(served, "verdict", ""))
        parts.append(f"3. Served over TLS: {m.mark(sv)} {sv.upper()}")
        parts.append(
            m.chain_markdown(field(served, "served_chain", ()), field(served, "profiles", {}))
        )
    rungs = _rung_rows(report)
    if rungs:
        parts.append(m.table_markdown(rungs, ("#", "action", "served chain after")))
    parts += [f"- note: {m.md_escape(n)}" for n in field(report, "notes", ()) or ()]
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- fleet


def _verdict(check: Any) -> str:
    return str(field(check, "verdict", "-")) if check is not None else "-"


def fleet_rows(report: Any) -> list[tuple[Any, ...]]:
    """One row per host: name, status, verdict before, verdict after, actions, detail."""
    rows = []
    for r in field(report, "hosts", ()) or ():
        error = field(r, "error")
        detail = (
            f"{field(error, 'type', '')}: {field(error, 'message', '')}"
            if error is not None
            else field(r, "note") or ""
        )
        rows.append(
            (
                field(r, "name", ""),
                field(r, "status", ""),
                _verdict(field(r, "before")),
                _verdict(field(r, "after")),
                len(field(r, "actions", ()) or ()),
                detail,
            )
        )
    return rows


_FLEET_HEADERS = ("host", "status", "before", "after", "actions", "detail")


def _fleet_title(report: Any) -> str:
    mode = field(report, "mode")
    return f"Fleet {mode}" if mode else "Fleet"


def _fleet_verdict(report: Any) -> str:
    if field(report, "stopped"):
        return "stopped"
    hosts = list(field(report, "hosts", ()) or ())
    bad = [h for h in hosts if field(h, "status") in ("failed", "rolled_back")]
    return "fail" if bad else "ok"


def _fleet_summary(report: Any) -> str:
    counts: dict[str, int] = {}
    for r in field(report, "hosts", ()) or ():
        status = str(field(r, "status", ""))
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    text = f"{sum(counts.values())} host(s): {summary}"
    if field(report, "stopped"):
        text += f"; stopped: {field(report, 'stop_reason', '')}"
    return text


def _host_chain_html(row: Any) -> str:
    check = field(row, "after") or field(row, "before")
    if check is None or not field(check, "chain"):
        return ""
    profiles = field(check, "profiles", {}) or {}
    return (
        f"<div>{h._e(field(row, 'name', ''))} "
        f"({h._e('after' if field(row, 'after') else 'before')})</div>"
        + h.chain_html(field(check, "chain", ()), profiles)
    )


def fleet_html(report: Any) -> str:
    """A ``FleetReport``: a row per host with coloured statuses, then each host's chain."""
    rows = fleet_rows(report)
    body = h.table_html(rows, _FLEET_HEADERS, verdict_column=1)
    chains = [_host_chain_html(r) for r in field(report, "hosts", ()) or ()]
    return h.wrap(
        _fleet_title(report),
        _fleet_verdict(report),
        f"<div>{h._e(_fleet_summary(report))}</div>",
        body,
        h.heading("Served chains") if any(chains) else "",
        *chains,
    )


def fleet_text(report: Any, color: bool = False) -> str:
    """A ``FleetReport`` as a table."""
    table = t.table_text(
        fleet_rows(report),
        _FLEET_HEADERS,
        verdict_column=1,
        color=color,
        indent="  ",
        max_width=120,
    )
    return f"{_fleet_title(report)}: {_fleet_summary(report)}\n{table}"


def fleet_markdown(report: Any) -> str:
    """A ``FleetReport`` in Markdown."""
    rows = [(r[0], f"{m.mark(str(r[1]))} {r[1]}", *r[2:]) for r in fleet_rows(report)]
    return (
        f"### {m.md_escape(_fleet_title(report))}\n\n{m.md_escape(_fleet_summary(report))}\n\n"
        + m.table_markdown(rows, _FLEET_HEADERS)
    )


def markdown_for(obj: Any, kind: str | None) -> str:
    """Markdown for ``obj`` of renderer ``kind`` (see :func:`.views.kind_of`).

    The dispatch lives here, above :mod:`.markdown`, so the two modules import one way."""
    renderers: dict[str, Callable[[Any], str]] = {
        "chain": m._chain,
        "check_failure": m._failure,
        "plan": m._plan,
        "apply": m._apply,
        "file": m._file,
        "verify": verify_markdown,
        "fleet": fleet_markdown,
    }
    renderer = renderers.get(kind or "")
    if renderer is None:
        return "```\n" + repr(obj).replace("```", "`\u200b``") + "\n```"
    return renderer(obj)
