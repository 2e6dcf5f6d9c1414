"""Run templates over WinRM with pypsrp: one RunspacePool per host, deadlines, error mapping.

DESIGN.md 1.11: pypsrp's low-level ``WSMan`` + ``RunspacePool`` + ``PowerShell`` are used (not
``Client.execute_ps``, which takes script text only and opens a pool per call). The payload is
passed with ``add_parameter`` (never inside the script text). ``invoke()`` has no overall
deadline, so the pipeline is driven with ``begin_invoke``/``poll_invoke`` against our own
deadline and stopped when it passes. ``had_errors`` is only true for terminating errors, so the
error stream is read too. pypsrp's DEBUG log dumps parameters (passwords included): the CLI never
lets it go below INFO.

The deadline is held against pypsrp's own patience (issue 11.7):

* pypsrp 0.9's ``WSMan.receive`` retries a read timeout 5 times with sleeps of 2, 6, 14, 30 and
  62 s; here ``receive`` is bounded (:class:`_BoundedWSMan`, no retries of its own) and a read
  timeout inside the deadline just polls again, which pypsrp documents as safe for Receive.
* After a timeout the pipeline is stopped and the whole session (pool, HTTP connections)
  dropped, with a few seconds' grace for each of those requests; the next script opens a new
  pool instead of queueing behind a blocked pipeline.
* A pool idle for longer than ``WinRMSettings.idle_check`` is checked with
  ``RunspacePool.is_alive()`` before reuse; a shell the server closed (WS-Management fault
  0x8033805B) is a :class:`~sectigo_chain.errors.ConnectionFailed`, and when it is reported
  for the ``Command`` that would start the script (so nothing ran) the pool is reopened once
  and the script started again.

Tested end to end against :mod:`sectigo_chain.testing.winrm` (real pypsrp, HTTP, WS-Management,
PSRP, a simulated host behind). Not verified here: nothing in this repository has reached a
Windows host.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from sectigo_chain.errors import ConnectionFailed, InputError, ScriptFailed, ScriptTimeout
from sectigo_chain.hosts.base import ExecutorBase, ScriptResult, mask_secrets, parse_document

if TYPE_CHECKING:
    from sectigo_chain.templates.render import RenderedScript

__all__ = ["WinRMExecutor", "WinRMSettings", "parse_winrm_target", "winrm_options_from_env"]

log = logging.getLogger(__name__)


#: The ``auth`` values pypsrp accepts; ``credssp`` needs the ``credssp`` extra
#: (requests-credssp), ``kerberos`` the ``kerberos`` extra (pyspnego[kerberos]).
AUTH_METHODS = ("negotiate", "ntlm", "kerberos", "basic", "credssp", "certificate")


@dataclass(frozen=True)
class WinRMSettings:
    """How to reach one host. The password is a SecretStr and never printed.

    ``cert_validation`` is ``True`` (the system CA store), ``False`` (no validation: a lab only)
    or the path of a CA bundle (PEM) that signed the WinRM listener's certificate.
    ``auth="certificate"`` needs ``certificate_pem`` and ``certificate_key_pem`` (paths).
    ``encryption`` is pypsrp's WinRM message encryption: ``"auto"`` (over HTTP with
    ``negotiate``/``ntlm``/``kerberos``/``credssp``; over HTTPS TLS is enough), ``"always"``
    (also inside TLS) or ``"never"`` (only for a host with ``AllowUnencrypted``: avoid).
    """

    host: str
    port: int = 5986
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    ssl: bool = True
    auth: str = "negotiate"
    cert_validation: bool | str = True
    encryption: str = "auto"
    connection_timeout: int = 15
    operation_timeout: int = 20
    # DESIGN 1.11: keep read_timeout above operation_timeout.
    read_timeout: int = 30
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None
    #: seconds a pool may sit idle before it is checked with ``is_alive()`` before reuse
    idle_check: float = 60.0
    #: seconds granted to each clean-up request (stop, close) after a failure or a timeout
    cleanup_grace: float = 3.0

    def __post_init__(self) -> None:
        if self.auth not in AUTH_METHODS:
            raise InputError(
                f"unknown WinRM auth {self.auth!r}; use one of {', '.join(AUTH_METHODS)}"
            )
        if self.encryption not in ("auto", "always", "never"):
            raise InputError(
                f"unknown WinRM encryption {self.encryption!r}; use auto, always or never"
            )
        if self.auth == "certificate" and not (self.certificate_pem and self.certificate_key_pem):
            raise InputError(
                "auth 'certificate' needs certificate_pem and certificate_key_pem (paths of the "
                "client certificate and its key, mapped to a local account on the host)"
            )

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


def winrm_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``auth`` and ``cert_validation`` for command-line ``winrm://`` targets.

    ``SECTIGO_CHAIN_WINRM_AUTH`` (one of :data:`AUTH_METHODS`) and
    ``SECTIGO_CHAIN_WINRM_CERT_VALIDATION`` (``true``, ``false`` or the path of a CA bundle).
    """
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    auth = env.get("SECTIGO_CHAIN_WINRM_AUTH", "").strip()
    if auth:
        if auth not in AUTH_METHODS:
            raise InputError(
                f"SECTIGO_CHAIN_WINRM_AUTH={auth!r} is not a WinRM auth method; use one of "
                f"{', '.join(AUTH_METHODS)}"
            )
        options["auth"] = auth
    validation = env.get("SECTIGO_CHAIN_WINRM_CERT_VALIDATION", "").strip()
    if validation:
        lowered = validation.lower()
        if lowered in ("true", "1", "yes"):
            options["cert_validation"] = True
        elif lowered in ("false", "0", "no"):
            options["cert_validation"] = False
        elif os.path.isfile(validation):
            options["cert_validation"] = validation
        else:
            raise InputError(
                f"SECTIGO_CHAIN_WINRM_CERT_VALIDATION={validation!r} is neither true/false nor "
                "the path of a CA bundle file"
            )
    return options


