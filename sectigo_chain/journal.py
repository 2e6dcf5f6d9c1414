"""The apply journal and :func:`rollback`.

The journal is one JSON file, rewritten (mode 0600, flushed and fsync'd, then atomically
renamed) before and after every step. It holds the plan (no secrets), and per step the
template, its non-secret parameters, the backup taken from the observed state before the step
(DER, store, physical store, friendly name; the previous binding; the previous policy value)
and its status. It never holds the PFX or its password.

Every inverse is itself an idempotent template run, so :func:`rollback` can undo a step whose
outcome is unknown (a dropped connection): undoing something that did not happen changes
nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from sectigo_chain.errors import ExecutionError, InputError, TemplateError
from sectigo_chain.executors import Executor
from sectigo_chain.retry import RetryPolicy, run_script

__all__ = ["JOURNAL_FORMAT", "Journal", "RollbackResult", "rollback", "undo_steps"]

JOURNAL_FORMAT = "sectigo-chain-journal/1"
_SECRET_KEYS = {"password", "pfx_b64", "pfx", "pfx_password"}


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("**********" if k in _SECRET_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


class Journal:
    """A journal file being written by apply (or read by rollback)."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc

    @classmethod
    def create(cls, path: Path, target: str, plan_doc: dict[str, Any]) -> Journal:
        doc = {
            "format": JOURNAL_FORMAT,
            "target": target,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "status": "in_progress",
            "plan": _scrub(plan_doc),
            "steps": [],
            "rollback": [],
        }
        journal = cls(path, doc)
        try:
            journal.write()
        except OSError as exc:
            # Before any change: without a journal nothing is done (no change without backup).
            raise InputError(
                f"cannot write the journal {path}: {exc.strerror}; nothing was changed "
                "(pass --journal-dir DIR, an existing writable folder)"
            ) from None
        return journal

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Journal:
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"journal {p} not found; pass the path apply printed") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"journal {p} is unreadable ({exc}); it cannot be replayed") from None
        if not isinstance(doc, dict) or doc.get("format") != JOURNAL_FORMAT:
            raise InputError(f"{p} is not a sectigo-chain journal ({JOURNAL_FORMAT})")
        return cls(p, doc)

    @property
    def steps(self) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.doc["steps"]
        return steps

    def write(self) -> None:
        """Write the whole journal durably: temp file 0600, fsync, rename, fsync the folder."""
        data = json.dumps(_scrub(self.doc), indent=2, sort_keys=True).encode("utf-8")
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):  # not every platform can fsync a directory
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def _restore(backup: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Template runs that put a backed-up certificate back into its store."""
    loc, store, phys = backup["store_location"], backup["store_name"], backup.get("physical_store")
    dest_store = "AuthRoot" if phys == ".AuthRoot" else store
    direct = {
        "der_b64": backup["der_b64"],
        "thumbprint": backup["thumbprint"],
        "store_location": loc,
        "store_name": dest_store,
        "friendly_name": backup.get("friendly_name") or None,
    }
    from sectigo_chain.templates import render

    try:
        render("import_certificate", direct)
    except TemplateError:
        pass
    else:
        return [("import_certificate", direct)]
    # import_certificate writes only LocalMachine's default physical stores: stage the copy
    # there and move it (move_certificate reaches CurrentUser and LocalMachine\AuthRoot).
    staging = store if loc != "LocalMachine" and store != "Root" else "CA"
    return [("restore_staged", {**direct, "staging": staging})]


def undo_steps(step: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The template runs that undo one journal step (each idempotent)."""
    t, p = step["template"], step["params"]
    if t in ("import_certificate", "import_pfx", "disallow_certificate"):
        store = "Disallowed" if t == "disallow_certificate" else p["store_name"]
        return [
            (
                "remove_certificate",
                {"thumbprint": p["thumbprint"], "store_location": "LocalMachine",
                 "store_name": store, "physical_store": ".Default"},
            )
        ]  # fmt: skip
    if t == "remove_certificate":
        return _restore(step["backup"])
    if t == "move_certificate":
        back = {
            "thumbprint": p["thumbprint"],
            "from_location": p["to_location"],
            "from_store": p["to_store"],
            "to_location": p["from_location"],
            "to_store": p["from_store"],
            "remove_source": True,
        }
        return [("move_certificate", back)]
    if t == "set_root_auto_update":
        return [("set_root_auto_update", {"disabled": step.get("previous_value")})]
    if t == "set_binding":
        prev = step.get("previous_binding")
        key = {"site": p["site"], "ip": p["ip"], "port": p["port"], "host": p["host"]}
        if prev is None or not prev.get("certificate_hash"):
            return [("remove_binding", key)]
        new_flags = (prev["ssl_flags"] | p["ssl_flags_set"]) & ~p["ssl_flags_clear"]
        return [
            (
                "set_binding",
                {**key, "thumbprint": prev["certificate_hash"],
                 "store_name": prev.get("certificate_store") or "My",
                 "ssl_flags_set": prev["ssl_flags"] & ~new_flags,
                 "ssl_flags_clear": new_flags & ~prev["ssl_flags"]},
            )
        ]  # fmt: skip
    return []  # restart: nothing to undo (rollback restarts at the end if one ran)


class RollbackResult(BaseModel):
    """What :func:`rollback` undid."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journal: str
    undone: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    restarted: bool = False

    @property
    def complete(self) -> bool:
        return not self.errors


def _lm_stores_holding(
    executor: Executor, thumb: str, timeout: float, pol: RetryPolicy
) -> set[str]:
    from sectigo_chain.templates import render

    result = run_script(executor, render("observe", {}), timeout=timeout, policy=pol)
    return {
        c["store_name"]
        for c in (result.data or {}).get("certificates", [])
        if c["thumbprint"] == thumb and c["store_location"] == "LocalMachine"
    }


def _run_undo(
    executor: Executor, template: str, params: dict[str, Any], timeout: float, pol: RetryPolicy
) -> None:
    from sectigo_chain.templates import render

    if template == "restore_staged":
        # Stage a copy (with the backed-up friendly name) in a LocalMachine store that does not
        # hold the certificate, then move it into place. Only if every candidate holds it
        # already, copy from an existing one (its friendly name may differ).
        p = dict(params)
        preferred = p.pop("staging")
        holding = _lm_stores_holding(executor, p["thumbprint"], timeout, pol)
        free = [s for s in (preferred, "CA", "My", "WebHosting") if s not in holding]
        staging = free[0] if free else preferred
        steps: list[tuple[str, dict[str, Any]]] = []
        if free:
            staged = {**p, "store_location": "LocalMachine", "store_name": staging}
            steps.append(("import_certificate", staged))
        move = {
            "thumbprint": p["thumbprint"],
            "from_location": "LocalMachine",
            "from_store": staging,
            "to_location": p["store_location"],
            "to_store": p["store_name"],
            "remove_source": bool(free),
        }
        for t, q in [*steps, ("move_certificate", move)]:
            _run_undo(executor, t, q, timeout, pol)
        return
    result = run_script(executor, render(template, params), timeout=timeout, policy=pol)
    if not result.ok:
        message = (result.error or {}).get("message") or "; ".join(result.errors) or "failed"
        raise ExecutionError(f"{template}: {message}", host=executor.target, script=template)


def rollback(
    journal: str | os.PathLike[str] | Journal,
    executor: Executor,
    *,
    timeout: float = 120.0,
    retry: RetryPolicy | None = None,
) -> RollbackResult:
    """Undo, in reverse order, every step of a journal that ran or may have run."""
    j = journal if isinstance(journal, Journal) else Journal.load(journal)
    if j.doc.get("target") not in (None, executor.target):
        raise InputError(
            f"journal {j.path} is for {j.doc['target']}, not {executor.target}; "
            "roll it back against the host it was written for"
        )
    pol = retry or RetryPolicy()
    undone: list[str] = []
    errors: list[str] = []
    restarts = [s for s in j.steps if s["template"] == "restart" and s["status"] == "done"]
    for step in reversed(j.steps):
        if step["status"] not in ("running", "done", "failed"):
            continue
        label = f"step {step['index'] + 1} ({step['kind']})"
        try:
            for template, params in undo_steps(step):
                _run_undo(executor, template, params, timeout, pol)
        except (ExecutionError, TemplateError) as exc:
            errors.append(f"{label}: {exc}")
            j.doc["rollback"].append({"step": step["index"], "ok": False, "error": str(exc)})
            j.write()
            continue
        step["status"] = "rolled_back"
        undone.append(label)
        j.doc["rollback"].append({"step": step["index"], "ok": True})
        j.write()
    restarted = False
    if restarts and not errors:
        try:
            _run_undo(executor, "restart", restarts[-1]["params"], timeout, pol)
            restarted = True
        except (ExecutionError, TemplateError) as exc:
            errors.append(f"restart after rollback: {exc}")
    j.doc["status"] = "rolled_back" if not errors else "rollback_incomplete"
    j.write()
    return RollbackResult(
        journal=str(j.path), undone=tuple(undone), errors=tuple(errors), restarted=restarted
    )
