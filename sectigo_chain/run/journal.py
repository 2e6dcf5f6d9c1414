"""The apply journal and :func:`rollback`.

The journal is one JSON file, rewritten (mode 0600, flushed and fsync'd, then atomically
renamed, then the folder fsync'd) before every step. It holds the plan (no secrets), and per
step the template, its non-secret parameters, the backup taken from the observed state before
the step (DER, store, physical store, friendly name; the previous binding; the previous policy
value) and its status. It never holds the PFX or its password: every write checks the
serialised text for the secret keys and scrubs them if any is there.

The text is compact UTF-8 JSON (pydantic-core's serialiser); the plan, which does not
change once apply starts, is serialised once. :func:`sectigo_chain.run.applier.apply` writes the
journal ``n + 1`` times for ``n`` steps: before step 1 (the plan, every step's backup, step 1
``running``), before each further step (the previous step ``done`` with its result, this one
``running``), and after the last (``done``, status ``applied``); a failure adds one
(``failed``) before the rollback, which writes after each step it undoes and at its end.

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
from pydantic_core import PydanticSerializationError, to_json

from sectigo_chain.errors import ExecutionError, InputError, TemplateError
from sectigo_chain.hosts.base import Executor
from sectigo_chain.hosts.retry import RetryPolicy, run_script

__all__ = ["JOURNAL_FORMAT", "Journal", "RollbackResult", "rollback", "undo_steps"]

JOURNAL_FORMAT = "sectigo-chain-journal/1"
_SECRET_KEYS = {"password", "pfx_b64", "pfx", "pfx_password"}


_SECRET_MARKERS = tuple(f'"{key}":'.encode() for key in sorted(_SECRET_KEYS))


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("**********" if k in _SECRET_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _encode(value: Any) -> bytes:
    try:  # pydantic-core's serialiser: several times faster than json on base64-heavy text
        return to_json(value)
    except PydanticSerializationError:  # e.g. a lone surrogate from a host's JSON
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON without secrets. A secret key shows in the text as ``"key":`` (a
    string holding those characters is escaped as ``\\"key\\":``), so the cheap check on the
    text finds every one; only then is the value scrubbed and dumped again."""
    data = _encode(value)
    if any(marker in data for marker in _SECRET_MARKERS):
        data = _encode(_scrub(value))
    return data


class Journal:
    """A journal file being written by apply (or read by rollback)."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc
        self._plan: tuple[Any, bytes] | None = None  # (the plan object, its JSON text)
        self._dir_fd: int | None = None  # the folder, opened once to fsync it after renames
        self._dir_tried = False

    @classmethod
    def create(
        cls,
        path: Path,
        target: str,
        plan_doc: dict[str, Any],
        steps: list[dict[str, Any]] | None = None,
    ) -> Journal:
        """Write a new journal (the plan and ``steps``' records) before anything is changed."""
        doc = {
            "format": JOURNAL_FORMAT,
            "target": target,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "status": "in_progress",
            "plan": plan_doc,
            "steps": list(steps or ()),
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
        except (OSError, ValueError, RecursionError) as exc:
            raise InputError(f"journal {p} is unreadable ({exc}); it cannot be replayed") from None
        if not isinstance(doc, dict) or doc.get("format") != JOURNAL_FORMAT:
            raise InputError(f"{p} is not a sectigo-chain journal ({JOURNAL_FORMAT})")
        return cls(p, doc)

    @property
    def steps(self) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.doc["steps"]
        return steps

    def text(self) -> bytes:
        """The journal as written: compact UTF-8 JSON, secrets scrubbed, ``plan`` last. The
        plan is serialised once (it does not change after creation; another plan object is
        serialised anew)."""
        plan = self.doc.get("plan")
        if self._plan is None or self._plan[0] is not plan:
            self._plan = (plan, _dumps(plan))
        rest = _dumps({k: v for k, v in self.doc.items() if k != "plan"})
        if "plan" not in self.doc:
            return rest
        return (b"{" if rest == b"{}" else rest[:-1] + b",") + b'"plan":' + self._plan[1] + b"}"

    def write(self) -> None:
        """Write the whole journal durably: temp file 0600, fsync, rename, fsync the folder.

        Plain ``os`` calls (six system calls; the folder stays open until :meth:`close`):
        under a fleet's threads every call that releases the GIL is a thread switch."""
        data = self.text()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, self.path)
        if not self._dir_tried:
            self._dir_tried = True
            with contextlib.suppress(OSError):  # not every platform can open a directory
                self._dir_fd = os.open(self.path.parent, os.O_RDONLY)
        if self._dir_fd is not None:
            with contextlib.suppress(OSError):  # not every platform can fsync a directory
                os.fsync(self._dir_fd)

    def close(self) -> None:
        """Close the folder kept open for fsync (writing again reopens it)."""
        fd, self._dir_fd, self._dir_tried = self._dir_fd, None, False
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit os may be gone already
            self.close()


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
    from sectigo_chain.templates.render import render

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
    from sectigo_chain.templates.render import render

    result = run_script(executor, render("observe", {}), timeout=timeout, policy=pol)
    return {
        c["store_name"]
        for c in (result.data or {}).get("certificates", [])
        if c["thumbprint"] == thumb and c["store_location"] == "LocalMachine"
    }


def _run_undo(
    executor: Executor, template: str, params: dict[str, Any], timeout: float, pol: RetryPolicy
) -> None:
    from sectigo_chain.templates.render import render

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
    if not isinstance(journal, Journal):
        loaded = Journal.load(journal)
        try:
            return rollback(loaded, executor, timeout=timeout, retry=retry)
        finally:
            loaded.close()
    j = journal
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
