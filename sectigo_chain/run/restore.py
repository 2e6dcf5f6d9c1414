"""The restore artefact: a standalone, readable ``.ps1`` that puts back the journal's "before"
state without this library (issue 17).

Apply writes it beside the journal once every step has run (``<journal>.restore.ps1``, mode
0600) for operators who must hand the rollback to someone else. It holds, newest step first,
exactly the template runs :func:`sectigo_chain.run.journal.rollback` would make (each one
:func:`~sectigo_chain.run.journal.undo_steps` of a step), then the restart the apply made, as
:func:`~sectigo_chain.templates.standalone.to_standalone_plan` renders them: the templates
verbatim, one base64 payload each, stopping at the first template that reports ``ok = false``.
A certificate that must go back into a store ``import_certificate`` cannot write (a CurrentUser
store, Root's ``.AuthRoot``) is staged in a ``LocalMachine`` store that does not hold it and
moved into place; which store is free is decided here, from the stores observed after the
apply, as rollback decides it on the host. It holds no secret (no undo needs one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sectigo_chain.run.journal import undo_steps
from sectigo_chain.templates.render import render
from sectigo_chain.templates.standalone import to_standalone_plan

__all__ = ["needs_store_lookup", "restore_path", "restore_runs", "restore_script", "write_restore"]

Holding = Callable[[str], set[str]]
"""The ``LocalMachine`` store names that hold a thumbprint (for staging a restore)."""

_UNDONE = ("running", "done", "failed")


def restore_path(journal_path: str | os.PathLike[str]) -> Path:
    """``sectigo-chain-journal-....json`` -> ``sectigo-chain-journal-....restore.ps1``."""
    p = Path(journal_path)
    return p.with_name(p.stem + ".restore.ps1")


def _undo(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    runs: list[tuple[str, dict[str, Any]]] = []
    for step in reversed(doc.get("steps") or []):
        if step.get("status") in _UNDONE:
            runs += undo_steps(step)
    return runs


def needs_store_lookup(doc: dict[str, Any]) -> bool:
    """Whether a restore must be staged (then :func:`restore_runs` needs ``holding``)."""
    return any(t == "restore_staged" for t, _ in _undo(doc))


def restore_runs(
    doc: dict[str, Any], holding: Holding | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The template runs that restore a journal's "before" state, in order."""
    runs: list[tuple[str, dict[str, Any]]] = []
    for template, params in _undo(doc):
        if template != "restore_staged":
            runs.append((template, params))
            continue
        p = dict(params)
        preferred = p.pop("staging")
        held = holding(p["thumbprint"]) if holding is not None else set()
        free = [s for s in (preferred, "CA", "My", "WebHosting") if s not in held]
        staging = free[0] if free else preferred
        if free:
            runs.append(
                (
                    "import_certificate",
                    {**p, "store_location": "LocalMachine", "store_name": staging},
                )
            )
        runs.append(
            (
                "move_certificate",
                {
                    "thumbprint": p["thumbprint"],
                    "from_location": "LocalMachine",
                    "from_store": staging,
                    "to_location": p["store_location"],
                    "to_store": p["store_name"],
                    "remove_source": bool(free),
                },
            )
        )
    restarts = [s for s in doc.get("steps") or [] if s.get("template") == "restart"
                and s.get("status") == "done"]  # fmt: skip
    if restarts and runs:
        runs.append(("restart", restarts[-1]["params"]))
    return runs


def _comment(value: object) -> str:
    return json.dumps(value, ensure_ascii=True)  # escapes newlines: stays one comment line


def restore_script(
    doc: dict[str, Any], holding: Holding | None = None, *, journal: str = ""
) -> str:
    """The restore ``.ps1`` for a journal document (see the module docstring)."""
    runs = restore_runs(doc, holding)
    head = [
        "# sectigo_chain RESTORE script: puts back the state recorded before an apply.",
        f"#   journal: {_comment(journal)}",
        f"#   target:  {_comment(doc.get('target'))}",
        f"#   apply started: {_comment(doc.get('created'))}",
        f"#   {len(runs)} template run(s), newest change first; each re-checks the host first,",
        "#   so running this file twice is safe. It needs no part of sectigo_chain.",
        "",
    ]
    if not runs:
        return "\n".join([*head, "# Nothing to restore: the apply changed nothing."]) + "\n"
    return "\n".join(head) + to_standalone_plan([render(t, p) for t, p in runs])


def write_restore(
    journal_path: str | os.PathLike[str], doc: dict[str, Any], holding: Holding | None = None
) -> Path:
    """Write the restore script beside the journal (mode 0600) and return its path."""
    path = restore_path(journal_path)
    text = restore_script(doc, holding, journal=Path(journal_path).name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii", newline="\n") as fh:
        fh.write(text)
    return path
