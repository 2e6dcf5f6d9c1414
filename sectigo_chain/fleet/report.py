"""What a fleet run reports: one :class:`HostRow` per host inside a :class:`FleetReport`.

A row says what the host served before (verdict + chain summary), what the plan wanted
(action kinds and reasons), what happened (status), what it served after and what
verification said, with timings and evidence (journal path, error type and message, what was
rolled back). Rows hold no secret values and no DER: only names, thumbprints and verdicts.

Statuses: ``planned`` (plan mode, actions to do), ``unchanged`` (nothing to do; or apply found
nothing to do and verification passed), ``applied`` (changed and verified), ``checked`` (check
mode, the chain does not fail), ``failed`` (an error, a failing chain, or a change that did not
verify), ``rolled_back`` (apply failed and everything it did was undone), ``skipped`` (the
rollout stopped before this host). ``FleetReport.write`` saves the JSON document atomically;
:meth:`FleetReport.load` reads it back to resume a stopped rollout.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from sectigo_chain.display.richrepr import RichRepr
from sectigo_chain.errors import InputError

__all__ = [
    "PROGRESS_FORMAT",
    "REPORT_FORMAT",
    "ActionLine",
    "CertLine",
    "ChainCheck",
    "EntryLine",
    "FleetReport",
    "HostError",
    "HostRow",
    "HostStatus",
    "Mode",
    "Outcome",
    "ProgressLog",
    "progress_log_path",
]

REPORT_FORMAT: Literal["sectigo-chain-fleet-report/1"] = "sectigo-chain-fleet-report/1"
PROGRESS_FORMAT = "sectigo-chain-fleet-progress/1"
Mode = Literal["plan", "apply", "check"]
HostStatus = Literal[
    "planned", "applied", "unchanged", "checked", "failed", "rolled_back", "skipped"
]
CheckVerdict = Literal["pass", "warn", "fail", "error"]
ChainSource = Literal["tls", "sim-tls", "sim-model"]
DONE_STATUSES: frozenset[str] = frozenset({"applied", "unchanged"})
Outcome = Literal[
    "applied", "unchanged", "planned", "checked", "chain fails", "unreachable", "refused",
    "rolled back", "rollback incomplete", "error", "skipped",
]  # fmt: skip
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
"""Every outcome, in the order reports count them (good ones first)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CertLine(_Model):
    """One served certificate: enough to recognise it (no DER)."""

    common_name: str
    issuer: str
    thumbprint: str
    not_after: str


class ChainCheck(_Model):
    """The served chain of one host at one moment, and its verdict."""

    source: ChainSource
    endpoint: str
    verdict: CheckVerdict
    chain: tuple[CertLine, ...] = ()
    findings: tuple[str, ...] = ()
    profiles: dict[str, bool] = {}
    error: str | None = None

    def summary(self) -> str:
        """``PASS: leaf > issuing CA > cross-sign`` (or the error)."""
        if self.error:
            return f"{self.verdict.upper()}: {self.error}"
        names = " > ".join(c.common_name for c in self.chain) or "no certificate"
        return f"{self.verdict.upper()}: {names}"


class ActionLine(_Model):
    """One planned action: its kind and the reason the plan gives."""

    kind: str
    reason: str


class EntryLine(_Model):
    """One handshake against one HTTP.sys entry of the host's site, at one TLS version
    (``verify --entries``, :mod:`sectigo_chain.run.entries`): what it served before and after
    the per-entry ladder, and which rung fixed it."""

    entry: str
    kind: str
    handshake: str
    tls_version: str | None = None
    initial_verdict: str | None = None
    verdict: str | None = None
    fixed_by: str | None = None
    served: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in ("pass", "warn")

    def line(self) -> str:
        version = f"TLS {self.tls_version}" if self.tls_version else "-"
        state = self.verdict or "no handshake"
        fixed = f" (fixed by {self.fixed_by})" if self.fixed_by else ""
        why = f": {self.error}" if self.error and not self.ok else ""
        return f"{self.entry} {self.handshake} {version}: {state}{fixed}{why}"


class HostError(_Model):
    """Why a host failed: the error class, its (masked) message, whether it was unreachable."""

    type: str
    message: str
    unreachable: bool = False


