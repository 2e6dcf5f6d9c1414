"""``review(journals, at=...)``: the fixes that are due for review (issue 17).

Every distrust action a plan makes (removing or disallowing the self-signed root, disabling
Automatic Root Update) carries a revert date (``Action.revert_after``: the earlier of the
cross-sign's and the old clients' anchor's expiry), and apply writes it into the journal's
step. :func:`review` reads journals and lists those steps, due or not: a step is due when its
date is within ``within_days`` of ``at``. Steps that were rolled back are left out (there is
nothing left to revert). Pure apart from reading the files.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from sectigo_chain.errors import InputError
from sectigo_chain.run.journal import Journal

__all__ = ["ReviewItem", "ReviewReport", "review"]


class ReviewItem(BaseModel):
    """One distrust step of one journal and its review date."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journal: str
    target: str
    step: int
    kind: str
    revert_after: dt.date
    reason: str
    due: bool
    status: str

    def line(self) -> str:
        mark = "DUE" if self.due else "ok "
        return (
            f"{mark} {self.revert_after.isoformat()}  {self.target}  step {self.step} "
            f"[{self.kind}] ({self.journal}): {self.reason}"
        )


class ReviewReport(BaseModel):
    """What :func:`review` found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: dt.date
    within_days: int
    items: tuple[ReviewItem, ...] = ()

    @property
    def due(self) -> tuple[ReviewItem, ...]:
        return tuple(i for i in self.items if i.due)

    def __str__(self) -> str:
        if not self.items:
            return "No distrust action with a review date in these journals."
        head = (
            f"{len(self.due)} of {len(self.items)} fix(es) due for review by "
            f"{self.at + dt.timedelta(days=self.within_days):%Y-%m-%d}:"
        )
        return "\n".join([head, *(i.line() for i in self.items)])


def _date(value: object, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{where}: revert_after {value!r} is not a date (YYYY-MM-DD)") from None


def _items(journal: Journal, path: str, limit: dt.date) -> list[ReviewItem]:
    plan = journal.doc.get("plan")
    actions: list[Any] = (plan.get("actions") if isinstance(plan, dict) else None) or []
    out: list[ReviewItem] = []
    for step in journal.steps:
        if not isinstance(step, dict) or step.get("status") == "rolled_back":
            continue
        index = step.get("index")
        index = index if isinstance(index, int) else 0
        action = actions[index] if 0 <= index < len(actions) else {}
        action = action if isinstance(action, dict) else {}
        when = _date(step.get("revert_after") or action.get("revert_after"), path)
        if when is None:
            continue
        out.append(
            ReviewItem(
                journal=path,
                target=str(journal.doc.get("target") or ""),
                step=index + 1,
                kind=str(step.get("kind", "")),
                revert_after=when,
                reason=str(step.get("revert_reason") or action.get("revert_reason") or ""),
                due=when <= limit,
                status=str(step.get("status", "")),
            )
        )
    return out


def review(
    journals: Sequence[str | os.PathLike[str]],
    *,
    at: dt.datetime | dt.date,
    within_days: int = 0,
) -> ReviewReport:
    """The distrust steps of ``journals`` with their review dates, earliest first."""
    if within_days < 0:
        raise InputError("--within must be 0 or more days")
    day = at.date() if isinstance(at, dt.datetime) else at
    limit = day + dt.timedelta(days=within_days)
    items: list[ReviewItem] = []
    for path in journals:
        journal = Journal.load(path)
        try:
            items += _items(journal, str(path), limit)
        finally:
            journal.close()
    items.sort(key=lambda i: (i.revert_after, i.journal, i.step))
    return ReviewReport(at=day, within_days=within_days, items=tuple(items))
