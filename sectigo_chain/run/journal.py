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

The journal also holds ``before``: the state apply observed before its first step (written
once, with the plan). :func:`rollback` validates the whole document first
(:mod:`sectigo_chain.run.journal_schema`; a damaged journal is refused before the first undo),
journals each undone step (and where it stages a certificate it restores) so that an
interrupted rollback resumes step by step, restarts IIS when a step that changes what is
served may have run, and ends by comparing the host with ``before``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from sectigo_chain.errors import ExecutionError, InputError, TemplateError
from sectigo_chain.hosts.base import Executor
from sectigo_chain.hosts.retry import RetryPolicy, run_script
from sectigo_chain.run.journal_schema import (
    JournalDocument,
    describe_validation_error,
    state_differences,
)
from sectigo_chain.state.models import ObservedState

__all__ = [
    "JOURNAL_FORMAT",
    "Journal",
    "RollbackResult",
    "rollback",
    "undo_steps",
    "validate_journal",
]

JOURNAL_FORMAT = "sectigo-chain-journal/1"
_SECRET_KEYS = {"password", "pfx_b64", "pfx", "pfx_password"}


# Written with every write but never changed after creation: serialised once.
_WRITTEN_ONCE = ("before", "plan")
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
        self._once: dict[str, tuple[Any, bytes]] = {}  # key -> (the object, its JSON text)
        self._dir_fd: int | None = None  # the folder, opened once to fsync it after renames
        self._dir_tried = False

    @classmethod
    def create(
        cls,
        path: Path,
        target: str,
        plan_doc: dict[str, Any],
        steps: list[dict[str, Any]] | None = None,
        *,
        before: dict[str, Any] | None = None,
    ) -> Journal:
        """Write a new journal (the plan and ``steps``' records) before anything is changed.

        ``before``: the state observed when apply starts (an ``ObservedState`` document);
        rollback compares the host with it at its end."""
        doc: dict[str, Any] = {
            "format": JOURNAL_FORMAT,
            "target": target,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "status": "in_progress",
            "plan": plan_doc,
            "steps": list(steps or ()),
            "rollback": [],
        }
        if before is not None:
            doc["before"] = before
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
        """The journal as written: compact UTF-8 JSON, secrets scrubbed, ``before`` and
        ``plan`` last. Those two are serialised once (they do not change after creation;
        another object is serialised anew)."""
        tail = []
        for key in _WRITTEN_ONCE:
            if key in self.doc:
                value = self.doc[key]
                cached = self._once.get(key)
                if cached is None or cached[0] is not value:
                    cached = self._once[key] = (value, _dumps(value))
                tail.append(b'"' + key.encode() + b'":' + cached[1])
        rest = _dumps({k: v for k, v in self.doc.items() if k not in _WRITTEN_ONCE})
        if not tail:
            return rest
        return (b"{" if rest == b"{}" else rest[:-1] + b",") + b",".join(tail) + b"}"

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
        remove = [
            (
                "remove_certificate",
                {"thumbprint": p["thumbprint"], "store_location": "LocalMachine",
                 "store_name": store, "physical_store": ".Default"},
            )
        ]  # fmt: skip
        if t == "import_pfx" and step.get("backup"):
            # The import replaced a copy that was there without its key: put that copy back
            # (removing it was not this step's doing).
            return remove + _restore(step["backup"])
        return remove
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
        if p.get("with_key"):
            back["with_key"] = True
        return [("move_certificate", back)]
    if t == "set_root_auto_update":
        return [("set_root_auto_update", {"disabled": step.get("previous_value")})]
    if t == "set_binding":
        prev = step.get("previous_binding")
        key = {"site": p["site"], "ip": p["ip"], "port": p["port"], "host": p["host"]}
        if prev is not None and not prev.get("certificate_hash") and prev["ssl_flags"] & 2:
            # A Central Certificate Store binding (no hash of its own): give it its flags
            # back; the hash is ignored again once the CCS bit is set.
            new_flags = (prev["ssl_flags"] | p["ssl_flags_set"]) & ~p["ssl_flags_clear"]
            return [
                (
                    "set_binding",
                    {**key, "thumbprint": p["thumbprint"], "store_name": p["store_name"],
                     "ssl_flags_set": prev["ssl_flags"] & ~new_flags,
                     "ssl_flags_clear": new_flags & ~prev["ssl_flags"]},
                )
            ]  # fmt: skip
        if prev is None or not prev.get("certificate_hash"):
            undo = [("remove_binding", key)]
            shared = step.get("shared_binding")
            if shared and shared.get("certificate_hash"):
                # The new binding took over an IP:port entry another binding uses: removing
                # it leaves the entry pointing at the new certificate; give it back its own.
                undo.append(
                    (
                        "set_binding",
                        {"site": shared["site"], "ip": shared["ip"], "port": shared["port"],
                         "host": shared["host"], "thumbprint": shared["certificate_hash"],
                         "store_name": shared.get("certificate_store") or "My",
                         "ssl_flags_set": 0, "ssl_flags_clear": 0},
                    )
                )  # fmt: skip
            return undo
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
    if t == "rebuild_ccs_pfx":
        # The original was copied to backup_path before the file was rewritten: copy it back
        # (nothing happens when the backup was never made). No secret is needed.
        return [("restore_ccs_pfx", {"path": p["path"], "backup_path": p["backup_path"]})]
    return []  # restart: nothing to undo (rollback restarts at the end if one ran)


