"""Loopback TLS servers for tests, benchmarks, the simulated host and the demo.

Everything here listens on 127.0.0.1 only and needs nothing beyond the standard library and
``cryptography``.

* :class:`ServerLoop` runs ONE background thread with a selector that serves any number of
  listening sockets (200 servers cost 200 sockets, not 200 threads).
* :class:`LoopbackTLSServer` serves a given certificate chain, in the given order, with its key,
  optionally a different chain per SNI name, between a minimum and maximum TLS version.
* :class:`HostileServer` misbehaves on purpose: it hangs, resets, answers in plain text, sends
  garbage, trickles bytes forever, or never completes the TCP connect (``blackhole``).

The chain order is exactly the order given: ``SSLContext.load_cert_chain`` sends the file's
certificates as they appear (the PEM files are written to a private temporary directory and
deleted as soon as they are loaded).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import selectors
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any, Literal, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

__all__ = [
    "HostileBehavior",
    "HostileServer",
    "LoopbackTLSServer",
    "ServerLoop",
    "server_context",
]

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_WIRE_VERSIONS = {"TLSv1.2": "1.2", "TLSv1.3": "1.3"}
_HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
_HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

Handler = Callable[[int], None]
ChainAndKey = tuple[Sequence[x509.Certificate], CertificateIssuerPrivateKeyTypes]
_L = TypeVar("_L", bound="_Listener")
HostileBehavior = Literal["hang", "reset", "close", "plaintext", "garbage", "trickle", "blackhole"]


class ServerLoop:
    """One thread, one selector, many loopback servers. Use as a context manager.

    Servers created with ``loop=`` share it; a server created without one owns a private loop.
    Callbacks run on the loop thread; an exception in one is recorded in :attr:`errors` and the
    loop carries on.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._calls: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []
        self._selector.register(self._wake_r, _READ, self._drain_wake)

    def __enter__(self) -> ServerLoop:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="loopback-tls", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and close the selector (servers should be closed first)."""
        if self._thread is not None:
            self.call_soon(self._stop)
            self._thread.join(10)
            self._thread = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread (thread-safe)."""
        self._calls.append(fn)
        with contextlib.suppress(OSError):  # a full wake pipe wakes the loop anyway
            self._wake_w.send(b"\0")

    def run_sync(self, fn: Callable[[], None], timeout: float = 10.0) -> None:
        """Run ``fn`` on the loop thread and wait for it."""
        if self._thread is None or threading.current_thread() is self._thread:
            fn()
            return
        done = threading.Event()

        def call() -> None:
            try:
                fn()
            finally:
                done.set()

        self.call_soon(call)
        done.wait(timeout)

    # The methods below are for the loop thread only.
    def register(self, sock: socket.socket, events: int, handler: Handler) -> None:
        self._selector.register(sock, events, handler)

    def modify(self, sock: socket.socket, events: int, handler: Handler) -> None:
        self._selector.modify(sock, events, handler)

    def unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))

    def _stop(self) -> None:
        self._stopping = True

    def _drain_wake(self, _mask: int) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # a broken handler must not stop the other servers
            self.errors.append(exc)

    def _run(self) -> None:
        while not self._stopping:
            timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None
            for key, mask in self._selector.select(timeout):
                self._guard(partial(key.data, mask))
            while self._timers and self._timers[0][0] <= time.monotonic():
                self._guard(heapq.heappop(self._timers)[2])
            while self._calls:
                self._guard(self._calls.popleft())


