"""A loopback WinRM endpoint for tests: WS-Management + PSRP on 127.0.0.1, a SimulatedHost behind.

Real, unmodified pypsrp talks to it exactly as it talks to a Windows host: HTTP(S) POSTs of
SOAP envelopes (WS-Management ``Create`` / ``Command`` / ``Send`` / ``Receive`` / ``Signal`` /
``Delete`` / ``Get``), PSRP messages in base64 fragments inside them. The PSRP side (runspace
pool negotiation, fragments, pipeline state, error and warning records) is psrpcore's
server-side state machine (:class:`psrpcore.ServerRunspacePool`, :class:`psrpcore.ServerPipeline`);
only the WS-Management envelope is written here.

It cannot run PowerShell. It recognises each received script by its exact text (one of the
templates in ``ps_templates/``, as :func:`~sectigo_chain.templates.render.template_text` returns
it) and hands the ``Payload`` parameter, as received, to a
:class:`~sectigo_chain.hosts.sim.host.SimulatedHost`. What the host returns goes back as a
Windows host would send it: the template's one JSON document on the output stream, warnings as
PSRP WarningRecord messages, and a script that throws (the simulated host's ``ScriptFailed``)
as PSRP ErrorRecord messages and a ``Failed`` pipeline state. Any other script text is answered
with an ErrorRecord ("this endpoint only runs the sectigo_chain templates").

Authentication (``auth=``): Basic over HTTPS with a lab certificate for 127.0.0.1 (its CA in
:attr:`WinRMTestServer.ca_file`, for ``cert_validation``), or Basic over plain HTTP when
``tls=False``; and ``"negotiate"``: NTLM, raw or inside SPNEGO, in the ``Negotiate`` HTTP
scheme (what pypsrp's ``auth="ntlm"`` and ``auth="negotiate"`` send), with pyspnego as the
acceptor, and then WinRM message encryption: every body after the handshake is a
``multipart/encrypted`` document of protocol ``application/HTTP-SPNEGO-session-encrypted``
(MS-WSMV 2.2.9.1), sealed with the NTLM session key, both ways. A wrong user name or password
gets HTTP 401, as Windows answers. pyspnego's NTLM acceptor reads the accepted accounts from
the file named by the ``NTLM_USER_FILE`` environment variable: :func:`ntlm_user_file` points
it at a file this module keeps (set once per process; call it before threads start).
With ``record_wire=True`` every raw HTTP body is kept in :attr:`WinRMTestServer.wire`.

Transport faults (:class:`TransportFaults`, changeable while the server runs) let a test make
the endpoint misbehave the way a network or a Windows host does: added latency, 401 after the
pool is open, HTTP 500 with a WS-Management fault, the socket closed in the middle of a
``Receive``, a ``Receive`` never answered, the shell closed by the server, a slow pipeline.
An idle ``Receive`` waits for the request's ``OperationTimeout`` and then answers the
WS-Management fault 2150858793 (``w:TimedOut``), as Windows does.

Every request is counted (:attr:`WinRMTestServer.stats`): requests per WS-Management action,
runspace pools opened and pipelines run, so tests can print and bound the round trips.

Install with ``pip install "sectigo-chain[testing]"`` (psrpcore).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import ipaddress
import os
import re
import socket
import ssl
import struct
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.templates.render import RenderedScript

__all__ = [
    "SPNEGO_ENCRYPTED",
    "Received",
    "TransportFaults",
    "WinRMStats",
    "WinRMTestServer",
    "WireMessage",
    "ntlm_user_file",
]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTIONS = {
    _TRANSFER + "Create": "Create",
    _TRANSFER + "Delete": "Delete",
    _TRANSFER + "Get": "Get",
    _SHELL + "Command": "Command",
    _SHELL + "Send": "Send",
    _SHELL + "Receive": "Receive",
    _SHELL + "Signal": "Signal",
}
_SIGNAL_TERMINATE = _SHELL + "signal/Terminate"
_SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"

#: WS-Management fault codes Windows sends (MS-WSMV; values as pypsrp reads them).
OPERATION_TIMEOUT = 2150858793  # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
SHELL_NOT_FOUND = 2150858843  # 0x8033805B ERROR_WSMAN_UNEXPECTED_SELECTORS (shell not found)
INTERNAL_ERROR = 2150858770  # 0x80338012 ERROR_WSMAN_INTERNAL_ERROR (a generic server fault)

# Fragments per Receive answer: well under pypsrp's default MaxEnvelopeSize (150 KiB).
_FRAGMENT = 32 * 1024

_ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault">'
    "<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{mid}</a:MessageID>"
    "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
    "<a:RelatesTo>{relates}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
)


@dataclass
class TransportFaults:
    """Misbehaviour to inject; a test may change these while the server runs.

    ``*_once`` faults fire on the next matching request and then clear themselves; counters
    (``drop_receives``, ``hang_receives``) count down.
    """

    #: seconds added before every answer (network round-trip time)
    latency: float = 0.0
    #: answer 401 to every request after this many have been served (credentials revoked)
    unauthorized_after: int | None = None
    #: answer the next request of this WS-Management action ("Command", "Receive", ...) with
    #: HTTP 500 and a WS-Management fault
    http_500_once: str | None = None
    #: close the socket without an answer on this many next Receives for a pipeline
    drop_receives: int = 0
    #: never answer this many next Receives for a pipeline (each is held until the server stops)
    hang_receives: int = 0
    #: close the shell on the server before the next Command (the client still believes in it)
    close_shell_once: bool = False
    #: close every shell this many seconds after the next pipeline starts (mid-script)
    close_shell_after: float | None = None
    #: seconds each pipeline runs before it answers
    pipeline_delay: float = 0.0


@dataclass
class WinRMStats:
    """What the endpoint served: requests per WS-Management action, pools and pipelines."""

    requests: Counter[str] = field(default_factory=Counter)
    pools_opened: int = 0
    pipelines: int = 0
    #: Receives answered with the operation-timeout fault (no output within OperationTimeout)
    operation_timeouts: int = 0
    templates: list[str] = field(default_factory=list)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def summary(self) -> str:
        by_action = ", ".join(f"{k} {v}" for k, v in sorted(self.requests.items()))
        return (
            f"{self.pipelines} pipelines on {self.pools_opened} runspace pool(s), "
            f"{self.total_requests} WSMan requests ({by_action})"
        )


@dataclass(frozen=True)
class Received:
    """One script as it arrived: the template it matched (None if unknown) and its parameters."""

    template: str | None
    script: str
    parameters: dict[str, Any]

    @property
    def actions(self) -> tuple[str, ...]:
        """The action templates an ``apply_plan`` carried, in order (empty for other scripts)."""
        if self.template != "apply_plan" or "Payload" not in self.parameters:
            return ()
        from sectigo_chain.templates.render import decode_payload

        entries = decode_payload(str(self.parameters["Payload"])).get("actions", [])
        return tuple(str(entry["template"]) for entry in entries)

    @property
    def names(self) -> tuple[str, ...]:
        """The template, followed by an ``apply_plan``'s action templates."""
        return (self.template or "?", *self.actions)


