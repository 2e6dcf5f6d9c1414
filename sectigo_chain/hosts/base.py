"""Executors run rendered templates on a host and return a :class:`ScriptResult`.

The contract (docs/template-contract.md): ``run(script, *, timeout) -> ScriptResult`` and
``close()``; usable as a context manager. Every executor maps its failures onto the error tree:
:class:`~sectigo_chain.errors.ConnectionFailed`, :class:`~sectigo_chain.errors.ScriptTimeout`,
:class:`~sectigo_chain.errors.ScriptFailed`.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from sectigo_chain.templates.render import RenderedScript

__all__ = [
    "Executor",
    "ExecutorBase",
    "ScriptResult",
    "entry_result",
    "mask_secrets",
    "parse_document",
]


class ScriptResult(BaseModel):
    """What one template run returned: the JSON document plus error records and timing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    changed: bool = False
    data: Any = None
    error: dict[str, Any] | None = None
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    duration: float = 0.0


@runtime_checkable
class Executor(Protocol):
    """Runs rendered templates on one host."""

    @property
    def target(self) -> str:
        """A display name for the host (never contains credentials)."""
        ...

    def run(self, script: RenderedScript, *, timeout: float) -> ScriptResult:
        """Run ``script`` and return its result; raise an ExecutionError subclass on failure."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


_E = TypeVar("_E", bound="ExecutorBase")


class ExecutorBase:
    """Context-manager plumbing shared by the concrete executors."""

    def close(self) -> None:
        """Release resources (nothing by default)."""

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def parse_document(
    outputs: list[str],
    *,
    errors: list[str] | None = None,
    warnings: list[str] | None = None,
    duration: float = 0.0,
    host: str = "",
    script: str = "",
) -> ScriptResult:
    """Turn a template's output stream into a :class:`ScriptResult`.

    A template writes exactly one JSON document (docs/template-contract.md). The last output
    line that parses as a JSON object with an ``ok`` key is taken; anything else is a
    :class:`~sectigo_chain.errors.ScriptFailed` carrying the error records.
    """
    import json

    from sectigo_chain.errors import ScriptFailed

    document: dict[str, Any] | None = None
    for text in reversed([o for o in outputs if o and o.strip()]):
        try:
            candidate = json.loads(text)
        except ValueError:
            continue
        if isinstance(candidate, dict) and "ok" in candidate:
            document = candidate
            break
    records = list(errors or [])
    if document is None:
        raise ScriptFailed(
            f"{script} on {host or 'the host'} returned no result document"
            + (f": {records[0]}" if records else "; run it by hand with `sectigo-chain render`"),
            host=host,
            script=script,
            records=records,
        )
    error = document.get("error")
    return ScriptResult(
        ok=bool(document.get("ok")),
        changed=bool(document.get("changed", False)),
        data=document.get("data"),
        error=error if isinstance(error, dict) else None,
        errors=records,
        warnings=list(warnings or []),
        duration=duration,
    )


def entry_result(item: Any) -> ScriptResult:
    """One entry of a composite template's result (``apply_plan``, ``verify_host``: its JSON
    document as text, the terminating error that escaped it, the error records it wrote) as a
    :class:`ScriptResult`. ``ok`` only when its document says so and it wrote no error record
    (a non-terminating error fails the entry, as the composite itself decides)."""
    import json

    item = item if isinstance(item, dict) else {}
    records = [str(r) for r in item.get("errors") or ()]
    escaped = item.get("error") if isinstance(item.get("error"), dict) else None
    document: Any = None
    if isinstance(item.get("document"), str):
        try:
            document = json.loads(item["document"])
        except ValueError:
            document = None
    if not isinstance(document, dict) or "ok" not in document:
        return ScriptResult(ok=False, error=escaped or {"message": "no result document"},
                            errors=records)  # fmt: skip
    error = document.get("error")
    return ScriptResult(
        ok=document.get("ok") is True and not records and escaped is None,
        changed=bool(document.get("changed", False)),
        data=document.get("data"),
        error=error if isinstance(error, dict) else escaped,
        errors=records,
    )


def mask_secrets(text: str, script: RenderedScript, extra: tuple[str, ...] = ()) -> str:
    """``text`` with the script's secret values (and its payload, when it holds secrets), any
    ``extra`` secrets (a WinRM password) and every registered secret masked.

    One implementation: :func:`sectigo_chain.logs.mask_text` (values under 3 characters are
    not masked there, since masking them would shred every message). The result is cut to
    :data:`~sectigo_chain.logs.MAX_MESSAGE_CHARS`: a remote error body is never copied whole.
    """
    from sectigo_chain.logs import bounded, mask_text

    secrets = list(extra)
    held = script.secret_values()  # an apply_plan's actions' secrets too
    if held or script.secret_fields:
        secrets.extend(held)
        secrets.append(script.payload)
    return bounded(mask_text(text, secrets))