class _Listener:
    """A listening socket on 127.0.0.1 attached to a :class:`ServerLoop`."""

    def __init__(self, *, loop: ServerLoop | None, backlog: int = 1024) -> None:
        self._own_loop = loop is None
        self._loop = loop if loop is not None else ServerLoop()
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(backlog)
        self._listen.setblocking(False)
        self._open: set[socket.socket] = set()
        self._started = False
        self.host, self.port = "127.0.0.1", int(self._listen.getsockname()[1])
        self.connections = 0
        """How many TCP connections this server accepted."""

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __enter__(self: _L) -> _L:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._loop.start()
            self._loop.run_sync(self._attach)

    def close(self) -> None:
        """Stop listening and close every open connection."""
        if self._started:
            self._started = False
            self._loop.run_sync(self._detach)
        else:
            self._listen.close()
        if self._own_loop:
            self._loop.close()

    def _attach(self) -> None:
        self._loop.register(self._listen, _READ, self._on_accept)

    def _detach(self) -> None:
        for sock in [self._listen, *self._open]:
            self._loop.unregister(sock)
            sock.close()
        self._open.clear()

    def _on_accept(self, _mask: int) -> None:
        while True:
            try:
                conn, _ = self._listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. ECONNABORTED: the client gave up before we accepted
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stalls
            self.connections += 1
            self._open.add(conn)
            self._accepted(conn)

    def _accepted(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _drop(self, sock: socket.socket, *, reset: bool = False) -> None:
        self._loop.unregister(sock)
        self._open.discard(sock)
        if reset:  # SO_LINGER on with a zero timeout: close() sends RST instead of FIN
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def server_context(
    chain: Sequence[x509.Certificate],
    key: CertificateIssuerPrivateKeyTypes,
    *,
    min_version: str = "1.2",
    max_version: str = "1.3",
) -> ssl.SSLContext:
    """A server ``SSLContext`` that sends ``chain`` in exactly this order (leaf first)."""
    if not chain:
        raise ValueError("a server needs at least a leaf certificate")
    if not {min_version, max_version} <= _TLS_VERSIONS.keys():
        raise ValueError(
            f"TLS versions must be '1.2' or '1.3', not {min_version!r}/{max_version!r}"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS[min_version]
    ctx.maximum_version = _TLS_VERSIONS[max_version]
    # Security level 0: a test server sends whatever chain it is given, weak or damaged
    # intermediates included (the client's judgement of them is what is tested).
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    directory = tempfile.mkdtemp(prefix="sectigo-chain-tls-")  # mode 0700
    try:
        chain_file = os.path.join(directory, "chain.pem")
        key_file = os.path.join(directory, "key.pem")
        with open(chain_file, "wb") as fh:
            fh.writelines(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        ctx.load_cert_chain(chain_file, key_file)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return ctx


class _TLSConn:
    __slots__ = ("handshaking", "sock")

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.handshaking = True


class LoopbackTLSServer(_Listener):
    """Serve ``chain`` (leaf first, sent in this order) with ``key`` on 127.0.0.1:<ephemeral>.

    ``sni`` maps server names (case-insensitive) to their own ``(chain, key)``; a client that
    sends another name, or none, gets the default chain. After the handshake the server answers
    any request with a tiny ``HTTP/1.1 200`` and closes. :attr:`handshakes` records
    ``(server name or None, "1.2"/"1.3")`` per completed handshake.
    """

    def __init__(
        self,
        chain: Sequence[x509.Certificate],
        key: CertificateIssuerPrivateKeyTypes,
        *,
        sni: Mapping[str, ChainAndKey] | None = None,
        min_version: str = "1.2",
        max_version: str = "1.3",
        loop: ServerLoop | None = None,
    ) -> None:
        versions = {"min_version": min_version, "max_version": max_version}
        self._context = server_context(chain, key, **versions)
        self._sni_contexts = {
            name.lower(): server_context(c, k, **versions) for name, (c, k) in (sni or {}).items()
        }
        self._names: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._context.sni_callback = self._on_sni
        self.handshakes: deque[tuple[str | None, str]] = deque(maxlen=100_000)
        self.failed_handshakes = 0
        super().__init__(loop=loop)

    def _on_sni(self, sslobj: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
        if name is not None:
            self._names[sslobj] = name
            chosen = self._sni_contexts.get(name.lower())
            if chosen is not None:
                sslobj.context = chosen

    def _accepted(self, conn: socket.socket) -> None:
        self._open.discard(conn)
        try:
            tls = self._context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except OSError:
            conn.close()
            return
        self._open.add(tls)
        state = _TLSConn(tls)
        self._loop.register(tls, _READ, lambda _m: self._step(state))
        self._step(state)

    def _want(self, state: _TLSConn, events: int) -> None:
        self._loop.modify(state.sock, events, lambda _m: self._step(state))

    def _step(self, state: _TLSConn) -> None:
        tls = state.sock
        if not state.handshaking:  # answer one request (or the client's close) and hang up
            try:
                if tls.recv(65536):
                    tls.send(_HTTP_OK)
            except ssl.SSLWantReadError:
                return
            except (ssl.SSLError, OSError):
                pass
            self._drop(tls)
            return
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            self._want(state, _READ)
        except ssl.SSLWantWriteError:
            self._want(state, _WRITE)
        except (ssl.SSLError, OSError):
            self.failed_handshakes += 1
            self._drop(tls)
        else:
            state.handshaking = False
            version = tls.version() or "?"
            self.handshakes.append((self._names.get(tls), _WIRE_VERSIONS.get(version, version)))
            self._want(state, _READ)


_GARBAGE = bytes(range(1, 256)) * 64  # never starts like a TLS record


class HostileServer(_Listener):
    """A server on 127.0.0.1 that misbehaves on purpose.

    ``hang``: accepts and never answers. ``reset``: reads the first bytes, then resets (RST).
    ``close``: reads the first bytes, then closes cleanly (FIN). ``plaintext``: answers like a
    plain HTTP server (``400 Bad Request``) and closes. ``garbage``: sends 16 KiB of non-TLS
    bytes and keeps the connection open. ``trickle``: sends the header of a TLS record and then
    one byte every ``interval`` seconds, forever. ``blackhole``: the TCP connect never completes
    (the accept queue is full, so a Linux kernel drops the SYN).
    """

    def __init__(
        self, behavior: HostileBehavior, *, loop: ServerLoop | None = None, interval: float = 0.05
    ) -> None:
        self.behavior = behavior
        self.interval = interval
        self._fillers: list[socket.socket] = []
        super().__init__(loop=loop, backlog=0 if behavior == "blackhole" else 1024)

    def _attach(self) -> None:
        if self.behavior != "blackhole":
            super()._attach()
            return
        for _ in range(3):  # fill the accept queue so the kernel drops further SYNs
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(self.address)
            self._fillers.append(filler)

    def _detach(self) -> None:
        super()._detach()
        for filler in self._fillers:
            filler.close()
        self._fillers.clear()

    def _accepted(self, conn: socket.socket) -> None:
        behavior = self.behavior
        if behavior == "garbage":
            _send_some(conn, _GARBAGE)
        if behavior == "trickle":
            _send_some(conn, b"\x16\x03\x03\x40\x00")  # a 16 KiB handshake record follows...
            self._loop.call_later(self.interval, lambda: self._trickle(conn))
        if behavior in ("reset", "close", "plaintext"):
            self._loop.register(conn, _READ, lambda _m: self._answer(conn))
        else:  # hang, garbage, trickle: read and discard whatever the client sends
            self._loop.register(conn, _READ, lambda _m: self._discard(conn))

    def _discard(self, conn: socket.socket) -> None:
        try:
            if conn.recv(65536):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self._drop(conn)

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            pass
        if self.behavior == "plaintext":
            _send_some(conn, _HTTP_400)
        self._drop(conn, reset=self.behavior == "reset")

    def _trickle(self, conn: socket.socket) -> None:
        if conn in self._open and _send_some(conn, b"\x01"):
            self._loop.call_later(self.interval, lambda: self._trickle(conn))


def _send_some(conn: socket.socket, data: bytes) -> bool:
    """Send what fits now; False when the connection is gone."""
    try:
        conn.send(data)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return True
