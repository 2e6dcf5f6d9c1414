"""The I/O engine behind :mod:`sectigo_chain.tls.fetch` (private).

One thread drives every connection: non-blocking sockets on one selector, TLS through
pyOpenSSL memory BIOs so that this code sees every byte (to cap them and to show what a
non-TLS server answered), and explicit deadlines per phase. Name lookups, which block, run in a few
threads and are polled. A job never raises: it ends with a :class:`Handshake` or a
:class:`Failure`, and :mod:`sectigo_chain.tls.fetch` turns those into results and errors.

Measured on 2 cores against loopback servers: this single thread does as well as a pool of
blocking threads (OpenSSL's handshake CPU is the bound), and it keeps the total deadline,
which per-call socket timeouts cannot.

TLS is pyOpenSSL's, i.e. the OpenSSL that cryptography's wheels carry (4.0 today), not the
one Python's ``ssl`` was built with (3.0 on many systems, whose certificate decoding makes a
client handshake cost about twice the CPU: ``benchmarks/bench_check.py --budget``).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import selectors
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Generator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL, crypto

from sectigo_chain.errors import TLSConnectError, TLSFetchError, TLSHandshakeError, TLSTimeout
from sectigo_chain.x509._record import Frozen

if TYPE_CHECKING:  # imported when a name is first resolved: IP targets never need it
    from concurrent.futures import Future, ThreadPoolExecutor

MAX_HANDSHAKE_BYTES = 1 << 20
"""Bytes a server may send before its handshake must be complete."""
START_BATCH = 4
"""New connections opened, and TLS handshakes begun, per turn of the engine's loop (see
:meth:`Engine.run_iter`)."""

_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EAGAIN}
_RESETS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
_OUT_OF_ROOM = {
    errno.EMFILE: (
        "this process's open-file limit",
        "raise it (ulimit -n) or lower the concurrency",
    ),
    errno.ENFILE: ("the system's open-file limit", "raise fs.file-max or lower the concurrency"),
    errno.ENOSPC: (
        "epoll's watch limit",
        "raise fs.epoll.max_user_watches or lower the concurrency",
    ),
    errno.ENOBUFS: ("its socket buffer space", "lower the concurrency"),
    errno.ENOMEM: ("its memory", "lower the concurrency"),
}
"""This machine's limits (what ran out, what to do), not the target's: a connection that hits
one waits for another to end and is tried again, at a lower concurrency from then on
(:meth:`Job.defer`); only one that hits it with no other connection open fails."""
_VERSION_REASONS = {
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK",
}
_EOF_REASONS = {"UNEXPECTED_EOF_WHILE_READING"}  # the server closed mid-handshake
_WIRE_VERSIONS = {"TLSv1.2": "1.2", "TLSv1.3": "1.3"}
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
# Which failure explains best why no TLS version worked (higher wins).
RANK_VERSION, RANK_HANDSHAKE, RANK_RESET, RANK_TIMEOUT, RANK_CONNECT = range(1, 6)
_NOT_HTTPS = "is this port serving HTTPS?"


class Handshake(Frozen):
    address: str
    tls_version: str
    cipher: str
    der: tuple[bytes, ...]


class Failure(Frozen):
    """Why a job failed. ``{v}`` in ``what`` stands for the TLS version(s)."""

    kind: type[TLSFetchError]
    what: str
    hint: str = ""
    rank: int = RANK_HANDSHAKE


@lru_cache(maxsize=4096)
def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def idna_name(name: str) -> bytes:
    """``name.encode("idna")``, without importing the codec (and ``stringprep``) for a valid
    ASCII name: the codec's own ASCII path (each label 1-63 characters, the last may be empty:
    a trailing dot). Anything else goes to the codec, for its answer or its error."""
    if name.isascii():
        labels = name.split(".")
        if all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64:
            return name.encode("ascii")
    return name.encode("idna")


def peer_chain(tls: SSL.Connection) -> list[bytes]:
    """The certificates the peer sent, in wire order (DER). On the client side OpenSSL's
    ``SSL_get_peer_cert_chain`` is the list as received, the leaf first."""
    asn1 = crypto.FILETYPE_ASN1
    return [crypto.dump_certificate(asn1, c) for c in tls.get_peer_cert_chain() or ()]


def ssl_reason(exc: SSL.Error) -> str:
    """OpenSSL's reason for ``exc`` as its macro name (``TLSV1_ALERT_PROTOCOL_VERSION``), the
    last one queued; the exception's class name when OpenSSL queued none."""
    queued = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    for entry in reversed(queued):
        if isinstance(entry, tuple) and len(entry) == 3 and entry[2]:
            return str(entry[2]).upper().replace(" ", "_")
    return type(exc).__name__


