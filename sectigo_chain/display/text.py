"""Terminal text for reports: aligned tables, the chain per profile as one line each.

Plain by default; with ``color=True`` verdict words are coloured with ANSI codes (the caller
decides, see :func:`sectigo_chain.display.render.use_color`). Arrows are ASCII ``->`` so that any
console encoding prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sectigo_chain.display.views import (
    SERVED_HEADERS,
    ChainRow,
    chain_rows,
    field,
    served_rows,
    short_date,
    verdict_of,
)
from sectigo_chain.logs import escape_controls

__all__ = [
    "apply_result_text",
    "chain_lines",
    "chain_report_text",
    "check_failure_text",
    "file_report_text",
    "paint",
    "plan_text",
    "table_text",
]

_ANSI = {"pass": "\x1b[32m", "fail": "\x1b[31m", "warn": "\x1b[33m", "neutral": "\x1b[2m"}
_RESET = "\x1b[0m"


def paint(text: str, verdict: str, color: bool) -> str:
    """``text`` in the colour of ``verdict`` (pass/fail/warn/neutral) when ``color``."""
    if not color:
        return text
    return f"{_ANSI[verdict_of(verdict)]}{text}{_RESET}"


def _clean(value: Any) -> str:
    """``value`` as one line with control characters shown escaped (``\\x1b``, ``\\n``): a
    hostile certificate name cannot recolour the terminal or forge a line."""
    return escape_controls("" if value is None else str(value))


def table_text(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    *,
    verdict_column: int | None = None,
    color: bool = False,
    indent: str = "",
    max_width: int | None = None,
) -> str:
    """An aligned table: headers, a dashed rule, one line per row (last column unpadded).

    ``max_width`` cuts longer cells (ending them with ``...``).
    """
    table = [[_clean(h) for h in headers]] + [[_clean(c) for c in row] for row in rows]
    if max_width is not None:
        cut = max(max_width, 4)
        table = [[c if len(c) <= cut else c[: cut - 3] + "..." for c in r] for r in table]
    width = max(len(r) for r in table)
    for r in table:
        r += [""] * (width - len(r))
    widths = [max(len(r[i]) for r in table) for i in range(width)]

    def line(cells: list[str], painted: bool) -> str:
        out = []
        for i, cell in enumerate(cells):
            padded = cell if i == width - 1 else cell.ljust(widths[i])
            if painted and i == verdict_column:
                padded = paint(padded, cell, color)
            out.append(padded)
        return (indent + "  ".join(out)).rstrip()

    lines = [line(table[0], False), indent + "  ".join("-" * w for w in widths)]
    lines += [line(r, True) for r in table[1:]]
    return "\n".join(lines)


def _row_line(row: ChainRow, color: bool) -> str:
    boxes = [f"[{b.role}] {_clean(b.common_name)}" for b in row.boxes]
    if row.end is not None:
        boxes.append(f"X {_clean(row.end)}")
    chain = " -> ".join(boxes)
    if not row.label:
        return chain
    return f"{row.label} {paint(row.verdict.upper(), row.verdict, color)}: {chain}"


def chain_lines(certs: Any, profiles: Any, color: bool = False) -> list[str]:
    """The chain per profile, one line each (``legacy FAIL: [leaf] a -> [issuing CA] b``)."""
    return [_row_line(r, color) for r in chain_rows(certs, profiles)]


def chain_report_text(report: Any, color: bool = False) -> str:
    """A ``ChainReport`` for terminals."""
    verdict = str(field(report, "verdict", ""))
    lines = [f"{_clean(field(report, 'target', ''))}: {paint(verdict.upper(), verdict, color)}"]
    versions = field(report, "tls_versions", {}) or {}
    if versions:
        lines.append(
            "  "
            + "; ".join(
                f"TLS {v} " + (f"ok ({field(r, 'cipher', '')})" if field(r, "ok") else "failed")
                for v, r in versions.items()
            )
        )
    served = list(field(report, "served_chain", ()) or ())
    profiles = field(report, "profiles", {}) or {}
    lines.append("chain per profile:")
    lines += [f"  {line}" for line in chain_lines(served, profiles, color)]
    findings = list(field(report, "findings", ()) or ())
    if findings:
        lines.append("findings:")
        found = [(field(f, "severity"), field(f, "code"), field(f, "detail")) for f in findings]
        lines.append(table_text(found, ("severity", "code", "detail"), indent="  "))
    else:
        lines.append("findings: none")
    lines.append("served chain (wire order):")
    lines.append(table_text(served_rows(served), SERVED_HEADERS, indent="  "))
    lines += [f"note: {_clean(n)}" for n in field(report, "notes", ()) or ()]
    return "\n".join(lines)


def check_failure_text(failure: Any, color: bool = False) -> str:
    """A ``CheckFailure`` in one line."""
    return (
        f"{_clean(field(failure, 'target', ''))}: {paint('ERROR', 'fail', color)} "
        f"{field(failure, 'error', '')}: {_clean(field(failure, 'message', ''))}"
    )


def plan_text(plan: Any, color: bool = False) -> str:
    """A ``Plan``: warnings, numbered actions with reasons, no-op reasons."""
    target = field(plan, "target", "") or ""
    lines = [f"Plan for {target}:" if target else "Plan:"]
    lines += [paint(f"WARNING: {_clean(w)}", "warn", color) for w in field(plan, "warnings", ())]
    actions = list(field(plan, "actions", ()) or ())
    if actions:
        lines.append(f"{len(actions)} action(s):")
        rows = [(i + 1, field(a, "kind"), field(a, "reason")) for i, a in enumerate(actions)]
        lines.append(table_text(rows, ("#", "action", "why"), indent="  "))
    else:
        lines.append(paint("Nothing to do.", "pass", color))
    lines += [f"  = {_clean(r)}" for r in field(plan, "noop_reasons", ()) or ()]
    sites = list(field(plan, "affected_sites", ()) or ())
    if sites:
        lines.append("Sites whose served chain changes: " + _clean(", ".join(sites)))
    return "\n".join(lines)


def apply_result_text(result: Any, color: bool = False) -> str:
    """An ``ApplyResult``: steps, journal, whether the re-plan is empty."""
    lines = [f"Apply on {field(result, 'target', '')}:"]
    steps = list(field(result, "steps", ()) or ())
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
        lines.append(table_text(rows, ("#", "action", "template", "result"), indent="  "))
    else:
        lines.append("  no action was run")
    if field(result, "journal"):
        lines.append(f"journal: {field(result, 'journal')}")
    if field(result, "after_plan_empty", True):
        lines.append(paint("The host now matches the desired state.", "pass", color))
    else:
        lines.append(paint("The host still differs from the desired state:", "fail", color))
        after = field(result, "after_plan")
        if after is not None:
            lines += ["  " + line for line in plan_text(after).splitlines()[1:]]
    return "\n".join(lines)


def file_report_text(report: Any, color: bool = False) -> str:
    """A ``FileReport``: one row per certificate."""
    certs = list(field(report, "certificates", ()) or ())
    head = (
        f"{_clean(field(report, 'path', ''))}: {field(report, 'format', '')}, "
        f"{len(certs)} certificate(s)"
    )
    if field(report, "has_private_key"):
        head += ", with private key"
    rows = []
    for c in certs:
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
    headers = ("certificate", "role", "belongs in", "expires", "SHA-1", "needs")
    return head + "\n" + table_text(rows, headers, indent="  ")