class RollbackResult(BaseModel):
    """What :func:`rollback` undid, and how the host compares with the journal's ``before``
    snapshot (``checked``: it was compared; ``differences``: what still differs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journal: str
    undone: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    restarted: bool = False
    checked: bool = False
    differences: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        lines = [f"Rollback of {self.journal}: {state}"]
        lines += [f"  undone: {step}" for step in self.undone]
        lines += [f"  could not undo: {error}" for error in self.errors]
        if self.restarted:
            lines.append("  IIS restarted")
        return "\n".join(lines)


# Step statuses of a step that ran or may have run (rollback undoes it).
_RAN = ("running", "done", "failed")
# Kinds of step that change what HTTP.sys serves once they ran: the restart rebuilds the chain
# it caches; a binding changes the certificate of its entry; an imported PFX or a moved leaf
# makes a bound certificate usable. A store change alone reaches clients at the next restart.
_CHANGES_SERVED = ("restart", "set_binding", "import_pfx", "move_leaf")


def _observe_state(executor: Executor, timeout: float, pol: RetryPolicy) -> ObservedState:
    from sectigo_chain.templates.render import render

    result = run_script(executor, render("observe", {}), timeout=timeout, policy=pol)
    if not result.ok or not isinstance(result.data, dict):
        message = (result.error or {}).get("message") or "; ".join(result.errors) or "no data"
        raise ExecutionError(f"observe: {message}", host=executor.target, script="observe")
    from sectigo_chain.run.ccs import observe_ccs  # the CCS files' SHA-256 (no password)

    observed = ObservedState.model_validate(result.data)
    return observe_ccs(executor, observed, timeout=timeout, retry=pol)


def _lm_stores_holding(
    executor: Executor, thumb: str, timeout: float, pol: RetryPolicy
) -> set[str]:
    return {
        c.store_name
        for c in _observe_state(executor, timeout, pol).certificates
        if c.thumbprint == thumb and c.store_location == "LocalMachine"
    }


def _run_undo(
    executor: Executor,
    template: str,
    params: dict[str, Any],
    timeout: float,
    pol: RetryPolicy,
    step: dict[str, Any] | None = None,
    save: Callable[[], None] | None = None,
) -> None:
    from sectigo_chain.templates.render import render

    if template == "restore_staged":
        # Stage a copy (with the backed-up friendly name) in a LocalMachine store that does not
        # hold the certificate, then move it into place. Only if every candidate holds it
        # already, copy from an existing one (its friendly name may differ). The choice is
        # journaled (``step["staging"]``) before the copy is made: a rollback interrupted
        # between the copy and the move, then resumed, moves that same copy (a fresh choice
        # would see the staging store holding it and leave it there).
        p = dict(params)
        preferred = p.pop("staging")
        chosen = (step or {}).get("staging")
        if chosen is None:
            holding = _lm_stores_holding(executor, p["thumbprint"], timeout, pol)
            free = [s for s in (preferred, "CA", "My", "WebHosting") if s not in holding]
            chosen = {"store": free[0] if free else preferred, "free": bool(free)}
            if step is not None:
                step["staging"] = chosen
                if save is not None:
                    save()
        staging, made = str(chosen["store"]), bool(chosen["free"])
        steps: list[tuple[str, dict[str, Any]]] = []
        if made:
            staged = {**p, "store_location": "LocalMachine", "store_name": staging}
            steps.append(("import_certificate", staged))
        move = {
            "thumbprint": p["thumbprint"],
            "from_location": "LocalMachine",
            "from_store": staging,
            "to_location": p["store_location"],
            "to_store": p["store_name"],
            "remove_source": made,
        }
        for t, q in [*steps, ("move_certificate", move)]:
            _run_undo(executor, t, q, timeout, pol)
        return
    result = run_script(executor, render(template, params), timeout=timeout, policy=pol)
    if not result.ok:
        message = (result.error or {}).get("message") or "; ".join(result.errors) or "failed"
        raise ExecutionError(f"{template}: {message}", host=executor.target, script=template)


def validate_journal(journal: Journal) -> JournalDocument:
    """The journal's document, validated whole; :class:`InputError` (one line) if damaged.

    Beyond the model: every inverse a rollback would run must render (its payload is valid),
    so that a damaged step is found before the first undo, not half-way through."""
    from sectigo_chain.templates.render import render

    try:
        model = JournalDocument.model_validate(journal.doc)
    except ValidationError as exc:
        raise InputError(
            f"journal {journal.path} is damaged ({describe_validation_error(exc)}); nothing was "
            "undone: restore the journal file apply wrote, or roll back by hand from its steps"
        ) from None
    for step in journal.steps:
        if step["status"] not in _RAN:
            continue
        try:
            for template, params in undo_steps(step):
                if template == "restore_staged":  # as _run_undo runs it, staged in CA
                    p = {k: v for k, v in params.items() if k != "staging"}
                    render("import_certificate", {**p, "store_location": "LocalMachine",
                                                  "store_name": "CA"})  # fmt: skip
                    render("move_certificate", {
                        "thumbprint": p["thumbprint"], "from_location": "LocalMachine",
                        "from_store": "CA", "to_location": p["store_location"],
                        "to_store": p["store_name"], "remove_source": True,
                    })  # fmt: skip
                else:
                    render(template, params)
        except TemplateError as exc:
            raise InputError(
                f"journal {journal.path} is damaged (step {step['index'] + 1}: its undo does "
                f"not render: {exc}); nothing was undone"
            ) from None
    return model


def rollback(
    journal: str | os.PathLike[str] | Journal,
    executor: Executor,
    *,
    timeout: float = 120.0,
    retry: RetryPolicy | None = None,
) -> RollbackResult:
    """Undo, in reverse order, every step of a journal that ran or may have run.

    The whole journal is validated first (a damaged one is refused before the first undo).
    Each undone step is journaled as ``rolled_back``, so an interrupted rollback resumes
    where it stopped; every inverse is idempotent, so a step undone but not yet journaled is
    undone again harmlessly. IIS is restarted at the end whenever a step that changes what
    is served may have run (and the journal holds a restart step, whose mode is used). Last,
    the host is observed again and compared with the journal's ``before`` snapshot: any
    difference makes the rollback incomplete."""
    if not isinstance(journal, Journal):
        loaded = Journal.load(journal)
        try:
            return rollback(loaded, executor, timeout=timeout, retry=retry)
        finally:
            loaded.close()
    j = journal
    document = validate_journal(j)
    if document.target not in (None, executor.target):
        raise InputError(
            f"journal {j.path} is for {document.target}, not {executor.target}; "
            "roll it back against the host it was written for"
        )
    pol = retry or RetryPolicy()
    undone: list[str] = []
    errors: list[str] = []
    for step in reversed(j.steps):
        # "not_run": the step was refused before it reached the host (its payload did not
        # validate): there is nothing to undo, and undoing it would fail the same way.
        if step["status"] not in _RAN:
            continue
        label = f"step {step['index'] + 1} ({step['kind']})"
        try:
            for template, params in undo_steps(step):
                _run_undo(executor, template, params, timeout, pol, step, j.write)
        except (ExecutionError, TemplateError) as exc:
            errors.append(f"{label}: {exc}")
            j.doc["rollback"].append({"step": step["index"], "ok": False, "error": str(exc)})
            j.write()
            continue
        step["status"] = "rolled_back"
        undone.append(label)
        j.doc["rollback"].append({"step": step["index"], "ok": True})
        if step["kind"] in _CHANGES_SERVED:
            j.doc["rollback_restarted"] = False  # served state changed: a restart is due
        j.write()
    restarted = False
    restarts = [s for s in j.steps if s["template"] == "restart"]
    served = [
        s for s in j.steps if s["kind"] in _CHANGES_SERVED and s["status"] in (*_RAN, "rolled_back")
    ]
    if restarts and served and not errors and not j.doc.get("rollback_restarted"):
        try:
            _run_undo(executor, "restart", restarts[-1]["params"], timeout, pol)
        except (ExecutionError, TemplateError) as exc:
            errors.append(f"restart after rollback: {exc}")
        else:
            restarted = True
            j.doc["rollback_restarted"] = True
            j.write()
    checked = False
    differences: list[str] = []
    if not errors and document.before is not None:
        try:
            now = _observe_state(executor, timeout, pol)
        except ExecutionError as exc:
            errors.append(f"could not observe the host to check the rollback: {exc}")
        else:
            checked = True
            differences = state_differences(document.before, now)
            if differences:
                shown = "; ".join(differences[:5])
                more = f" (and {len(differences) - 5} more)" if len(differences) > 5 else ""
                errors.append(f"the host differs from before apply: {shown}{more}")
    j.doc["status"] = "rolled_back" if not errors else "rollback_incomplete"
    j.write()
    return RollbackResult(
        journal=str(j.path),
        undone=tuple(undone),
        errors=tuple(errors),
        restarted=restarted,
        checked=checked,
        differences=tuple(differences),
    )
