"""The TLS engine in a forked helper process (private; ``fetch_as_completed(helper_process=True)``).

The engine's handshakes are CPU work (OpenSSL's key exchange and signature check, and the
engine's own Python); so is the caller's judging of each result. In one process they take
turns. With a helper process the child does the handshakes and the parent judges, each on its
own core: ``sectigo-chain check`` of 200 loopback endpoints took up to 20 % less time on two
cores, when the second core was free (``docs/tls.md``). With few targets it does not pay: the
parent waits for the first result and both processes pay for the pages they share after the
fork.

Only where it is safe: Linux (``os.fork``), and only when the calling process runs one thread
(forking a threaded process can copy a lock another thread holds; the engine's name-lookup
threads start in the child). Anywhere else, or when the pipe or the fork fails, the engine runs
in the caller's process as it always does.

The child writes one frame per target as soon as the target's handshakes have ended: a 4-byte
length, then ``marshal`` data ``(index, [(version, handshake, failure), ...])`` with
``handshake = (address, tls_version, cipher, der)`` and ``failure = (kind name, what, hint,
rank)`` (or None): plain values, so reading runs no code. Certificates are parsed in the parent,
as they would be without a helper. If the child ends before it reported every target (it
crashed or was killed), the parent fetches the targets left in its own process: none is lost.
The child ignores Ctrl-C (held back across the fork, so that it reaches the parent inside the
``try`` that ends the child), runs without the garbage collector and with its standard streams
on ``/dev/null``, and exits 1 when it could not report every target; the parent ends it
(through a pidfd where Linux has one) and reaps it when it stops reading. If the parent is
killed, the child ends at its next write (the pipe is gone), at the latest one timeout later.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sectigo_chain.errors import TLSConnectError, TLSFetchError, TLSHandshakeError, TLSTimeout
from sectigo_chain.tls._engine import Failure, Handshake

if TYPE_CHECKING:
    from sectigo_chain.tls.fetch import Ended, FetchResult, _Run

_HEADER = struct.Struct("<I")
_KINDS: dict[str, type[TLSFetchError]] = {
    k.__name__: k for k in (TLSFetchError, TLSConnectError, TLSHandshakeError, TLSTimeout)
}
_PIPE_BYTES = 1 << 20  # Linux F_SETPIPE_SZ: the child runs ahead without waiting for reads
_F_SETPIPE_SZ = 1031


def available() -> bool:
    """True where a helper process can be forked safely (see the module docstring)."""
    return (
        sys.platform.startswith("linux") and hasattr(os, "fork") and threading.active_count() == 1
    )


Outcomes = Iterator[tuple[int, "FetchResult | TLSFetchError"]]


def as_completed(run: _Run, here: Callable[[_Run], Outcomes]) -> Outcomes:
    """``here(run)`` (``fetch._as_completed``: the engine in this process), with the engine in
    a helper process; ``here`` runs what the helper cannot (no pipe, no fork, a dead helper)."""
    if not available():  # asked again: a thread may have started since the call
        yield from here(run)
        return
    try:
        read_end, write_end = os.pipe()
    except OSError:
        yield from here(run)
        return
    _grow(write_end)
    for stream in (sys.stdout, sys.stderr):  # the child must not inherit unwritten output
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    # Ctrl-C is held back across the fork: the child must ignore it before it can arrive, and
    # the parent must be inside the ``try`` that ends the child when it does.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_end)
        os.close(write_end)
        yield from here(run)
        return
    if pid == 0:  # the child: never returns
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(read_end)
            _child(run, write_end)
        finally:
            os._exit(1)
    parent, pidfd = os.getpid(), _pidfd(pid)
    done: set[int] = set()
    ended_reading = False
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C held back comes now
        os.close(write_end)
        write_end = -1
        run.engine.selector.close()  # the child's now (this process never runs that engine)
        with os.fdopen(read_end, "rb") as frames:
            read_end = -1
            for index, ended in _read(frames):
                done.add(index)
                yield index, run.outcome_of(index, ended)
        ended_reading = True  # the pipe's end: the child is leaving (or gone)
        _end(pid, pidfd, wait=True)
        missing = [i for i in range(len(run.targets)) if i not in done]
        if missing:  # the helper died: fetch what it left here
            for local, outcome in here(run.subset(missing)):
                yield missing[local], outcome
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        # Not in a process forked from this one later, where this generator is a copy.
        if not ended_reading and os.getpid() == parent:
            _end(pid, pidfd, wait=False)


def _child(run: _Run, write_end: int) -> None:
    """Run the engine and report each target; leave with ``os._exit`` whatever happens (the
    parent's ``finally`` blocks, ``atexit`` handlers and buffered output are the parent's):
    status 0 when every target was reported."""
    status = 1
    try:
        gc.disable()  # no finalizer of the parent's garbage runs here a second time
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # a caller waiting for the end of our output must not wait for us
            os.dup2(devnull, fd)
        for index in run.engine.run_iter(run.flat, run.concurrency, run.follow_up):
            _write(write_end, _frame(index, run.jobs[index]))
        status = 0
    except BaseException:  # noqa: S110 - the parent fetches what was not reported
        pass
    finally:
        os._exit(status)


def _frame(index: int, jobs: list[Any]) -> bytes:
    ended = [
        (
            job.version,
            None if job.result is None else _handshake(job.result),
            None if job.failure is None else _failure(job.failure),
        )
        for job in jobs
    ]
    data = marshal.dumps((index, ended))
    return _HEADER.pack(len(data)) + data


def _handshake(hs: Handshake) -> tuple[str, str, str, tuple[bytes, ...]]:
    return (hs.address, hs.tls_version, hs.cipher, hs.der)


def _failure(failure: Failure) -> tuple[str, str, str, int]:
    return (failure.kind.__name__, failure.what, failure.hint, failure.rank)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read(frames: Any) -> Iterator[tuple[int, list[Ended]]]:
    """The frames, decoded; stops at the end of the pipe or at a frame cut short."""
    while True:
        header = frames.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        (size,) = _HEADER.unpack(header)
        data = frames.read(size)
        if len(data) < size:
            return
        index, raw = marshal.loads(data)  # noqa: S302 - our own child, through our own pipe
        yield index, [_ended(*item) for item in raw]


def _ended(version: str, hs: Any, failure: Any) -> Ended:
    return (
        version,
        None if hs is None else Handshake(*hs),
        None
        if failure is None
        else Failure(_KINDS.get(failure[0], TLSFetchError), failure[1], failure[2], failure[3]),
    )


def _grow(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, OSError):
        pass  # the default size (64 KiB) works, the child waits for reads sooner


def _pidfd(pid: int) -> int | None:
    """A pidfd of the child (Linux 5.3+): a signal sent through it reaches that process even if
    something else reaped it and its pid was reused."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _end(pid: int, pidfd: int | None, *, wait: bool) -> None:
    """Reap the child: ``wait`` for it (it closed the pipe: it is leaving), or end it first
    (the caller stopped reading early, or an error or interrupt came through)."""
    try:
        if not wait:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass
    finally:
        if pidfd is not None:
            os.close(pidfd)