@dataclass(frozen=True)
class WireMessage:
    """One HTTP body as it crossed the wire (``record_wire=True``): test use only."""

    direction: Literal["request", "response"]
    status: int
    content_type: str
    body: bytes


def _require_extra(module: str) -> None:
    """The endpoint's own dependencies are an extra: say so, rather than fail in a thread."""
    import importlib

    from sectigo_chain.errors import InputError

    try:
        importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"the loopback WinRM endpoint needs {module}, which is not installed: "
            'pip install "sectigo-chain[testing]"'
        ) from None


# ----------------------------------------------------------------------------- NTLM accounts

#: The Content-Type protocol of WinRM message encryption with SPNEGO/NTLM (MS-WSMV 2.2.9.1).
SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
_BOUNDARY = "Encrypted Boundary"

_ntlm_lock = threading.Lock()
_ntlm_dir: tempfile.TemporaryDirectory[str] | None = None
_ntlm_accounts: dict[str, tuple[str, int]] = {}  # user (lower case) -> (password, servers)


def ntlm_user_file() -> str:
    """The accounts file pyspnego's NTLM acceptor reads, with ``NTLM_USER_FILE`` pointing at it.

    pyspnego takes an NTLM acceptor's accounts only from the file named by the environment
    variable ``NTLM_USER_FILE`` (lines ``DOMAIN:USER:PASSWORD``), read at every
    authentication. This module keeps one such file per process and sets the variable once, the
    first time (changing the process environment while other threads run is unsafe: call this
    before starting threads, e.g. in a test session's set-up). Each running server with
    ``auth`` ``"negotiate"`` adds its account and removes it when it stops.
    """
    global _ntlm_dir
    with _ntlm_lock:
        if _ntlm_dir is None:
            _ntlm_dir = tempfile.TemporaryDirectory(prefix="sectigo-chain-ntlm-")
            atexit.register(_ntlm_dir.cleanup)
            _write_ntlm_accounts()
        path = os.path.join(_ntlm_dir.name, "ntlm-users")
    if os.environ.get("NTLM_USER_FILE") != path:
        os.environ["NTLM_USER_FILE"] = path
    return path


def _write_ntlm_accounts() -> None:
    """Rewrite the accounts file atomically (caller holds ``_ntlm_lock``)."""
    assert _ntlm_dir is not None
    path = os.path.join(_ntlm_dir.name, "ntlm-users")
    lines = "".join(f":{user}:{password}\n" for user, (password, _) in _ntlm_accounts.items())
    fd, temporary = tempfile.mkstemp(dir=_ntlm_dir.name)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(lines)
    os.replace(temporary, path)