class HostRow(_Model):
    """Everything the fleet learned about one host."""

    name: str
    target: str
    site: str = ""
    hostname: str | None = None
    status: HostStatus
    canary: bool = False
    batch: int | None = None
    before: ChainCheck | None = None
    actions: tuple[ActionLine, ...] = ()
    warnings: tuple[str, ...] = ()
    after: ChainCheck | None = None
    verify: CheckVerdict | None = None
    verify_notes: tuple[str, ...] = ()
    entries: tuple[EntryLine, ...] = ()  # --entries: one per HTTP.sys entry x handshake x TLS
    entry_rungs: tuple[str, ...] = ()  # the per-entry ladder's rungs, in order
    outbound: str | None = None  # the outbound self-test after a distrust: verdict and reason
    converged: bool | None = None
    changed: bool = False
    journal: str | None = None
    rolled_back: tuple[str, ...] = ()
    rollback_complete: bool | None = None
    error: HostError | None = None
    note: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    timings: dict[str, float] = {}
    definition: str | None = None  # ResolvedHost.definition() of the host that was run
    position: int | None = None  # the host's index in the inventory (orders merged shards)

    @property
    def ok(self) -> bool:
        """True for planned, applied, unchanged and checked hosts."""
        return self.status in ("planned", "applied", "unchanged", "checked")

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rolled_back")

    @property
    def unreachable(self) -> bool:
        return self.error is not None and self.error.unreachable

    @property
    def apply_failed(self) -> bool:
        """Apply started changing the host and failed (rolled back or not)."""
        return self.status == "rolled_back" or self.rollback_complete is False

    @property
    def stops_rollout(self) -> bool:
        """A change went wrong here: apply failed, or the result did not verify."""
        if self.apply_failed:
            return True
        return self.status == "failed" and self.verify is not None and self.verify != "pass"

    @property
    def outcome(self) -> Outcome:
        """What happened, with the kinds of failure told apart: ``chain fails`` (the served
        chain fails, or the host does not verify), ``unreachable``, ``refused`` (the plan would
        do harm without an override), ``rolled back``, ``rollback incomplete``, ``error``."""
        if self.status == "skipped":
            return "skipped"
        if self.rollback_complete is False:
            return "rollback incomplete"
        if self.status == "rolled_back":
            return "rolled back"
        if self.status != "failed":
            return self.status
        if self.error is not None:
            if self.error.unreachable:
                return "unreachable"
            return "refused" if self.error.type == "PlanRefused" else "error"
        return "chain fails"

    @property
    def remedy(self) -> str:
        """What to do about a failed host ("" when nothing is to be done or known)."""
        outcome = self.outcome
        if outcome == "unreachable":
            return "check the address, the WinRM listener or TLS port, and the credentials"
        if outcome == "refused":
            return "see the reason; the override is per host (allow_group_policy)"
        if outcome == "rolled back":
            return "nothing changed; fix the cause named above, then run apply again (--resume)"
        if outcome == "rollback incomplete":
            where = self.journal or "the journal"
            return f"restore by hand: sectigo-chain rollback {where}"
        if outcome == "chain fails":
            drift = next((w for w in self.warnings if "consider --strategy" in w), None)
            if drift is not None:
                advice = drift.split("consider ", 1)[1]
                return f"Automatic Root Update re-adds the root: apply again with {advice}"
            if self.after is not None and any("served" in n for n in self.verify_notes):
                return "rerun with --climb-ladder (re-bind/restart until the chain refreshes)"
            if self.status == "failed" and self.verify is None:
                return "plan and apply the fix on this host (sectigo-chain fleet apply)"
            return "see the verify notes; run sectigo-chain verify on this host"
        if outcome == "error":
            return "see the error; run the single-host command with -v for details"
        return ""

    @property
    def detail(self) -> str:
        """The error (``Type: message``) or the note, for one-line displays."""
        if self.error is not None:
            return f"{self.error.type}: {self.error.message}"
        return self.note or ""

    def line(self) -> str:
        """One terminal line: name, status, before -> after, actions, time, error or note."""
        before = self.before.verdict if self.before else "-"
        after = self.after.verdict if self.after else "-"
        total = self.timings.get("total")
        took = f"{total:.2f}s" if total is not None else "-"
        parts = [
            f"{self.name:<20} {self.status:<11} {before:>5} -> {after:<5}",
            f"{len(self.actions)} action(s)",
            took,
        ]
        if self.detail:
            parts.append(self.detail)
        if self.remedy:
            parts.append(f"-> {self.remedy}")
        from sectigo_chain.logs import escape_controls  # a remote error cannot forge lines

        return escape_controls("  ".join(parts))