class _Session(Protocol):
    """What the executor needs from a PSRP session (pypsrp in production)."""

    def start(self, text: str, parameters: dict[str, str]) -> Any: ...

    def poll(self, pipeline: Any, timeout: int) -> bool:
        """Poll once; True while the pipeline still runs."""
        ...

    def finish(self, pipeline: Any) -> tuple[list[str], list[str], list[str]]:
        """(outputs, error records, warnings); closes the pipeline."""
        ...

    def stop(self, pipeline: Any) -> None: ...

    def is_alive(self) -> bool: ...

    def close(self) -> None: ...


#: WS-Management fault codes that mean the shell (the runspace pool) is gone on the server:
#: 0x8033805B, "the shell was not found on the server" (pypsrp's ``is_alive`` reads it the same
#: way). The pool must be re-created; nothing of a script whose ``Command`` got it has run.
SHELL_GONE_CODES = frozenset({0x8033805B})
#: WS-Management operation timeout (0x80338029): a Receive found no output in time; pypsrp's
#: ``poll_invoke`` swallows it for Receive; anywhere else it is a transport failure.
OPERATION_TIMEOUT_CODE = 0x80338029


def _bounded_wsman_class() -> type:
    """pypsrp's ``WSMan`` with ``receive`` stripped of its own read-timeout retries.

    pypsrp 0.9.1 (wsman.py, ``WSMan.receive``) passes ``retries_on_read_timeout=5`` and sleeps
    ``reconnection_backoff * (2**attempt - 1)`` between tries (2, 6, 14, 30, 62 s with the
    default 2.0): up to two minutes past any deadline. The executor re-polls on a read timeout
    itself, inside its deadline.
    """
    from pypsrp.wsman import NAMESPACES, WSMan, WSManAction

    class _BoundedWSMan(WSMan):
        def receive(
            self,
            resource_uri: str,
            resource: Any,
            option_set: Any = None,
            selector_set: Any = None,
            timeout: int | None = None,
        ) -> Any:
            res = self.invoke(
                WSManAction.RECEIVE,
                resource_uri,
                resource,
                option_set,
                selector_set,
                timeout,
                retries_on_read_timeout=0,
            )
            return res.find("s:Body", namespaces=NAMESPACES)

    return _BoundedWSMan


class _PypsrpSession:
    """The thin layer over pypsrp (imported lazily: it is heavy)."""

    def __init__(self, settings: WinRMSettings) -> None:
        from pypsrp.powershell import RunspacePool

        extra: dict[str, Any] = {}
        if settings.certificate_pem:
            extra["certificate_pem"] = settings.certificate_pem
        if settings.certificate_key_pem:
            extra["certificate_key_pem"] = settings.certificate_key_pem
        self._settings = settings
        self._wsman = _bounded_wsman_class()(
            settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            ssl=settings.ssl,
            auth=settings.auth,
            encryption=settings.encryption,
            cert_validation=settings.cert_validation,
            connection_timeout=settings.connection_timeout,
            operation_timeout=settings.operation_timeout,
            read_timeout=settings.read_timeout,
            # No urllib3 retries of connection errors with back-off sleeps: the executor's
            # caller (hosts.retry) decides what is retried, within its own budget.
            reconnection_retries=0,
            **extra,
        )
        self._pool = RunspacePool(self._wsman)
        try:
            self._pool.open()
        except BaseException:
            self._wsman.close()
            raise

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
        import requests
        from pypsrp.complex_objects import PSInvocationState

        if pipeline.state != PSInvocationState.RUNNING:
            return False
        try:
            pipeline.poll_invoke(timeout=timeout)
        except requests.exceptions.ReadTimeout:
            # The Receive got no answer in time (its HTTP timeout is the operation timeout
            # + 2 s). pypsrp: "sending the exact same request again will return the same
            # data so we can safely retry"; the caller polls again while its deadline lasts.
            log.info("a Receive got no answer in %d s; polling again", timeout + 2)
            return True
        return bool(pipeline.state == PSInvocationState.RUNNING)

    def finish(self, pipeline: Any) -> tuple[list[str], list[str], list[str]]:
        outputs = [str(o) for o in pipeline.output]
        errors = [_record_text(e) for e in pipeline.streams.error]
        warnings = [_record_text(w) for w in pipeline.streams.warning]
        try:
            pipeline.close()
        except Exception as exc:
            log.debug("closing pipeline failed: %s", type(exc).__name__)
        return outputs, errors, warnings

    def _hurry(self) -> None:
        """Bound every later request of this (doomed) session by ``cleanup_grace``."""
        grace = max(1, int(self._settings.cleanup_grace))
        transport = self._wsman.transport
        transport.connection_timeout = grace
        transport.read_timeout = grace
        self._wsman.operation_timeout = grace

    def stop(self, pipeline: Any) -> None:
        self._hurry()
        pipeline.stop()

    def is_alive(self) -> bool:
        return bool(self._pool.is_alive(timeout=max(1, int(self._settings.cleanup_grace))))

    def close(self) -> None:
        from pypsrp.complex_objects import RunspacePoolState

        self._hurry()
        try:
            if self._pool.state == RunspacePoolState.OPENED:
                self._pool.close()
        finally:
            self._wsman.close()