def _add_ntlm_account(username: str, password: str) -> None:
    if ":" in username + password or "\n" in username + password or "\\" in username:
        raise ValueError(
            "an NTLM account of the loopback endpoint cannot contain ':', '\\' or a newline "
            "(pyspnego's NTLM_USER_FILE format)"
        )
    ntlm_user_file()
    key = username.lower()
    with _ntlm_lock:
        known = _ntlm_accounts.get(key)
        if known is not None and known[0] != password:
            raise ValueError(
                f"another running loopback endpoint accepts NTLM user {username!r} with another "
                "password; NTLM accounts are per process (pyspnego reads them from one file): "
                "give this endpoint another user name"
            )
        _ntlm_accounts[key] = (password, (known[1] if known else 0) + 1)
        _write_ntlm_accounts()


def _remove_ntlm_account(username: str) -> None:
    key = username.lower()
    with _ntlm_lock:
        known = _ntlm_accounts.get(key)
        if known is None:
            return
        if known[1] <= 1:
            del _ntlm_accounts[key]
        else:
            _ntlm_accounts[key] = (known[0], known[1] - 1)
        _write_ntlm_accounts()


def _unwrap(context: Any, body: bytes, content_type: str) -> bytes:
    """A ``multipart/encrypted`` WinRM body -> the SOAP envelope (MS-WSMV 2.2.9.1).

    Each part pair: a header part naming the protocol and ``OriginalContent: ...;Length=N``,
    then an ``application/octet-stream`` part: a 4-byte little-endian signature length, the
    signature, the sealed message.
    """
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/encrypted") or found is None:
        raise _Fault(INTERNAL_ERROR, "w:InvalidParameter", "not an encrypted WinRM message", 400)
    marker = ("--" + found.group(1)).encode()
    parts = [p for p in body.split(marker) if p.strip() and p.strip() != b"--"]
    if not parts or len(parts) % 2:
        raise _Fault(INTERNAL_ERROR, "w:InvalidParameter", "bad encrypted message", 400)
    out = b""
    for header, sealed in zip(parts[0::2], parts[1::2], strict=True):
        length = re.search(rb"Length=(\d+)", header)
        prefix = b"\r\n\tContent-Type: application/octet-stream\r\n"
        if length is None or not sealed.startswith(prefix):
            raise _Fault(INTERNAL_ERROR, "w:InvalidParameter", "bad encrypted part", 400)
        data = sealed[len(prefix) :]
        (sig_len,) = struct.unpack("<i", data[:4])
        plain = context.unwrap_winrm(data[4 : 4 + sig_len], data[4 + sig_len :])
        if len(plain) != int(length.group(1)):
            raise _Fault(INTERNAL_ERROR, "w:InvalidParameter", "encrypted length mismatch", 400)
        out += plain
    return out


def _wrap(context: Any, message: bytes) -> tuple[str, bytes]:
    """The SOAP envelope -> (Content-Type, ``multipart/encrypted`` body), as Windows answers."""
    signature, sealed, padding = context.wrap_winrm(message)
    body = (
        (
            f"--{_BOUNDARY}\r\n\tContent-Type: {SPNEGO_ENCRYPTED}\r\n"
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;"
            f"Length={len(message) + padding}\r\n"
            f"--{_BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n"
        ).encode()
        + struct.pack("<i", len(signature))
        + signature
        + sealed
    )
    body += f"--{_BOUNDARY}--\r\n".encode()
    content_type = f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="{_BOUNDARY}"'
    return content_type, body