class Engine:
    """Runs jobs (one per target and TLS version) on one selector with deadlines."""

    def __init__(self, *, timeout: float, connect_timeout: float, handshake_timeout: float) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        try:
            self.selector = selectors.DefaultSelector()
        except OSError as exc:  # EMFILE ...: not one connection could be watched
            if exc.errno not in _OUT_OF_ROOM:
                raise
            limit, hint = _OUT_OF_ROOM[exc.errno]
            raise TLSFetchError(
                f"cannot start the TLS client: this machine hit {limit} ({exc.strerror}); {hint}"
            ) from None
        self._deadlines: dict[int, float] = {}
        self._resolver: ThreadPoolExecutor | None = None
        self._lookups: dict[tuple[str, int], Future[list[Any]]] = {}
        self._connected: deque[Job] = deque()  # TCP up, TLS not begun yet (run_iter begins it)
        self.sockets = 0  # open now: another may open once one of them closes
        self._deferred: list[Job] = []  # could not open for this machine's limits (Job.defer)

    def total_deadline(self, group: int, now: float) -> float:
        """A target's total deadline starts with its first connection."""
        return self._deadlines.setdefault(group, now + self.timeout)

    def resolve(self, host: str, port: int) -> Future[list[Any]]:
        if self._resolver is None:
            from concurrent.futures import ThreadPoolExecutor

            self._resolver = ThreadPoolExecutor(8, thread_name_prefix="sectigo-chain-dns")
        key = (host, port)
        if key not in self._lookups:
            lookup = self._resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
            self._lookups[key] = lookup
        return self._lookups[key]

    def run(self, jobs: list[Job], concurrency: int, follow_up: FollowUp | None = None) -> None:
        """Run ``jobs`` to the end."""
        for _ in self.run_iter(jobs, concurrency, follow_up):
            pass

    def run_iter(
        self, jobs: list[Job], concurrency: int, follow_up: FollowUp | None = None
    ) -> Generator[int, None, None]:
        """Run ``jobs``, yielding each group (one target) as soon as all its jobs have ended.

        While the caller holds a yielded group, nothing here runs (the servers go on with the
        handshakes in flight); that time is added to every running job's deadlines, so the
        caller's work on one target never makes another time out. Closing the iterator
        closes every connection. ``follow_up(job)``, called as each job ends, may return more
        jobs of the same group (a second try): they run next, under the group's total
        deadline, and the group is yielded when they have ended too.

        A connection that cannot be opened for lack of a resource of this machine (open
        files, epoll watches, buffers, memory) while others are open goes back to ``waiting``
        and ``concurrency`` drops to the number under way (:meth:`Job.defer`): every target is
        still tried, fewer at a time.

        Each turn of the loop opens at most :data:`START_BATCH` new connections and begins the
        TLS handshake on at most as many connections that are up (the others wait in
        ``connected``), and otherwise serves the handshakes under way. The CPU work is the
        same as beginning everything at once (at a moderate ``concurrency``: each turn looks
        over the connections under way), and every connection is still opened without
        waiting for a server, but the first targets end early instead of all ending together
        (50 loopback servers: the first after 3.6 ms instead of 15, the last after the same
        35 ms): a caller that judges each target as it comes, or the helper process's parent,
        starts sooner.
        """
        waiting, active = deque(jobs), list[Job]()
        left = Counter(job.group for job in jobs)
        connected = self._connected
        try:
            while waiting or active:
                now = time.monotonic()
                self._turn(waiting, active, concurrency, now)
                if self._deferred:  # this machine's limit: see Job.defer
                    waiting.extendleft(reversed(self._deferred))
                    self._deferred.clear()
                    active = [j for j in active if j.phase != "deferred"]
                    concurrency = max(1, len(active))
                finished = [j for j in active if j.phase == "done"]
                active = [j for j in active if j.phase != "done"]
                if finished:
                    paused = time.monotonic()
                    for job in finished:
                        more = follow_up(job) if follow_up is not None else []
                        left[job.group] += len(more) - 1
                        waiting.extendleft(reversed(more))
                        if not left[job.group]:
                            self._deadlines.pop(job.group, None)
                            yield job.group
                    self._postpone(active, time.monotonic() - paused)
                    continue
                if not active:
                    continue
                if connected or (waiting and len(active) < concurrency):
                    wait = 0.0  # more to begin: take the events there are, wait for none
                else:
                    wait = min(j.deadline for j in active) - now
                if any(j.phase == "resolve" for j in active):
                    wait = min(wait, 0.01)
                for key, mask in self.selector.select(max(wait, 0.0)):
                    key.data.on_event(mask)
                now = time.monotonic()
                for job in active:
                    if job.phase == "resolve":
                        job.poll_lookup()
                    if job.phase not in ("done", "deferred") and now >= job.deadline:
                        job.timed_out()
        finally:
            for job in [*active, *waiting]:
                job.close()
            connected.clear()
            self._deferred.clear()
            self.selector.close()
            if self._resolver is not None:
                self._resolver.shutdown(wait=False, cancel_futures=True)

    def _turn(self, waiting: deque[Job], active: list[Job], concurrency: int, now: float) -> None:
        """Open up to :data:`START_BATCH` connections and begin up to as many handshakes."""
        for _ in range(min(START_BATCH, concurrency - len(active), len(waiting))):
            job = waiting.popleft()
            active.append(job)  # first: if start() raises, run_iter still closes its socket
            job.start(now)
        connected, begun = self._connected, 0
        while connected and begun < START_BATCH:
            job = connected.popleft()
            if job.phase == "connected":  # else it began on an event, or ended: no turn spent
                job.handshake()
                begun += 1

    def _postpone(self, active: list[Job], seconds: float) -> None:
        """Move the running jobs' deadlines, and those of the targets under way, later."""
        if seconds <= 0:
            return
        for job in active:
            job.deadline += seconds
            job.total += seconds
        for group in self._deadlines:  # only targets under way: a finished one is dropped
            self._deadlines[group] += seconds


