"""Executors run rendered templates on a host and return a :class:`ScriptResult`.

The contract (docs/template-contract.md): ``run(script, *, timeout) -> ScriptResult`` and
``close()``; usable as a context manager. Every executor maps its failures onto the error tree:
:class:`~sectigo_chain.errors.ConnectionFailed`, :class:`~sectigo_chain.errors.ScriptTimeout`,
:class:`~sectigo_chain.errors.ScriptFailed`.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from sectigo_chain.templates import RenderedScript

__all__ = ["Executor", "ExecutorBase", "ScriptResult"]


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


class ExecutorBase:
    """Context-manager plumbing shared by the concrete executors."""

    def close(self) -> None:
        """Release resources (nothing by default)."""

    def __enter__(self) -> ExecutorBase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
