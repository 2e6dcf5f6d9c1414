"""The exception tree of sectigo_chain.

Every error the library raises on purpose is a :class:`SectigoChainError`. Findings about a
chain (short chain, expired certificate sent, ...) are data in reports, never exceptions.

::

    SectigoChainError
    ├── CertificateLoadError        (also ValueError)   a file could not be read as certificates
    ├── CatalogError                                     packaged CA data failed its pins
    ├── TemplateError               (also ValueError)   bad template name or parameters
    ├── InputError                  (also ValueError)   bad input (targets, profiles, inventory)
    ├── ExecutionError                                   running a script on a host failed
    │   ├── ConnectionFailed        (also ConnectionError)
    │   ├── ScriptTimeout           (also TimeoutError)
    │   └── ScriptFailed                                 the script reported errors (secrets masked)
    ├── TLSFetchError                                    could not get a served chain over TLS
    │   ├── TLSConnectError         (also ConnectionError)
    │   ├── TLSTimeout              (also TimeoutError)
    │   └── TLSHandshakeError
    ├── PlanRefused                                      the plan would do harm without an override
    └── ApplyError                                       apply failed; carries the partial result

Each message says what went wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ApplyError",
    "CatalogError",
    "CertificateLoadError",
    "ConnectionFailed",
    "ExecutionError",
    "InputError",
    "PlanRefused",
    "ScriptFailed",
    "ScriptTimeout",
    "SectigoChainError",
    "TLSConnectError",
    "TLSFetchError",
    "TLSHandshakeError",
    "TLSTimeout",
    "TemplateError",
]


class SectigoChainError(Exception):
    """Base class of every error sectigo_chain raises on purpose."""


class CertificateLoadError(SectigoChainError, ValueError):
    """A file could not be read as certificates (and, for a PFX, a matching key).

    ``path`` names the file, ``problem`` what is wrong, ``hint`` what to do.
    """

    def __init__(self, path: str, problem: str, hint: str = "") -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        msg = f"{path}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class CatalogError(SectigoChainError):
    """The packaged CA catalog is damaged (a certificate does not match its pin)."""


class TemplateError(SectigoChainError, ValueError):
    """A PowerShell template is unknown or its parameters are invalid."""


class InputError(SectigoChainError, ValueError):
    """User input (a target, a profile, an inventory, an option) is not usable."""


class ExecutionError(SectigoChainError):
    """Running a script on a host failed. ``host`` names the target."""

    def __init__(self, message: str, *, host: str = "", script: str = "") -> None:
        self.host = host
        self.script = script
        super().__init__(message)


class ConnectionFailed(ExecutionError, ConnectionError):
    """The host could not be reached or the session broke."""


class ScriptTimeout(ExecutionError, TimeoutError):
    """The script did not finish within its deadline (it was stopped)."""


class ScriptFailed(ExecutionError):
    """The script ran and reported errors. ``records`` hold the error records, secrets masked;
    ``result``: the script's parsed document (a ``ScriptResult``) when it wrote one (an
    ``apply_plan`` that stopped at a failing action still carries every action's result)."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        script: str = "",
        records: Sequence[str] = (),
        result: Any = None,
    ) -> None:
        self.records = list(records)
        self.result = result
        super().__init__(message, host=host, script=script)


class TLSFetchError(SectigoChainError):
    """Could not obtain the certificate chain a server serves."""

    def __init__(self, message: str, *, target: str = "") -> None:
        self.target = target
        super().__init__(message)


class TLSConnectError(TLSFetchError, ConnectionError):
    """TCP connection refused, reset or unreachable."""


class TLSTimeout(TLSFetchError, TimeoutError):
    """Connect, handshake or the whole fetch exceeded its deadline."""


class TLSHandshakeError(TLSFetchError):
    """The peer does not speak TLS, or the handshake failed."""


class PlanRefused(SectigoChainError):
    """The plan would break something (for example a Group Policy root) without an override."""

    def __init__(self, message: str, *, guidance: Sequence[str] = ()) -> None:
        self.guidance = list(guidance)
        super().__init__(message)


class ApplyError(SectigoChainError):
    """Apply failed mid-way. Carries what failed, what was rolled back and the journal path."""

    def __init__(
        self,
        message: str,
        *,
        failed_action: str = "",
        rolled_back: Sequence[str] = (),
        rollback_complete: bool = True,
        journal: str | None = None,
        result: Any = None,
    ) -> None:
        self.failed_action = failed_action
        self.rolled_back = list(rolled_back)
        self.rollback_complete = rollback_complete
        self.journal = journal
        self.result = result
        super().__init__(message)