class Job:
    """One connection: resolve -> connect -> TLS handshake (MemoryBIO) -> done."""

    def __init__(
        self,
        engine: Engine,
        group: int,
        host: str,
        port: int,
        sni: str | None,
        version: str,
        context: SSL.Context,
    ) -> None:
        self.engine, self.group, self.host, self.port = engine, group, host, port
        self.sni, self.version, self.context = sni, version, context
        self.phase = "waiting"
        self.deadline = self.total = float("inf")
        self.addrs: list[tuple[int, Any]] = []
        self.peer = ""
        self.sock: socket.socket | None = None
        self.tls: SSL.Connection | None = None
        self.pending = bytearray()
        self.received = 0
        self.first = b""
        self.lookup: Future[list[Any]] | None = None
        self.result: Handshake | None = None
        self.failure: Failure | None = None

    def start(self, now: float) -> None:
        self.total = self.engine.total_deadline(self.group, now)
        self.deadline = min(now + self.engine.connect_timeout, self.total)
        if is_ip(self.host):
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self.addrs = [(family, (self.host, self.port))]
            self.connect()
        else:
            self.phase = "resolve"
            self.lookup = self.engine.resolve(self.host, self.port)
            self.poll_lookup()

    def poll_lookup(self) -> None:
        if self.lookup is None or not self.lookup.done():
            return
        try:
            self.addrs = [(info[0], info[4]) for info in self.lookup.result()]
        except (OSError, UnicodeError) as exc:
            what = f"cannot resolve {self.host!r}: {exc}"
            self.fail(TLSConnectError, what, "check the host name and DNS", RANK_CONNECT)
            return
        self.connect()

    def connect(self) -> None:
        """Connect to the next address; the connect deadline covers all of them."""
        self.phase = "connect"
        if not self.addrs:
            self.connect_failed(errno.EADDRNOTAVAIL)
            return
        family, sockaddr = self.addrs.pop(0)
        self.peer = str(sockaddr[0])  # getpeername() fails once a peer has reset
        try:  # EMFILE, an address family the system lacks, epoll out of room ...
            sock = self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.engine.sockets += 1
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(sockaddr)
            if err in _IN_PROGRESS:
                self.engine.selector.register(sock, _WRITE, self)
                return
            if err == 0:
                self.engine.selector.register(sock, _READ, self)
        except OSError as exc:
            err = exc.errno or errno.EINVAL
        if err == 0:
            self.up()
        elif err in _OUT_OF_ROOM:
            self.defer(err)
        else:
            self.connect_failed(err)

    def defer(self, err: int) -> None:
        """This machine hit a limit opening the connection (:data:`_OUT_OF_ROOM`). While other
        connections are open, one of them will close: wait for that, in ``waiting`` again (the
        engine also lowers its concurrency to what is open then; the target's deadlines keep
        running); with none open, nothing will free up: fail."""
        self.close()
        if self.engine.sockets:
            self.phase = "deferred"
            self.engine._deferred.append(self)
            return
        what = f"could not open a connection: this machine hit {_OUT_OF_ROOM[err][0]}"
        self.fail(
            TLSConnectError, f"{what} ({os.strerror(err)})", _OUT_OF_ROOM[err][1], RANK_CONNECT
        )

    def up(self) -> None:
        """The TCP connection is up: wait for the engine to begin TLS (its handshake deadline
        runs from now). Only a read is watched meanwhile: a server that speaks first, or
        closes, makes the handshake begin at once (and fail as it should)."""
        self.phase = "connected"
        self.deadline = min(time.monotonic() + self.engine.handshake_timeout, self.total)
        self.engine._connected.append(self)

    def connect_failed(self, err: int) -> None:
        self.close()
        if self.addrs:
            self.connect()
        elif err == errno.ECONNREFUSED:
            what = f"connection refused: nothing listens on port {self.port}"
            self.fail(TLSConnectError, what, "check the host and port", RANK_CONNECT)
        else:
            what = f"cannot connect: {os.strerror(err)}"
            self.fail(TLSConnectError, what, "check the host, port and network", RANK_CONNECT)

    def handshake(self) -> None:
        self.phase = "handshake"  # the deadline set by up() holds
        try:
            tls = self.tls = SSL.Connection(self.context, None)
            if self.sni:
                tls.set_tlsext_host_name(idna_name(self.sni))
            tls.set_connect_state()
        except (ValueError, UnicodeError, SSL.Error) as exc:  # Target validates names: a backstop
            self.fail(TLSHandshakeError, f"cannot start TLS with server name {self.sni!r}: {exc}")
            return
        self.pump()

    def on_event(self, mask: int) -> None:
        if self.phase == "connect":
            assert self.sock is not None
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.connect_failed(err)
            else:
                self.engine.selector.modify(self.sock, _READ, self)
                self.up()
        elif self.phase == "connected":
            self.handshake()
        elif self.phase == "handshake" and (not mask & _READ or self.read()):
            self.pump()

    def read(self) -> bool:
        assert self.sock is not None
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            self.fail_os(exc)
            return False
        assert self.tls is not None
        if not data:
            self.tls.bio_shutdown()
            return True
        self.received += len(data)
        if len(self.first) < 24:
            self.first = (self.first + data)[:24]
        if self.received > MAX_HANDSHAKE_BYTES:
            what = f"the server sent over {MAX_HANDSHAKE_BYTES} bytes in the TLS {{v}} handshake"
            self.fail(TLSHandshakeError, what, _NOT_HTTPS)
            return False
        self.tls.bio_write(data)
        return True

    def pump(self) -> None:
        assert self.tls is not None
        assert self.sock is not None
        try:
            self.tls.do_handshake()
            finished = True
        except SSL.WantReadError:
            finished = False
        except SSL.Error as exc:
            self.fail_ssl(exc)
            return
        self.pending += self.outgoing()
        if finished:  # the last flight (TLS 1.3: our Finished) goes out with close_notify
            self.finish()
            return
        if self.pending:
            try:
                del self.pending[: self.sock.send(self.pending)]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self.fail_os(exc)
                return
        events = _READ | (_WRITE if self.pending else 0)
        self.engine.selector.modify(self.sock, events, self)

    def outgoing(self) -> bytes:
        """What OpenSSL has written for the server and not yet handed over."""
        assert self.tls is not None
        chunks = []
        while True:
            try:
                chunks.append(self.tls.bio_read(65536))
            except SSL.WantReadError:
                return b"".join(chunks)

    def finish(self) -> None:
        assert self.tls is not None
        assert self.sock is not None
        der = tuple(peer_chain(self.tls))
        if not der:
            self.fail(TLSHandshakeError, "the server sent no certificate over TLS {v}")
            return
        version = self.tls.get_protocol_version_name()
        self.result = Handshake(
            address=self.peer,
            tls_version=_WIRE_VERSIONS.get(version, version),
            cipher=self.tls.get_cipher_name() or "",
            der=der,
        )
        self.close(polite=True)

    def fail(
        self, kind: type[TLSFetchError], what: str, hint: str = "", rank: int = RANK_HANDSHAKE
    ) -> None:
        self.failure = Failure(kind, what, hint, rank)
        self.close()

    def fail_os(self, exc: OSError) -> None:
        if exc.errno in _RESETS:
            what = "the server reset the connection during the TLS {v} handshake"
        else:
            what = f"the connection failed during the TLS {{v}} handshake: {exc}"
        hint = "it may not support TLS {v}; " + _NOT_HTTPS
        self.fail(TLSConnectError, what, hint, RANK_RESET)

    def fail_ssl(self, exc: SSL.Error) -> None:
        reason = ssl_reason(exc)
        if self.first and self.first[0] not in (0x15, 0x16):  # neither a TLS alert nor handshake
            text = self.first.decode("ascii", "replace")
            shown = repr(text) if text.isprintable() else self.first[:8].hex(" ")
            what = f"the server does not speak TLS: it answered {shown}"
            self.fail(TLSHandshakeError, what, "is this port serving HTTPS, not plain HTTP?")
        elif isinstance(exc, (SSL.SysCallError, SSL.ZeroReturnError)) or reason in _EOF_REASONS:
            what = "the server closed the connection during the TLS {v} handshake"
            hint = "it may not support TLS {v} or this server name; " + _NOT_HTTPS
            self.fail(TLSHandshakeError, what, hint)
        elif reason in _VERSION_REASONS:
            what = f"the server does not support TLS {{v}} ({reason})"
            self.fail(TLSHandshakeError, what, rank=RANK_VERSION)
        elif reason == "EXCESSIVE_MESSAGE_SIZE":
            what = "the server's TLS {v} certificate list is larger than OpenSSL accepts (100 KiB)"
            self.fail(TLSHandshakeError, what, "the server sends far too many certificates")
        else:
            what = f"the TLS {{v}} handshake failed: {reason}"
            hint = "the server may need another server name (SNI) or TLS version"
            self.fail(TLSHandshakeError, what, hint)

    def timed_out(self) -> None:
        engine = self.engine
        if self.phase in ("resolve", "connect"):
            seconds = engine.connect_timeout
            if self.phase == "resolve":
                what, hint = "resolving the host name", "check DNS"
            else:
                what, hint = "the TCP connect", "is the host reachable? a firewall may drop packets"
        elif self.phase == "connected":  # never begun: this machine was too busy to begin it
            seconds = engine.handshake_timeout
            what = "beginning the TLS {v} handshake"
            hint = "this machine was too busy: lower the concurrency or raise the timeout"
        else:
            seconds = engine.handshake_timeout
            what = "the TLS {v} handshake"
            hint = (
                "the server accepted the connection but did not complete the handshake; "
                + _NOT_HTTPS
            )
        if self.deadline >= self.total:
            seconds = engine.timeout
        what = f"{what} did not finish within {seconds:g} s"
        self.fail(TLSTimeout, what, hint, RANK_TIMEOUT)

    def close(self, *, polite: bool = False) -> None:
        self.phase = "done"
        sock, self.sock = self.sock, None
        if sock is None:
            return
        self.engine.sockets -= 1
        if polite and self.tls is not None:  # send close_notify, best effort
            with contextlib.suppress(SSL.Error):
                self.tls.shutdown()
            with contextlib.suppress(OSError, SSL.Error):
                sock.send(bytes(self.pending) + self.outgoing())
        with contextlib.suppress(KeyError, ValueError):
            self.engine.selector.unregister(sock)
        sock.close()


FollowUp = Callable[[Job], list[Job]]
"""Called as a job ends; returns the jobs to run next for its group (usually none)."""
