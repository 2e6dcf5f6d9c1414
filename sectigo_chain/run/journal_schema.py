"""The journal document as a pydantic model, and the check of a rolled-back host.

:func:`validate_journal` checks a whole journal document before :func:`~sectigo_chain.run.
journal.rollback` undoes anything: the top-level fields, every step (its index, kind, template,
status, and what the inverse of its template reads: the parameters, the backup of a removed
certificate, the previous binding, the previous policy value) and the rollback records. A
damaged journal (a field missing, ``null`` or of the wrong JSON type; a step out of order)
is refused with one line naming the first problem, before the first undo, never with a
``KeyError`` or ``TypeError`` half-way through. Fields the model does not know are kept
(``extra="allow"``): later versions add fields at apply time.

:func:`state_differences` compares the state observed after a rollback with the journal's
``before`` snapshot (the state observed when apply started).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from sectigo_chain.state.models import ObservedState
from sectigo_chain.state.plan_models import ActionKind

__all__ = [
    "JournalDocument",
    "JournalStep",
    "describe_validation_error",
    "state_differences",
]

StepStatus = Literal["pending", "running", "done", "failed", "not_run", "rolled_back"]
JournalStatus = Literal["in_progress", "failed", "applied", "rolled_back", "rollback_incomplete"]
StepTemplate = Literal[
    "import_certificate",
    "import_pfx",
    "disallow_certificate",
    "remove_certificate",
    "move_certificate",
    "set_root_auto_update",
    "set_binding",
    "restart",
    "rebuild_ccs_pfx",
]


class _Open(BaseModel):
    """Strict JSON types; unknown fields kept (added by later versions)."""

    model_config = ConfigDict(extra="allow")


class CertBackupRecord(_Open):
    """A removed certificate, as the journal keeps it (what its restore reads)."""

    der_b64: StrictStr = Field(min_length=1)
    thumbprint: StrictStr = Field(min_length=1)
    store_location: StrictStr
    store_name: StrictStr
    physical_store: StrictStr | None = None
    friendly_name: StrictStr | None = None


class BindingRecordDoc(_Open):
    """A binding as the journal keeps it (``previous_binding``, ``shared_binding``)."""

    site: StrictStr
    ip: StrictStr
    port: StrictInt
    host: StrictStr
    ssl_flags: StrictInt
    certificate_hash: StrictStr | None = None
    certificate_store: StrictStr | None = None


class _CertParams(_Open):
    thumbprint: StrictStr = Field(min_length=1)


class _StoreParams(_CertParams):
    store_name: StrictStr


class _MoveParams(_CertParams):
    from_location: StrictStr
    from_store: StrictStr
    to_location: StrictStr
    to_store: StrictStr
    with_key: StrictBool = False


class _BindingParams(_Open):
    site: StrictStr
    ip: StrictStr
    port: StrictInt
    host: StrictStr
    thumbprint: StrictStr
    store_name: StrictStr
    ssl_flags_set: StrictInt
    ssl_flags_clear: StrictInt


class _RestartParams(_Open):
    mode: StrictStr


class _NoParams(_Open):
    pass


class _CcsParams(_Open):
    path: StrictStr = Field(min_length=1)
    backup_path: StrictStr = Field(min_length=1)


_PARAMS: dict[str, type[_Open]] = {
    "import_certificate": _StoreParams,
    "import_pfx": _StoreParams,
    "disallow_certificate": _CertParams,
    "remove_certificate": _NoParams,
    "move_certificate": _MoveParams,
    "set_root_auto_update": _NoParams,
    "set_binding": _BindingParams,
    "restart": _RestartParams,
    "rebuild_ccs_pfx": _CcsParams,
}


class StagingRecord(_Open):
    """Where a rollback staged a copy of a certificate it restores (see ``_run_undo``)."""

    store: StrictStr
    free: StrictBool


class JournalStep(_Open):
    """One step of the journal."""

    index: StrictInt = Field(ge=0)
    kind: ActionKind
    reason: StrictStr = ""
    template: StepTemplate
    params: dict[str, Any]
    backup: CertBackupRecord | None = None
    previous_binding: BindingRecordDoc | None = None
    shared_binding: BindingRecordDoc | None = None
    previous_value: StrictBool | None = None
    status: StepStatus
    error: StrictStr | None = None
    changed: StrictBool | None = None
    data: Any = None
    staging: StagingRecord | None = None

    @model_validator(mode="after")
    def _what_the_inverse_reads(self) -> JournalStep:
        try:
            _PARAMS[self.template].model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(f"params.{describe_validation_error(exc)}") from None
        undone = self.status in ("running", "done", "failed")  # what rollback undoes
        if self.template == "remove_certificate" and self.backup is None and undone:
            raise ValueError("a removal without its backup cannot be undone (backup is null)")
        return self


class RollbackRecord(_Open):
    step: StrictInt
    ok: StrictBool
    error: StrictStr | None = None


class JournalDocument(_Open):
    """The whole journal document (``sectigo-chain-journal/1``)."""

    format: Literal["sectigo-chain-journal/1"]
    target: StrictStr | None = None
    created: StrictStr = ""
    status: JournalStatus
    plan: dict[str, Any]
    steps: list[JournalStep]
    rollback: list[RollbackRecord]
    before: ObservedState | None = None
    rollback_restarted: StrictBool = False

    @model_validator(mode="after")
    def _steps_in_order(self) -> JournalDocument:
        for position, step in enumerate(self.steps):
            if step.index != position:
                raise ValueError(f"step {position + 1} carries index {step.index}")
        return self


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a validation error, on one line (``steps.2.backup: ...``)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "the document"
    message = str(first["msg"]).replace("\n", " ")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"


# ---------------------------------------------------------------------- the final check


def _cert_key(c: Any) -> tuple[str, str, str, str]:
    return (c.store_location, c.store_name, c.physical_store or "", c.thumbprint)


def _where(key: tuple[str, str, str, str]) -> str:
    loc, store, phys, thumb = key
    return f"{loc}\\{store}{f' ({phys})' if phys and phys != '.Default' else ''} {thumb}"


def state_differences(before: ObservedState, after: ObservedState) -> list[str]:
    """What differs between two observed states, one line each (empty when equal).

    Compared: every certificate copy (location, store, physical store, thumbprint; friendly
    name and key properties), every site's bindings and state, the app pools' states, the
    HTTP.sys entries, the ``DisableRootAutoUpdate`` value and the CCS files' SHA-256 (when both
    states read them). Not compared: the computer name,
    the OS and the PowerShell version (a rollback changes none of them)."""
    out: list[str] = []
    old = {_cert_key(c): c for c in before.certificates}
    new = {_cert_key(c): c for c in after.certificates}
    for key in sorted(old.keys() - new.keys()):
        out.append(f"{_where(key)} is missing (it was there before apply)")
    for key in sorted(new.keys() - old.keys()):
        out.append(f"{_where(key)} is present (it was not there before apply)")
    for key in sorted(old.keys() & new.keys()):
        a = old[key].model_dump(exclude={"der_b64"})
        b = new[key].model_dump(exclude={"der_b64"})
        for name in sorted(a):
            if a[name] != b[name]:
                out.append(f"{_where(key)}: {name} was {a[name]!r}, is {b[name]!r}")
    sites_a = {s.name: s for s in before.sites}
    sites_b = {s.name: s for s in after.sites}
    for name in sorted(sites_a.keys() | sites_b.keys()):
        sa, sb = sites_a.get(name), sites_b.get(name)
        if sa is None or sb is None:
            out.append(f"site {name!r} {'is missing' if sb is None else 'is new'}")
        elif sa.bindings != sb.bindings:
            out.append(f"site {name!r}: bindings differ from before apply")
        elif sa.state != sb.state:
            out.append(f"site {name!r}: state was {sa.state}, is {sb.state}")
    if before.app_pools != after.app_pools:
        out.append("app pools differ from before apply")
    ssl_a = {e.endpoint: e for e in before.sslcert}
    ssl_b = {e.endpoint: e for e in after.sslcert}
    for ep in sorted(ssl_a.keys() | ssl_b.keys()):
        if ssl_a.get(ep) != ssl_b.get(ep):
            was = ssl_a[ep].certificate_hash if ep in ssl_a else "no entry"
            now = ssl_b[ep].certificate_hash if ep in ssl_b else "no entry"
            out.append(f"HTTP.sys entry {ep}: was {was}, is {now}")
    if before.disable_root_auto_update != after.disable_root_auto_update:
        out.append(
            f"DisableRootAutoUpdate was {before.disable_root_auto_update}, "
            f"is {after.disable_root_auto_update}"
        )
    if before.ccs is not None and after.ccs is not None:
        # CCS files: by the SHA-256 of their bytes (read without the password), when both
        # observations could read the file; backups (not *.pfx) are not looked at.
        files_b = {f.file.lower(): f for f in after.ccs.files}
        for fa in before.ccs.files:
            fb = files_b.get(fa.file.lower())
            if fb is None or fa.sha256 is None or fb.sha256 is None:
                continue
            if fa.sha256 != fb.sha256:
                out.append(f"CCS file {fa.file}: its content differs from before apply")
    return out