class FleetReport(RichRepr, _Model):
    """The outcome of :func:`~sectigo_chain.fleet.rollout.run_fleet`: a row per host, in
    inventory order."""

    format: Literal["sectigo-chain-fleet-report/1"] = REPORT_FORMAT
    mode: Mode
    inventory: str | None = None
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    concurrency: int
    canary: bool
    batch_size: int | None
    stop_on_failure: bool
    stopped: bool = False
    stop_reason: str | None = None
    resumed_from: str | None = None
    complete: bool = True
    shard: str | None = None  # "K/N" when the run was one shard of a rollout (fleet.shard)
    hosts: tuple[HostRow, ...] = ()

    # ------------------------------------------------------------------ summaries

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        """Hosts per status (only statuses that occur); part of the JSON document."""
        return dict(Counter(h.status for h in self.hosts))

    @property
    def ok(self) -> bool:
        """Every host ended well and the rollout did not stop."""
        return not self.stopped and all(h.ok for h in self.hosts)

    @property
    def verdict(self) -> str:
        """``pass`` when :attr:`ok`, else ``fail`` (for displays)."""
        return "pass" if self.ok else "fail"

    def host(self, name: str) -> HostRow:
        for row in self.hosts:
            if row.name == name:
                return row
        raise KeyError(name)

    def exit_code(self) -> int:
        """The CLI's exit code: 0 all well, 4 an apply failed, 3 every host unreachable,
        1 otherwise (a chain problem, a failed host, a stopped rollout)."""
        if self.ok:
            return 0
        if any(h.apply_failed for h in self.hosts):
            return 4
        tried = [h for h in self.hosts if h.status != "skipped"]
        if tried and all(h.unreachable for h in tried):
            return 3
        return 1

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """The JSON document (``--json`` and ``--report``)."""
        return self.model_dump(mode="json")

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON document atomically (temp file, fsync, rename). It is compact JSON
        (fast for thousands of hosts); ``python -m json.tool`` pretty-prints it."""
        target = Path(path)
        data = self.model_dump_json().encode("utf-8")
        tmp = target.with_name(target.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise InputError(f"cannot write the fleet report {target}: {exc.strerror}") from None
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FleetReport:
        """Read a report written by :meth:`write` (to resume from it)."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(
                f"fleet report {p} not found; pass the report a rollout wrote"
            ) from None
        except (OSError, ValueError) as exc:
            raise InputError(f"fleet report {p} is unreadable: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
            raise InputError(f"{p} is not a sectigo-chain fleet report ({REPORT_FORMAT})")
        doc.pop("counts", None)
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise InputError(
                f"fleet report {p} is damaged: {exc.error_count()} problem(s)"
            ) from None

    # ------------------------------------------------------------------ rendering

    def outcome_counts(self) -> dict[str, int]:
        """Hosts per :attr:`HostRow.outcome` (failure kinds apart), in :data:`OUTCOMES` order,
        only outcomes that occur."""
        counted = Counter(h.outcome for h in self.hosts)
        return {o: counted[o] for o in OUTCOMES if counted[o]}  # type: ignore[index]

    def summary_line(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        state = f"STOPPED: {self.stop_reason}" if self.stopped else ("OK" if self.ok else "FAIL")
        return f"fleet {self.mode}: {len(self.hosts)} host(s) ({counts}); {state}"

    def __str__(self) -> str:
        lines = [self.summary_line()]
        for row in self.hosts:
            lines.append("  " + row.line())
            lines += [f"      entry {e.line()}" for e in row.entries]
        return "\n".join(lines)

    def to_html(self) -> str:
        """A standalone HTML page (inline CSS, no scripts or external assets, all escaped)."""
        from sectigo_chain.display.fleet_html import report_page

        return report_page(self)


def progress_log_path(report_path: str | os.PathLike[str]) -> Path:
    """The append-only log of finished hosts kept beside a fleet report (``REPORT.hosts.jsonl``)."""
    target = Path(report_path)
    return target.with_name(target.name + ".hosts.jsonl")


class ProgressLog:
    """Append-only, fsync'd log of finished host rows, one JSON line each, kept beside the report.

    The report itself is rewritten atomically now and then; this log gets every row the moment
    its host finishes, so a rollout killed at any point (even ``kill -9``) leaves every finished
    host on disk for ``--resume``. The first line names the format and the mode; a torn last
    line (a kill during a write) is ignored when read.
    """

    def __init__(self, path: Path, mode: Mode) -> None:
        self.path = path
        try:
            self._fh = open(path, "wb")  # noqa: SIM115 (kept open for the whole run)
        except OSError as exc:
            raise InputError(
                f"cannot write the fleet progress log {path}: {exc.strerror}"
            ) from None
        self._write(json.dumps({"format": PROGRESS_FORMAT, "mode": mode}).encode("utf-8"))

    def _write(self, line: bytes) -> None:
        self._fh.write(line + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, row: HostRow) -> None:
        self._write(row.model_dump_json().encode("utf-8"))

    def close(self) -> None:
        self._fh.close()

    @staticmethod
    def read(path: Path) -> tuple[Mode | None, dict[str, HostRow]]:
        """The mode and the newest row per host name of a log (empty when there is none)."""
        try:
            lines = path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return None, {}
        except OSError as exc:
            raise InputError(f"fleet progress log {path} is unreadable: {exc.strerror}") from None
        mode: Mode | None = None
        rows: dict[str, HostRow] = {}
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                if number == 0:
                    if not isinstance(doc, dict) or doc.get("format") != PROGRESS_FORMAT:
                        raise InputError(f"{path} is not a sectigo-chain fleet progress log")
                    mode = doc["mode"]
                    continue
                row = HostRow.model_validate(doc)
            except (ValueError, KeyError, ValidationError):
                if number == len(lines) - 1 or (number == len(lines) - 2 and not lines[-1]):
                    break  # a torn last line: the process died while writing it
                raise InputError(
                    f"fleet progress log {path} is damaged at line {number + 1}"
                ) from None
            rows[row.name] = row
        return mode, rows
