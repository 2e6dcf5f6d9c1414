"""Run templates over WinRM with pypsrp: one RunspacePool per host, deadlines, error mapping.

DESIGN.md 1.11: pypsrp's low-level ``WSMan`` + ``RunspacePool`` + ``PowerShell`` are used (not
``Client.execute_ps``, which takes script text only and opens a pool per call). The payload is
passed with ``add_parameter`` (never inside the script text). ``invoke()`` has no overall
deadline, so the pipeline is driven with ``begin_invoke``/``poll_invoke`` against our own
deadline and stopped when it passes. ``had_errors`` is only true for terminating errors, so the
error stream is read too. pypsrp's DEBUG log dumps parameters (passwords included): the CLI never
lets it go below INFO.

Not verified here: nothing in this repository has reached a Windows host. The session logic
(deadline, error mapping, document parsing) is tested against a fake pypsrp session.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from sectigo_chain.errors import ConnectionFailed, InputError, ScriptFailed, ScriptTimeout
from sectigo_chain.hosts.base import ExecutorBase, ScriptResult, mask_secrets, parse_document

if TYPE_CHECKING:
    from sectigo_chain.templates.render import RenderedScript

__all__ = ["WinRMExecutor", "WinRMSettings", "parse_winrm_target"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WinRMSettings:
    """How to reach one host. The password is a SecretStr and never printed."""

    host: str
    port: int = 5986
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    ssl: bool = True
    auth: str = "negotiate"
    cert_validation: bool = True
    connection_timeout: int = 15
    operation_timeout: int = 20
    # DESIGN 1.11: keep read_timeout above operation_timeout.
    read_timeout: int = 30

    @property
    def target(self) -> str:
        """``winrm://user@host:port`` without the password."""
        user = f"{self.username}@" if self.username else ""
        return f"winrm://{user}{self.host}:{self.port}"


def parse_winrm_target(
    target: str, *, password: SecretStr | None = None, **options: Any
) -> WinRMSettings:
    """``winrm://[user@]host[:port]`` -> settings (port 5986 with TLS by default)."""
    if not target.startswith("winrm://"):
        raise InputError(f"not a WinRM target: {target!r} (expected winrm://[user@]host[:port])")
    rest = target[len("winrm://") :].rstrip("/")
    user: str | None = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
    host, _, port_text = rest.partition(":")
    if not host or ":" in port_text:
        raise InputError(f"cannot read host from {target!r} (expected winrm://[user@]host[:port])")
    try:
        port = int(port_text) if port_text else 5986
    except ValueError:
        raise InputError(f"bad port in {target!r}: {port_text!r}") from None
    if not 0 < port < 65536:
        raise InputError(f"bad port in {target!r}: {port}")
    ssl = options.pop("ssl", port != 5985)
    return WinRMSettings(host=host, port=port, username=user, password=password, ssl=ssl, **options)


class _Session(Protocol):
    """What the executor needs from a PSRP session (pypsrp in production, a fake in tests)."""

    def start(self, text: str, parameters: dict[str, str]) -> Any: ...

    def poll(self, pipeline: Any, timeout: int) -> bool:
        """Poll once; True while the pipeline still runs."""
        ...

    def finish(self, pipeline: Any) -> tuple[list[str], list[str], list[str]]:
        """(outputs, error records, warnings); closes the pipeline."""
        ...

    def stop(self, pipeline: Any) -> None: ...

    def close(self) -> None: ...


class _PypsrpSession:
    """The thin layer over pypsrp (imported lazily: it is heavy)."""

    def __init__(self, settings: WinRMSettings) -> None:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        self._wsman = WSMan(
            settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            ssl=settings.ssl,
            auth=settings.auth,
            cert_validation=settings.cert_validation,
            connection_timeout=settings.connection_timeout,
            operation_timeout=settings.operation_timeout,
            read_timeout=settings.read_timeout,
        )
        self._pool = RunspacePool(self._wsman)
        self._pool.open()

    def start(self, text: str, parameters: dict[str, str]) -> Any:
        from pypsrp.powershell import PowerShell

        ps = PowerShell(self._pool)
        # Local scope: a pooled runspace must not keep variables (the PFX password) between
        # scripts.
        ps.add_script(text, use_local_scope=True)
        ps.add_parameters(parameters)
        ps.begin_invoke()
        return ps

    def poll(self, pipeline: Any, timeout: int) -> bool:
        from pypsrp.complex_objects import PSInvocationState

        if pipeline.state != PSInvocationState.RUNNING:
            return False
        pipeline.poll_invoke(timeout=timeout)
        return bool(pipeline.state == PSInvocationState.RUNNING)

    def finish(self, pipeline: Any) -> tuple[list[str], list[str], list[str]]:
        outputs = [str(o) for o in pipeline.output]
        errors = [str(e) for e in pipeline.streams.error]
        warnings = [str(w) for w in pipeline.streams.warning]
        try:
            pipeline.close()
        except Exception as exc:
            log.debug("closing pipeline failed: %s", type(exc).__name__)
        return outputs, errors, warnings

    def stop(self, pipeline: Any) -> None:
        pipeline.stop()

    def close(self) -> None:
        self._pool.close()


