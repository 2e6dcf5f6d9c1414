"""Split one rollout into independent shards, and merge the shards' reports into one.

``--shard K/N`` runs only the hosts whose stable shard number is K: the number comes from a
hash of the host's *name* (SHA-256, so it is the same on every machine, in every process and
whatever the inventory's order), which lets any engine that can start N copies of a command
(Kubernetes indexed Jobs, CI matrices, AWX job slices) spread a fleet without coordination.
Each shard is a rollout of its own: its first host is its canary, and it stops on its own
failures. :func:`merge_reports` joins the shards' reports into the report one process would
have written (rows in inventory order, counts and exit code over all hosts).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sectigo_chain.errors import InputError

if TYPE_CHECKING:
    from sectigo_chain.fleet.report import FleetReport

__all__ = ["Shard", "merge_reports", "shard_of"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) that the host named ``name`` belongs to."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (both 1-based), written ``K/N``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise InputError(
                f"shard {self.index}/{self.count} does not exist: K must be between 1 and N"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        found = _SHARD.match(text)
        if found is None:
            raise InputError(f"shard {text!r} is not K/N (for example 2/4)")
        return cls(int(found[1]), int(found[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, name: str) -> bool:
        return shard_of(name, self.count) == self.index


def merge_reports(reports: Sequence[FleetReport]) -> FleetReport:
    """One report from the reports of shards 1..N of the same rollout (any order)."""
    from sectigo_chain.fleet.report import FleetReport

    if not reports:
        raise InputError("fleet merge needs at least one shard report")
    modes = {r.mode for r in reports}
    if len(modes) != 1:
        raise InputError(f"the reports are of different fleet modes: {sorted(modes)}")
    shards = [Shard.parse(r.shard) if r.shard else None for r in reports]
    if any(s is None for s in shards):
        raise InputError("every report to merge must come from a --shard K/N run")
    counts = {s.count for s in shards if s is not None}
    if len(counts) != 1:
        raise InputError(f"the reports split the fleet differently: N = {sorted(counts)}")
    count = counts.pop()
    seen = sorted(s.index for s in shards if s is not None)
    if seen != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(seen))
        twice = sorted({i for i in seen if seen.count(i) > 1})
        problems = [f"missing {missing}"] if missing else []
        problems += [f"shard(s) {twice} given twice"] if twice else []
        raise InputError(f"cannot merge shards {seen} of {count}: {'; '.join(problems)}")
    rows = [row for report in reports for row in report.hosts]
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise InputError("a host appears in more than one shard report")
    rows.sort(key=lambda r: (r.position is None, r.position or 0, r.name))
    first = reports[0]
    finished = [r.finished_at for r in reports]
    reasons = [f"shard {r.shard}: {r.stop_reason}" for r in reports if r.stop_reason]
    return FleetReport(
        mode=first.mode,
        inventory=first.inventory,
        started_at=min(r.started_at for r in reports),
        finished_at=None if None in finished else max(f for f in finished if f is not None),
        concurrency=sum(r.concurrency for r in reports),
        canary=any(r.canary for r in reports),
        batch_size=first.batch_size,
        stop_on_failure=first.stop_on_failure,
        stopped=any(r.stopped for r in reports),
        stop_reason="; ".join(reasons) or None,
        resumed_from=None,
        complete=all(r.complete for r in reports),
        shard=None,
        hosts=tuple(rows),
    )