class _Fault(Exception):
    def __init__(self, code: int, subcode: str, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.status = code, subcode, reason, status


class _Drop(Exception):
    """Close the connection without an answer."""


class _Pipeline:
    def __init__(self, server_pipeline: Any) -> None:
        self.ps = server_pipeline
        self.done = False
        self.hold = threading.Event()


class _Shell:
    def __init__(self, shell_id: str, resource_uri: str) -> None:
        import psrpcore

        self.id = shell_id
        self.resource_uri = resource_uri
        self.pool = psrpcore.ServerRunspacePool()
        self.pipelines: dict[str, _Pipeline] = {}
        # PSRP data waiting for a Receive, per target (None: the pool itself).
        self.outgoing: dict[str | None, deque[bytes]] = {}
        self.cond = threading.Condition()
        self.closed = False


def _key(pipeline_id: uuid.UUID | None) -> str | None:
    return str(pipeline_id).upper() if pipeline_id is not None else None


def _timeout_of(envelope: ET.Element) -> float:
    node = envelope.find("s:Header/wsman:OperationTimeout", NS)
    text = (node.text or "") if node is not None else ""
    if text.startswith("PT") and text.endswith("S"):
        with contextlib.suppress(ValueError):
            return float(text[2:-1])
    return 20.0


class WinRMTestServer:
    """A WS-Management/PSRP endpoint on 127.0.0.1 with a :class:`SimulatedHost` behind it.

    ``with WinRMTestServer(host) as server:`` then connect to ``server.target`` (a
    ``winrm://user@127.0.0.1:PORT`` string) with ``auth="basic"``, ``server.password`` and
    ``cert_validation=server.ca_file``; :meth:`settings` builds the
    :class:`~sectigo_chain.hosts.winrm.WinRMSettings` for that.

    ``auth`` lists the schemes the endpoint accepts, as ``WSMan:\\localhost\\Service\\Auth``
    does on Windows: ``"basic"`` and/or ``"negotiate"`` (NTLM with message encryption; with
    ``tls=False`` that is the HTTP listener on 5985 of a workgroup host).
    """

    def __init__(
        self,
        host: SimulatedHost | None = None,
        *,
        username: str = "lab-admin",
        password: str = "Lab-Passw0rd!",  # noqa: S107 - a loopback test endpoint's credential
        tls: bool = True,
        faults: TransportFaults | None = None,
        at: dt.datetime | None = None,
        auth: tuple[str, ...] | str = ("basic",),
        record_wire: bool = False,
    ) -> None:
        if host is None:
            from sectigo_chain.hosts.sim.host import SimulatedHost

            host = SimulatedHost()
        self.host = host
        self.username = username
        self.password = password
        self.tls = tls
        self.auth = (auth,) if isinstance(auth, str) else tuple(auth)
        unknown = set(self.auth) - {"basic", "negotiate"}
        if unknown or not self.auth:
            raise ValueError(f"auth must name 'basic' and/or 'negotiate', not {sorted(unknown)}")
        self.record_wire = record_wire
        #: every HTTP body as it crossed the wire (``record_wire=True``): test use only
        self.wire: list[WireMessage] = []
        self._ntlm_registered = False
        self.faults = faults or TransportFaults()
        self.stats = WinRMStats()
        #: every script and its parameters as they arrived, secrets included: test use only
        self.received: list[Received] = []
        self._at = at
        self._lock = threading.Lock()
        self._shells: dict[str, _Shell] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stopping = threading.Event()
        self.ca_file = ""
        self._templates: dict[str, str] | None = None

    # ------------------------------------------------------------------ life cycle

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the WinRM test server is not started")
        return int(self._httpd.server_address[1])

    @property
    def target(self) -> str:
        """``winrm://user@127.0.0.1:PORT`` (no password)."""
        return f"winrm://{self.username}@127.0.0.1:{self.port}"

    def settings(self, **overrides: Any) -> Any:
        """:class:`~sectigo_chain.hosts.winrm.WinRMSettings` that reach this endpoint."""
        from pydantic import SecretStr

        from sectigo_chain.hosts.winrm import WinRMSettings

        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "password": SecretStr(self.password),
            "ssl": self.tls,
            "auth": "basic" if "basic" in self.auth else "ntlm",
            "cert_validation": self.ca_file if self.tls else False,
        }
        values.update(overrides)
        if values["auth"] == "basic" and not values["ssl"]:
            # pypsrp cannot seal Basic messages: plain HTTP (a lab only, never a real host)
            values.setdefault("encryption", "never")
        return WinRMSettings(**values)

    def start(self) -> WinRMTestServer:
        if self._httpd is not None:
            return self
        _require_extra("psrpcore")
        if "negotiate" in self.auth:
            _require_extra("spnego")
            if not self._ntlm_registered:
                _add_ntlm_account(self.username, self.password)
                self._ntlm_registered = True
        server = self

        class Handler(_Handler):
            endpoint = server

        httpd = _Server(("127.0.0.1", 0), Handler)
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="sectigo-chain-winrm-")
            ctx, self.ca_file = _lab_tls(self._tmp.name, self._at)
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        # A long poll interval keeps 100 idle servers from waking 2000 times a second; stop()
        # wakes the loop at once with a connection.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 1.0}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, release held requests and pipelines (idempotent)."""
        self._stopping.set()
        with self._lock:
            shells = list(self._shells.values())
        for shell in shells:
            with shell.cond:
                shell.closed = True
                for p in shell.pipelines.values():
                    p.hold.set()
                shell.cond.notify_all()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            waiter = threading.Thread(target=httpd.shutdown, daemon=True)
            waiter.start()
            port = int(httpd.server_address[1])
            while waiter.is_alive():
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                waiter.join(timeout=0.05)
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if self._ntlm_registered:
            _remove_ntlm_account(self.username)
            self._ntlm_registered = False

    def __enter__(self) -> WinRMTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def close_shells(self) -> None:
        """Close every shell on the server side (as an idle timeout or a WinRM restart does)."""
        with self._lock:
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            with shell.cond:
                shell.closed = True
                shell.cond.notify_all()

    @property
    def open_shells(self) -> int:
        with self._lock:
            return len(self._shells)

    # ------------------------------------------------------------------ WS-Management

    def _template_names(self) -> dict[str, str]:
        if self._templates is None:
            from sectigo_chain.templates.render import TEMPLATE_NAMES, template_text

            self._templates = {template_text(name): name for name in TEMPLATE_NAMES}
        return self._templates

    def revoked(self) -> bool:
        """True once the ``unauthorized_after`` fault applies (credentials revoked)."""
        return self.faults.unauthorized_after is not None and (
            self.stats.total_requests >= self.faults.unauthorized_after
        )

    def authorized(self, header: str | None) -> bool:
        """A valid ``Basic`` Authorization header (when ``"basic"`` is accepted)."""
        if self.revoked() or "basic" not in self.auth:
            return False
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.username and password == self.password

    def handle(self, body: bytes) -> bytes:
        """One SOAP envelope in, one out (or :class:`_Fault` / :class:`_Drop`)."""
        envelope = ET.fromstring(body)  # noqa: S314 - from a local test client
        action_uri = envelope.findtext("s:Header/wsa:Action", "", NS)
        action = ACTIONS.get(action_uri)
        message_id = envelope.findtext("s:Header/wsa:MessageID", "", NS)
        with self._lock:
            self.stats.requests[action or action_uri] += 1
        if self.faults.latency:
            time.sleep(self.faults.latency)
        if action is None:
            raise _Fault(INTERNAL_ERROR, "w:ActionNotSupported", f"unsupported action {action_uri}")
        if self.faults.http_500_once == action:
            self.faults.http_500_once = None
            raise _Fault(
                INTERNAL_ERROR,
                "w:InternalError",
                "The WS-Management service cannot process the request (injected fault).",
            )
        body_xml = getattr(self, f"_do_{action.lower()}")(envelope)
        return _ENVELOPE.format(
            action=escape(action_uri + "Response"),
            mid=str(uuid.uuid4()).upper(),
            relates=escape(message_id),
            body=body_xml,
        ).encode("utf-8")

    def _shell_of(self, envelope: ET.Element) -> _Shell:
        shell_id = ""
        for sel in envelope.findall("s:Header/wsman:SelectorSet/wsman:Selector", NS):
            if sel.get("Name") == "ShellId":
                shell_id = (sel.text or "").upper()
        with self._lock:
            shell = self._shells.get(shell_id)
        if shell is None or shell.closed:
            raise _Fault(
                SHELL_NOT_FOUND,
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed "
                "because the shell was not found on the server. Possible causes are: the "
                "specified ShellId is incorrect or the shell no longer exists on the server. "
                "Provide the correct ShellId or create a new shell and retry the operation.",
            )
        return shell

    def _feed(self, shell: _Shell, data: bytes) -> None:
        """PSRP fragments from the client -> psrpcore; start any pipeline that is complete."""
        import psrpcore

        with shell.cond:
            shell.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, None))
            while True:
                event = shell.pool.next_event()
                if event is None:
                    break
                if isinstance(event, psrpcore.CreatePipelineEvent):
                    pipe = shell.pipelines[_key(event.pipeline_id) or ""]
                    threading.Thread(
                        target=self._run_pipeline,
                        args=(shell, pipe, event.pipeline),
                        daemon=True,
                    ).start()
            self._flush(shell)

    def _flush(self, shell: _Shell) -> None:
        """Move what psrpcore has to send into the per-target queues (caller holds cond)."""
        while True:
            payload = shell.pool.data_to_send(_FRAGMENT)
            if payload is None:
                break
            shell.outgoing.setdefault(_key(payload.pipeline_id), deque()).append(payload.data)
        shell.cond.notify_all()

    def _do_create(self, envelope: ET.Element) -> str:
        node = envelope.find("s:Body/rsp:Shell", NS)
        if node is None:
            raise _Fault(INTERNAL_ERROR, "w:InvalidParameter", "no Shell element")
        shell_id = (node.get("ShellId") or str(uuid.uuid4())).upper()
        resource_uri = envelope.findtext("s:Header/wsman:ResourceURI", "", NS)
        shell = _Shell(shell_id, resource_uri)
        creation = node.findtext("pwsh:creationXml", "", NS)
        with self._lock:
            self._shells[shell_id] = shell
            self.stats.pools_opened += 1
        self._feed(shell, base64.b64decode(creation))
        return (
            "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{escape(resource_uri)}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(self.username)}</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP>"
            "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            "<rsp:InputStreams>stdin pr</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout</rsp:OutputStreams></rsp:Shell>"
        )

    def _do_get(self, envelope: ET.Element) -> str:
        shell = self._shell_of(envelope)
        return (
            f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{escape(shell.resource_uri)}</rsp:ResourceUri>"
            "<rsp:State>Connected</rsp:State></rsp:Shell>"
        )

    def _do_delete(self, envelope: ET.Element) -> str:
        shell = self._shell_of(envelope)
        with self._lock:
            self._shells.pop(shell.id, None)
        with shell.cond:
            shell.closed = True
            for p in shell.pipelines.values():
                p.hold.set()
            shell.cond.notify_all()
        return ""

    def _do_command(self, envelope: ET.Element) -> str:
        import psrpcore

        if self.faults.close_shell_once:
            self.faults.close_shell_once = False
            self.close_shells()
        shell = self._shell_of(envelope)
        line = envelope.find("s:Body/rsp:CommandLine", NS)
        if line is None:
            raise _Fault(INTERNAL_ERROR, "w:InvalidParameter", "no CommandLine element")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        with shell.cond:
            pipe = _Pipeline(psrpcore.ServerPipeline(shell.pool, uuid.UUID(command_id)))
            shell.pipelines[command_id] = pipe
        with self._lock:
            self.stats.pipelines += 1
        for argument in line.findall("rsp:Arguments", NS):
            self._feed(shell, base64.b64decode(argument.text or ""))
        return (
            f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )

    def _do_send(self, envelope: ET.Element) -> str:
        shell = self._shell_of(envelope)
        for stream in envelope.findall("s:Body/rsp:Send/rsp:Stream", NS):
            self._feed(shell, base64.b64decode(stream.text or ""))
        return "<rsp:SendResponse/>"

    def _do_signal(self, envelope: ET.Element) -> str:
        shell = self._shell_of(envelope)
        node = envelope.find("s:Body/rsp:Signal", NS)
        command_id = ((node.get("CommandId") if node is not None else "") or "").upper()
        code = envelope.findtext("s:Body/rsp:Signal/rsp:Code", "", NS)
        with shell.cond:
            pipe = shell.pipelines.get(command_id)
            if pipe is not None:
                pipe.hold.set()
                if code == _SIGNAL_PS_CTRL_C and not pipe.done:
                    with contextlib.suppress(Exception):
                        pipe.ps.stop()
                    pipe.done = True
                if code in (_SIGNAL_TERMINATE, _SIGNAL_PS_CTRL_C):
                    with contextlib.suppress(Exception):
                        pipe.ps.close()
                    shell.pipelines.pop(command_id, None)
                self._flush(shell)
        return "<rsp:SignalResponse/>"

    def _do_receive(self, envelope: ET.Element) -> str:
        shell = self._shell_of(envelope)
        stream = envelope.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
        command_id = stream.get("CommandId") if stream is not None else None
        target = command_id.upper() if command_id else None
        if target is not None:
            if self.faults.drop_receives > 0:
                self.faults.drop_receives -= 1
                raise _Drop
            if self.faults.hang_receives > 0:
                self.faults.hang_receives -= 1
                self._stopping.wait()
                raise _Drop
        deadline = time.monotonic() + _timeout_of(envelope)
        with shell.cond:
            while True:
                if shell.closed:
                    raise _Fault(SHELL_NOT_FOUND, "w:InvalidSelectors", "the shell was closed")
                queue = shell.outgoing.get(target)
                if queue:
                    chunks = list(queue)
                    queue.clear()
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    with self._lock:
                        self.stats.operation_timeouts += 1
                    raise _Fault(
                        OPERATION_TIMEOUT,
                        "w:TimedOut",
                        "The WS-Management service cannot complete the operation within the "
                        "time specified in OperationTimeout.",
                    )
                shell.cond.wait(remaining)
            pipe = shell.pipelines.get(target or "")
            done = pipe is not None and pipe.done and not shell.outgoing.get(target)
        attr = f' CommandId="{target}"' if target else ""
        parts = [
            f'<rsp:Stream Name="stdout"{attr}>{base64.b64encode(c).decode()}</rsp:Stream>'
            for c in chunks
        ]
        if target:
            state = "Done" if done else "Running"
            parts.append(
                f'<rsp:CommandState CommandId="{target}" State="{_SHELL}CommandState/{state}"/>'
            )
        return "<rsp:ReceiveResponse>" + "".join(parts) + "</rsp:ReceiveResponse>"

    # ------------------------------------------------------------------ the "PowerShell"

    def _run_pipeline(self, shell: _Shell, pipe: _Pipeline, metadata: Any) -> None:
        import psrpcore
        from psrpcore.types import ErrorCategory, ErrorCategoryInfo, NETException

        commands = list(getattr(metadata, "commands", []))
        script = commands[0].command_text if commands else ""
        parameters = {name: value for name, value in (commands[0].parameters if commands else [])}
        template = self._template_names().get(script)
        with self._lock:
            self.received.append(Received(template, script, dict(parameters)))
            self.stats.templates.append(template or "?")
        with shell.cond:
            pipe.ps.start()
            self._flush(shell)
        if self.faults.close_shell_after is not None:
            delay, self.faults.close_shell_after = self.faults.close_shell_after, None
            timer = threading.Timer(delay, self.close_shells)
            timer.daemon = True
            timer.start()
        if self.faults.pipeline_delay:
            pipe.hold.wait(self.faults.pipeline_delay)
        outputs: list[str] = []
        warnings: list[str] = []
        failure: list[str] | None = None
        hang = False
        if template is None:
            failure = ["this loopback endpoint only runs the sectigo_chain templates"]
        else:
            try:
                outputs, warnings, failure, hang = self._simulate(template, parameters)
            except Exception as exc:  # a bug of the model must not hang the client
                failure = [f"the simulated host failed: {type(exc).__name__}: {exc}"]
        if hang:  # the host never finishes: Receive keeps timing out until Signal/Delete
            pipe.hold.wait()
            return
        with shell.cond:
            if (
                shell.closed
                or pipe.done
                or pipe.ps.state != psrpcore.types.PSInvocationState.Running
            ):
                return
            for text in outputs:
                pipe.ps.write_output(text)
            for text in warnings:
                pipe.ps.write_warning(text)
            if failure is None:
                pipe.ps.complete()
            else:
                # Non-terminating records first; the last one is the terminating error, which
                # PowerShell sends only inside the Failed pipeline state.
                for text in failure[:-1]:
                    pipe.ps.write_error(
                        NETException(Message=text),
                        ErrorCategoryInfo(
                            Category=ErrorCategory.InvalidOperation, Reason="RuntimeException"
                        ),
                        fully_qualified_error_id="sectigo_chain.loopback",
                    )
                record = psrpcore.types.ErrorRecord(
                    Exception=NETException(Message=failure[-1]),
                    CategoryInfo=ErrorCategoryInfo(
                        Category=ErrorCategory.InvalidOperation, Reason="RuntimeException"
                    ),
                    FullyQualifiedErrorId="sectigo_chain.loopback",
                )
                pipe.ps._change_state(psrpcore.types.PSInvocationState.Failed, record)
            pipe.done = True
            self._flush(shell)

    def _simulate(
        self, template: str, parameters: dict[str, Any]
    ) -> tuple[list[str], list[str], list[str] | None, bool]:
        """(outputs, warnings, error records or None, never finishes) of one template run."""
        import json

        from sectigo_chain.errors import (
            ConnectionFailed,
            ScriptFailed,
            ScriptTimeout,
            TemplateError,
        )
        from sectigo_chain.templates.render import decode_payload

        payload = parameters.get("Payload")
        if not isinstance(payload, str) or not payload:
            return [], [], ["Cannot bind argument to parameter 'Payload' (it is empty)"], False
        try:
            decode_payload(payload)
        except (ValueError, TemplateError) as exc:
            # Read-SectigoPayload throws inside the template's try: the catch writes the
            # document with ok=false (FromBase64String / ConvertFrom-Json failed).
            document = {
                "ok": False,
                "changed": False,
                "data": None,
                "error": {
                    "message": f"the payload could not be read: {type(exc).__name__}",
                    "category": "InvalidArgument",
                    "type": "System.FormatException",
                },
            }
            return [json.dumps(document, separators=(",", ":"))], [], None, False
        script = _script_for(template, payload)
        try:
            result = self.host.run(script, timeout=3600)
        except ScriptFailed as exc:
            return [], [], list(exc.records) or [str(exc)], False
        except ScriptTimeout:
            return [], [], None, True
        except ConnectionFailed:
            # The host went away after the script ran: the reply never comes.
            self.faults.drop_receives += 1
            return [], [], None, True
        document = {
            "ok": result.ok,
            "changed": result.changed,
            "data": result.data,
            "error": result.error,
        }
        # Write-SectigoResult escapes every non-ASCII character (ensure_ascii).
        text = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
        return [text], list(result.warnings), None, False