def _record_text(record: Any) -> str:
    """The text of a pypsrp ErrorRecord / WarningRecord, as PowerShell prints it.

    ``str()`` is the record's serialised ``ToString`` (for an ErrorRecord, the exception's
    message); the record's ``message`` attribute is its *category* text
    ("InvalidOperation (:) [], RuntimeException"), used only when nothing better exists.
    """
    text = str(record)
    if text and not text.startswith("<"):
        return text
    exception = getattr(record, "exception", None)
    props = getattr(exception, "adapted_properties", None) or {}
    message = props.get("Message") if isinstance(props, dict) else None
    if isinstance(message, str) and message:
        return message
    fallback = getattr(record, "message", None)
    return fallback if isinstance(fallback, str) and fallback else text


def _fault_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and type(exc).__name__ == "WSManFaultError" else None


def _is_connection_error(exc: BaseException) -> bool:
    if _fault_code(exc) in SHELL_GONE_CODES or _fault_code(exc) == OPERATION_TIMEOUT_CODE:
        return True
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
        self._last_used = 0.0
        #: runspace pools opened so far (a re-created pool counts again)
        self.pools_opened = 0

    @property
    def target(self) -> str:
        """``winrm://user@host:port`` (never the password)."""
        return self.settings.target

    def __repr__(self) -> str:
        return f"WinRMExecutor({self.target!r})"

    def _connect(self) -> _Session:
        if self._session is not None and (
            time.monotonic() - self._last_used > self.settings.idle_check
        ):
            alive = False
            try:
                alive = self._session.is_alive()
            except Exception as exc:
                log.info("is_alive check failed: %s", type(exc).__name__)
            if not alive:
                log.info("the runspace pool on %s is gone; opening a new one", self.target)
                self._drop_session()
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
            self.pools_opened += 1
        self._last_used = time.monotonic()
        return self._session

    def _start(self, text: str, payload: str) -> tuple[_Session, Any]:
        """Start the pipeline; a pool the server closed before anything ran is reopened once."""
        session = self._connect()
        try:
            return session, session.start(text, {"Payload": payload})
        except Exception as exc:
            if _fault_code(exc) not in SHELL_GONE_CODES:
                raise
            log.info("the server closed the runspace pool on %s; reopening it", self.target)
            self._drop_session()
        session = self._connect()
        return session, session.start(text, {"Payload": payload})

    def run(self, script: RenderedScript, *, timeout: float) -> ScriptResult:
        """Run ``script`` with its payload as ``-Payload``; bounded by ``timeout`` seconds."""
        started = time.monotonic()
        deadline = started + timeout
        try:
            session, pipeline = self._start(script.text, script.payload)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._timed_out(session, pipeline)
                    raise ScriptTimeout(
                        f"{script.name} on {self.target} did not finish within {timeout:g} s "
                        "(it was stopped and the session closed)",
                        host=self.target,
                        script=script.name,
                    )
                poll_for = max(1, min(self.settings.operation_timeout, int(remaining) or 1))
                if not session.poll(pipeline, poll_for):
                    break
            outputs, errors, warnings = session.finish(pipeline)
            self._last_used = time.monotonic()
        except (ScriptTimeout, ScriptFailed, ConnectionFailed):
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
            warnings=[_mask(w, script, self.settings) for w in warnings],
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
                result=result,
            )
        return result

    def _timed_out(self, session: _Session, pipeline: Any) -> None:
        """Stop the pipeline (best effort, bounded) and drop the session: never reuse a pool
        that may still have a blocked pipeline in its one runspace."""
        try:
            session.stop(pipeline)
        except Exception as exc:
            log.info("stopping the timed-out pipeline failed: %s", type(exc).__name__)
        self._drop_session()

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
