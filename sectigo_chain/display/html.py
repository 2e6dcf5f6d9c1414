"""HTML for Jupyter: the chain picture and one fragment per report type.

Self-contained fragments: inline CSS only, no JavaScript, no external assets, and every value
passes through :func:`html.escape` (site names, subjects and reasons come from hosts and
certificates: they are untrusted text). Colours: green = the profile validates / pass, red =
fail, amber = warning, grey = neutral.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sectigo_chain.display.views import (
    CertView,
    ChainRow,
    Verdict,
    chain_rows,
    cn_of,
    field,
    short_date,
    verdict_of,
)

__all__ = [
    "COLORS",
    "apply_result_html",
    "badge",
    "box_html",
    "chain_html",
    "chain_report_html",
    "check_failure_html",
    "file_report_html",
    "plan_html",
    "table_html",
    "unknown_html",
    "wrap",
]

#: verdict -> (border/text colour, background)
COLORS: dict[str, tuple[str, str]] = {
    "pass": ("#1a7f37", "#dafbe1"),
    "fail": ("#cf222e", "#ffebe9"),
    "warn": ("#9a6700", "#fff8c5"),
    "neutral": ("#57606a", "#f6f8fa"),
}
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;"
_CELL = "border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top;"
_SEVERITY: dict[str, Verdict] = {"error": "fail", "warning": "warn", "info": "neutral"}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def badge(word: Any, verdict: Verdict | None = None) -> str:
    """A small coloured label (``PASS``, ``FAIL``...)."""
    fg, bg = COLORS[verdict or verdict_of(word)]
    return (
        f'<span class="sc-badge" style="display:inline-block;padding:1px 8px;border-radius:10px;'
        f'border:1px solid {fg};background:{bg};color:{fg};font-weight:600;">'
        f"{_e(str(word).upper())}</span>"
    )


def box_html(cert: CertView, verdict: Verdict) -> str:
    """One certificate box of the chain picture."""
    fg, bg = COLORS[verdict]
    dashed = "dashed" if cert.role in ("trust anchor", "not served") else "solid"
    title = "\n".join(
        s
        for s in (
            cert.subject and f"subject: {cert.subject}",
            cert.issuer and f"issuer: {cert.issuer}",
            cert.thumbprint and f"SHA-1: {cert.thumbprint}",
            cert.sha256 and f"SHA-256: {cert.sha256}",
            cert.not_after and f"expires: {cert.not_after}",
        )
        if s
    )
    return (
        f'<span class="sc-box sc-{verdict}" data-verdict="{verdict}" title="{_e(title)}" '
        f'style="display:inline-block;vertical-align:middle;margin:2px;padding:4px 8px;'
        f"border:2px {dashed} {fg};border-radius:6px;background:{bg};color:#1f2328;"
        f'max-width:260px;">'
        f'<span style="display:block;font-size:10px;text-transform:uppercase;color:{fg};">'
        f"{_e(cert.role)}</span>{_e(cert.common_name)}</span>"
    )


def _arrow() -> str:
    return '<span class="sc-arrow" style="margin:0 4px;color:#57606a;">&#8594;</span>'


def _row_html(row: ChainRow) -> str:
    parts = [_arrow().join(box_html(b, row.verdict) for b in row.boxes)]
    if row.end is not None:
        fg, bg = COLORS["fail"]
        parts.append(
            _arrow() + f'<span class="sc-break" data-verdict="fail" style="display:inline-block;'
            f"vertical-align:middle;padding:4px 8px;border:2px dashed {fg};border-radius:6px;"
            f'background:{bg};color:{fg};max-width:360px;">&#10007; {_e(row.end)}</span>'
        )
    label = ""
    if row.label:
        label = (
            f'<span class="sc-profile" style="display:inline-block;min-width:90px;'
            f'font-weight:600;">{_e(row.label)}</span> {badge(row.verdict)} '
        )
    return f'<div class="sc-chain-row" style="margin:4px 0;">{label}{"".join(parts)}</div>'


def chain_html(
    certs_summary: Iterable[Any], profile_verdicts: Mapping[str, Any] | Iterable[Any] | None = None
) -> str:
    """The chain picture: leaf -> issuing CA -> cross-sign -> root, one row per profile.

    ``certs_summary`` are the served certificates in wire order (``CertSummary`` objects or
    their dicts); ``profile_verdicts`` maps profile names to ``ProfileResult`` objects (or
    their dicts, or ``True``/``False``/``"pass"``/``"fail"``/``"warn"``). A row shows the path
    the profile built up to its trust anchor, green when it validates; a failing profile's
    row is red and ends with why it broke. Without profiles one neutral row shows the chain.
    """
    rows = chain_rows(certs_summary, profile_verdicts)
    return f'<div class="sc-chain">{"".join(_row_html(r) for r in rows)}</div>'


def table_html(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], *, verdict_column: int | None = None
) -> str:
    """A plain table; cells in ``verdict_column`` become coloured badges."""
    head = "".join(f'<th style="{_CELL}background:#f6f8fa;">{_e(h)}</th>' for h in headers)
    body = []
    for row in rows:
        cells = [
            badge(cell) if i == verdict_column else _e(cell).replace("\n", "<br>")
            for i, cell in enumerate(row)
        ]
        body.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
    return (
        f'<table class="sc-table" style="border-collapse:collapse;margin:4px 0;">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def wrap(title: str, verdict: Any, *parts: str) -> str:
    """The outer block of a report: a title line with its badge, then the parts."""
    head = f'<div style="font-size:15px;font-weight:600;margin-bottom:4px;">{_e(title)} '
    head += (badge(verdict) if verdict is not None else "") + "</div>"
    return (
        f'<div class="sectigo-chain" style="{_FONT}border:1px solid #d0d7de;border-radius:8px;'
        f'padding:8px 12px;margin:4px 0;">{head}{"".join(p for p in parts if p)}</div>'
    )


def heading(text: str) -> str:
    return f'<div style="font-weight:600;margin-top:8px;">{_e(text)}</div>'


def _list(items: Iterable[Any], verdict: Verdict = "neutral") -> str:
    fg = COLORS[verdict][0]
    lis = "".join(f'<li style="color:{fg};">{_e(i)}</li>' for i in items)
    return f'<ul style="margin:2px 0;padding-left:20px;">{lis}</ul>' if lis else ""


def findings_html(findings: Iterable[Any]) -> str:
    rows = [
        (field(f, "severity", ""), field(f, "code", ""), field(f, "detail", "")) for f in findings
    ]
    if not rows:
        return heading("Findings") + "<div>none</div>"
    body = []
    for severity, code, detail in rows:
        fg, bg = COLORS[_SEVERITY.get(str(severity), "neutral")]
        body.append(
            f'<tr style="background:{bg};"><td style="{_CELL}color:{fg};font-weight:600;">'
            f'{_e(severity)}</td><td style="{_CELL}"><code>{_e(code)}</code></td>'
            f'<td style="{_CELL}">{_e(detail)}</td></tr>'
        )
    head = "".join(f'<th style="{_CELL}background:#f6f8fa;">{h}</th>' for h in ("", "code", ""))
    return (
        heading("Findings")
        + f'<table class="sc-findings" style="border-collapse:collapse;"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def chain_report_html(report: Any) -> str:
    """A ``ChainReport``: verdict, chain picture per profile, findings, served chain, notes."""
    served = list(field(report, "served_chain", ()) or ())
    profiles = field(report, "profiles", {}) or {}
    cert_rows = [
        (
            i,
            field(c, "common_name", ""),
            cn_of(str(field(c, "issuer", ""))),
            short_date(field(c, "not_after")),
            field(c, "thumbprint", ""),
        )
        for i, c in enumerate(served)
    ]
    prof_rows = [
        (
            name,
            "pass" if field(p, "valid") else "fail",
            field(p, "classification", ""),
            (cn_of(str(field(p, "anchor"))) if field(p, "valid") else field(p, "reason", "")),
        )
        for name, p in profiles.items()
    ]
    versions = field(report, "tls_versions", {}) or {}
    tls = "; ".join(
        f"TLS {v}: " + (f"ok ({field(r, 'cipher', '')})" if field(r, "ok") else "failed")
        for v, r in versions.items()
    )
    return wrap(
        f"{field(report, 'target', '')}",
        field(report, "verdict", "neutral"),
        f'<div style="color:#57606a;">{_e(tls)}</div>' if tls else "",
        heading("Chain per client profile"),
        chain_html(served, profiles),
        findings_html(field(report, "findings", ()) or ()),
        heading("Profiles"),
        table_html(
            prof_rows, ("profile", "verdict", "classification", "anchor / reason"), verdict_column=1
        ),
        heading("Served chain (wire order)"),
        table_html(cert_rows, ("#", "certificate", "issuer", "expires", "SHA-1")),
        _list(field(report, "notes", ()) or ()),
    )


def check_failure_html(failure: Any) -> str:
    """A ``CheckFailure``: the target could not be checked."""
    text = f"{field(failure, 'error', '')}: {field(failure, 'message', '')}"
    return wrap(str(field(failure, "target", "")), "error", f"<div>{_e(text)}</div>")


def plan_html(plan: Any, *, title: str | None = None) -> str:
    """A ``Plan``: warnings first, numbered actions with reasons and rollback, no-op reasons."""
    actions = list(field(plan, "actions", ()) or ())
    target = field(plan, "target", "") or ""
    parts = [_list((f"WARNING: {w}" for w in field(plan, "warnings", ()) or ()), "warn")]
    if actions:
        rows = [
            (i + 1, field(a, "kind", ""), field(a, "reason", ""), field(a, "rollback", ""))
            for i, a in enumerate(actions)
        ]
        parts.append(heading(f"{len(actions)} action(s)"))
        parts.append(table_html(rows, ("#", "action", "why", "rollback")))
    else:
        parts.append("<div>Nothing to do.</div>")
    noops = list(field(plan, "noop_reasons", ()) or ())
    if noops:
        parts += [heading("Already right"), _list(noops, "pass")]
    sites = list(field(plan, "affected_sites", ()) or ())
    if sites:
        parts.append(f"<div>Sites whose served chain changes: {_e(', '.join(sites))}</div>")
    verdict = "nothing to do" if not actions else f"{len(actions)} action(s)"
    return wrap(title or f"Plan for {target}".strip(), verdict, *parts)


def apply_result_html(result: Any) -> str:
    """An ``ApplyResult``: the steps run, the journal, and whether the host now matches."""
    steps = list(field(result, "steps", ()) or ())
    rows = [
        (
            field(s, "index", 0) + 1,
            field(s, "kind", ""),
            field(s, "template", ""),
            "changed" if field(s, "changed") else "unchanged",
        )
        for s in steps
    ]
    after_empty = bool(field(result, "after_plan_empty", True))
    after = (
        "The host now matches the desired state (re-plan is empty)."
        if after_empty
        else "The host still differs from the desired state: see the re-plan below."
    )
    parts = [
        table_html(rows, ("#", "action", "template", "result"), verdict_column=3)
        if rows
        else "<div>No action was run.</div>",
        f"<div>Journal: <code>{_e(field(result, 'journal'))}</code></div>"
        if field(result, "journal")
        else "",
        f'<div style="color:{COLORS["pass" if after_empty else "fail"][0]};">{_e(after)}</div>',
    ]
    after_plan = field(result, "after_plan")
    if after_plan is not None and not after_empty:
        parts.append(plan_html(after_plan, title="Re-plan after apply"))
    status = "applied" if after_empty else "incomplete"
    if not field(result, "changed"):
        status = "unchanged" if after_empty else status
    return wrap(f"Apply on {field(result, 'target', '')}", status, *parts)


def file_report_html(report: Any) -> str:
    """A ``FileReport``: each certificate, its catalog role, store and cross-sign need."""
    rows = []
    for c in field(report, "certificates", ()) or ():
        info = field(c, "info")
        cat = field(c, "catalog")
        need = field(c, "needs_cross_sign")
        rows.append(
            (
                field(info, "subject_cn", ""),
                field(cat, "role", "") if cat else ("CA" if field(info, "is_ca") else "leaf"),
                field(cat, "store", "") if cat else "",
                short_date(field(info, "not_after")),
                field(info, "thumbprint", ""),
                field(need, "name", "") if need else "",
            )
        )
    desc = f"{field(report, 'format', '')}, {len(rows)} certificate(s)"
    if field(report, "has_private_key"):
        desc += ", with private key"
    return wrap(
        str(field(report, "path", "")),
        None,
        f"<div>{_e(desc)}</div>",
        table_html(rows, ("certificate", "role", "belongs in", "expires", "SHA-1", "needs")),
    )


def unknown_html(obj: Any) -> str:
    """Anything else: its escaped ``repr``."""
    return f'<pre class="sectigo-chain">{_e(repr(obj))}</pre>'