def _is_connection_error(exc: BaseException) -> bool:
    names = {t.__name__ for t in type(exc).__mro__}
    return bool(
        names
        & {
            "ConnectionError",
            "Timeout",
            "WinRMTransportError",
            "AuthenticationError",
            "SSLError",
            "OSError",
        }
    )


class WinRMExecutor(ExecutorBase):
    """Runs rendered templates on one Windows host over WinRM (PSRP).

    One RunspacePool per executor, opened on first use and reused; not thread-safe: one
    executor per host, owned by one worker (DESIGN 1.11).
    """

    def __init__(self, settings: WinRMSettings, *, session_factory: Any = None) -> None:
        self.settings = settings
        self._factory = session_factory or _PypsrpSession
        self._session: _Session | None = None

    @property
    def target(self) -> str:
        """``winrm://user@host:port`` (never the password)."""
        return self.settings.target

    def __repr__(self) -> str:
        return f"WinRMExecutor({self.target!r})"

    def _connect(self) -> _Session:
        if self._session is None:
            try:
                self._session = self._factory(self.settings)
            except Exception as exc:
                raise ConnectionFailed(
                    f"cannot open a PowerShell session on {self.target}: {type(exc).__name__}"
                    f"{': ' + _safe(exc, self.settings) if str(exc) else ''} (check host, port, "
                    "credentials and that WinRM is enabled: Enable-PSRemoting)",
                    host=self.target,
                ) from None
        return self._session

    def run(self, script: RenderedScript, *, timeout: float) -> ScriptResult:
        """Run ``script`` with its payload as ``-Payload``; bounded by ``timeout`` seconds."""
        session = self._connect()
        started = time.monotonic()
        deadline = started + timeout
        try:
            pipeline = session.start(script.text, {"Payload": script.payload})
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    try:
                        session.stop(pipeline)
                    finally:
                        raise ScriptTimeout(
                            f"{script.name} on {self.target} did not finish within {timeout:g} s "
                            "(it was stopped)",
                            host=self.target,
                            script=script.name,
                        )
                poll_for = max(1, min(self.settings.operation_timeout, int(remaining) or 1))
                if not session.poll(pipeline, poll_for):
                    break
            outputs, errors, warnings = session.finish(pipeline)
        except (ScriptTimeout, ScriptFailed):
            raise
        except Exception as exc:
            self._drop_session()
            if _is_connection_error(exc):
                raise ConnectionFailed(
                    f"connection to {self.target} failed while running {script.name}: "
                    f"{type(exc).__name__}: {_safe(exc, self.settings)}",
                    host=self.target,
                    script=script.name,
                ) from None
            raise ScriptFailed(
                f"{script.name} on {self.target} failed: {type(exc).__name__}: "
                f"{_safe(exc, self.settings)}",
                host=self.target,
                script=script.name,
            ) from None
        result = parse_document(
            outputs,
            errors=[_mask(e, script, self.settings) for e in errors],
            warnings=warnings,
            duration=time.monotonic() - started,
            host=self.target,
            script=script.name,
        )
        if not result.ok:
            message = (result.error or {}).get("message", "the script reported failure")
            masked = _mask(str(message), script, self.settings)
            raise ScriptFailed(
                f"{script.name} on {self.target} failed: {masked}",
                host=self.target,
                script=script.name,
                records=result.errors,
            )
        return result

    def _drop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception as exc:
                log.debug("closing broken session failed: %s", type(exc).__name__)

    def close(self) -> None:
        """Close the RunspacePool (idempotent)."""
        self._drop_session()


def _safe(exc: BaseException, settings: WinRMSettings) -> str:
    from sectigo_chain.logs import mask_text

    extra = (settings.password.get_secret_value(),) if settings.password else ()
    return mask_text(str(exc), extra)[:500]


def _mask(text: str, script: RenderedScript, settings: WinRMSettings) -> str:
    extra = (settings.password.get_secret_value(),) if settings.password else ()
    return mask_secrets(text, script, extra)