def _script_for(template: str, payload: str) -> RenderedScript:
    """A RenderedScript for ``template`` carrying ``payload`` exactly as it arrived."""
    from sectigo_chain.errors import TemplateError
    from sectigo_chain.templates.params import TEMPLATE_SPECS
    from sectigo_chain.templates.render import RenderedScript, decode_payload, render

    try:
        return replace(render(template, decode_payload(payload)), payload=payload)
    except (TemplateError, ValueError):
        spec = TEMPLATE_SPECS[template]
        return RenderedScript(
            name=template,
            text="",
            payload=payload,
            params=spec.model.model_construct(),
            secret_fields=spec.secret_fields,
            idempotent=spec.idempotent,
            read_only=spec.read_only,
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: a client that hangs up (or stop()'s wake-up connection) is not news."""


class _Handler(BaseHTTPRequestHandler):
    endpoint: WinRMTestServer
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms to
    # every answer, which would swamp the latency the benchmarks add on purpose.
    disable_nagle_algorithm = True
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    #: the NTLM/SPNEGO security context of this connection (HTTP authentication in the
    #: ``Negotiate`` scheme is per connection, and so is the message encryption it keys)
    security: Any = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silent (the default writes every request to stderr)."""

    def _refuse(self) -> None:
        """401 with the schemes on offer, as Windows lists them (one header each)."""
        ep = self.endpoint
        with ep._lock:
            ep.stats.requests["401"] += 1
        self.security = None
        offers = []
        if "negotiate" in ep.auth:
            offers.append("Negotiate")
        if "basic" in ep.auth:
            offers.append('Basic realm="WSMAN"')
        self._answer(401, b"", offers=offers)

    def _negotiate(self, token: bytes) -> tuple[bool, bytes | None]:
        """One step of the NTLM handshake: (complete, token to send back)."""
        import spnego

        if self.security is None or self.security.complete:
            self.security = spnego.server(
                protocol="negotiate",
                options=spnego.NegotiateOptions.use_negotiate
                | spnego.NegotiateOptions.wrapping_winrm,
            )
        out = self.security.step(token)
        return bool(self.security.complete), out

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ep = self.endpoint
        content_type = self.headers.get("Content-Type") or ""
        if ep.record_wire:
            with ep._lock:
                ep.wire.append(WireMessage("request", 0, content_type, body))
        header = self.headers.get("Authorization") or ""
        final: bytes | None = None
        if ep.revoked():
            self._refuse()
            return
        if header.startswith("Negotiate ") and "negotiate" in ep.auth:
            from spnego.exceptions import SpnegoError

            try:
                complete, out = self._negotiate(base64.b64decode(header[10:]))
            except (SpnegoError, ValueError):  # a wrong password, an unknown user, junk
                self._refuse()
                return
            if not complete:
                with ep._lock:
                    ep.stats.requests["401"] += 1
                token = "Negotiate " + base64.b64encode(out or b"").decode()
                self._answer(401, b"", offers=[token])
                return
            final = out
        elif header.startswith("Basic "):
            if not ep.authorized(header):
                self._refuse()
                return
        elif self.security is None or not self.security.complete:
            self._refuse()
            return
        encrypted = content_type.startswith("multipart/")
        offers = ["Negotiate " + base64.b64encode(final).decode()] if final else None
        try:
            if encrypted:
                if self.security is None or not self.security.complete:
                    self._refuse()
                    return
                body = _unwrap(self.security, body, content_type)
            if not body:
                self._answer(200, b"", offers=offers)
                return
            reply = ep.handle(body)
        except _Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except _Fault as fault:
            self._answer(fault.status, _fault_envelope(fault), encrypt=encrypted, offers=offers)
            return
        except ET.ParseError:
            self._answer(400, b"")
            return
        except Exception as exc:  # a message that does not decrypt (a bad signature)
            if type(exc).__module__.startswith("spnego"):
                self._refuse()
                return
            raise
        self._answer(200, reply, encrypt=encrypted, offers=offers)

    def _answer(
        self,
        status: int,
        body: bytes,
        *,
        encrypt: bool = False,
        offers: list[str] | None = None,
    ) -> None:
        ep = self.endpoint
        content_type = "application/soap+xml;charset=UTF-8"
        if encrypt and body:
            content_type, body = _wrap(self.security, body)
        if ep.record_wire:
            with ep._lock:
                ep.wire.append(WireMessage("response", status, content_type, body))
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for value in offers or ():
                self.send_header("WWW-Authenticate", value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


def _fault_envelope(fault: _Fault) -> bytes:
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault Code="{fault.code}" Machine="127.0.0.1">'
        f"<f:Message>{escape(fault.reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _ENVELOPE.format(
        action="http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
        mid=str(uuid.uuid4()).upper(),
        relates="",
        body=body,
    ).encode("utf-8")


def _lab_tls(directory: str, at: dt.datetime | None) -> tuple[ssl.SSLContext, str]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost, valid around ``at``."""
    now = at or dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sectigo_chain WinRM lab CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=30)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file = os.path.join(directory, "winrm-lab-ca.pem")
    chain_file = os.path.join(directory, "winrm-chain.pem")
    key_file = os.path.join(directory, "winrm-key.pem")
    with open(ca_file, "wb") as fh:
        fh.write(ca.public_bytes(pem))
    with open(chain_file, "wb") as fh:
        fh.write(leaf.public_bytes(pem))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            leaf_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(chain_file, key_file)
    os.unlink(key_file)
    return ctx, ca_file
