"""The TLS engine in a forked helper process (private; ``fetch_as_completed(helper_process=True)``
and ``check_many(helper_process=True)``).

The engine's handshakes are CPU work (OpenSSL's key exchange and signature check, and the
engine's own Python); so is the caller's judging of each result. In one process they take
turns. With a helper process the child does the handshakes and the parent judges, each on its
own core; with a ``judge`` (``check_many``'s) the child, once its handshakes are done, also
judges part of what the parent has not begun. ``sectigo-chain check`` of 200 loopback endpoints
took 5-21 % less time on two cores (``docs/tls.md``). With few targets it does not pay:
the parent waits for the first result and both processes pay for the pages they share after
the fork.

Only where it is safe: Linux (``os.fork``), and only when the calling process runs one thread
(forking a threaded process can copy a lock another thread holds; the engine's name-lookup
threads start in the child). Anywhere else, or when a pipe or the fork fails, the engine runs
in the caller's process as it always does.

The child writes one frame per target as soon as the target's handshakes have ended: a 4-byte
length, then ``marshal`` data ``(kind, index, payload)``; a raw frame's payload is ``[(version,
handshake, failure), ...]`` with ``handshake = (address, tls_version, cipher, der)`` and
``failure = (kind name, what, hint, rank)`` (or None): plain values, so reading runs no code.
Certificates are parsed in the parent, as they would be without a helper. With a ``judge``, the
child then writes an idle frame; the parent answers once, through a second pipe, with the
targets it hands over (the later half of those it has not begun, less :data:`SPARE`), and the
child sends each back judged (the judge's value, pickled: the child is a fork of this process);
once the parent has judged its own, it takes back, last first, those the child has not sent
yet, and ends the child when every target is in. If the child ends before it reported every
target (it crashed or was killed), the parent judges the handed-over ones from the outcomes it
holds and fetches the others in its own process: none is lost, none is reported twice. The
child ignores Ctrl-C (held back across the fork, so that it reaches the parent inside the
``try`` that ends the child), keeps what it inherits out of the garbage collector's reach
(``gc.freeze``), has its standard streams on ``/dev/null``, and exits 1 when it could not
report every target (first sending its error in an error frame, if it can: the parent logs one
warning, with that error or the child's exit status); the parent ends it (through a pidfd where
Linux has one) and reaps it when it stops reading. If the parent is killed, the child ends at
its next write (the pipe is gone), at the latest one timeout later; if it waits for the
parent's answer, at once (or one timeout later if another process holds a copy of the parent's
end).
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import pickle
import select
import signal
import socket
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator
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
_READ_BYTES = 1 << 16  # per read (a 1 MiB buffer per read would cost an mmap each time)
_F_SETPIPE_SZ = 1031


def available() -> bool:
    """True where a helper process can be forked safely (see the module docstring)."""
    return (
        sys.platform.startswith("linux") and hasattr(os, "fork") and threading.active_count() == 1
    )


Outcomes = Generator[tuple[int, "FetchResult | TLSFetchError"], None, None]
Judge = Callable[[int, "FetchResult | TLSFetchError"], Any]
"""Judges one target's outcome (``check_many``'s): its result travels back pickled."""

_RAW, _JUDGED, _IDLE, _ERROR = 0, 1, 2, 3  # the kinds of frame


class Judged:
    """A target the helper judged: ``value`` is what the ``judge`` returned there."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def as_completed(
    run: _Run, here: Callable[[_Run], Outcomes], judge: Judge | None = None
) -> Generator[tuple[int, Any], None, None]:
    """``here(run)`` (``fetch._as_completed``: the engine in this process), with the engine in
    a helper process; ``here`` runs what the helper cannot (no pipe, no fork, a dead helper).

    With ``judge``, the helper, once its handshakes are done, judges part of the targets this
    process has not begun yet (the later half of those waiting, less :data:`SPARE`); each
    comes back as ``(index, Judged)``."""
    if not available():  # asked again: a thread may have started since the call
        yield from here(run)
        return
    for stream in (sys.stdout, sys.stderr):  # the child must not inherit unwritten output
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    # Ctrl-C is held back from here and across the fork (no descriptor is left open by it, the
    # child must ignore it before it can arrive, and the parent must be inside the ``try`` that
    # ends the child when it does).
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    read_end = write_end = -1
    back: socket.socket | None = None  # parent -> child: the targets the child is to judge
    child_back: socket.socket | None = None
    try:
        read_end, write_end = os.pipe()
        if judge is not None:  # a socket pair: no SIGPIPE when the child is gone
            back, child_back = socket.socketpair()
        _grow(write_end)
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sock in (back, child_back):
            if sock is not None:
                sock.close()
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        yield from here(run)
        return
    if pid == 0:  # the child: never returns
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(read_end)
            if back is not None:
                back.close()
            _child(run, write_end, judge, child_back)
        finally:
            os._exit(1)
    parent, pidfd = os.getpid(), _pidfd(pid)
    done: set[int] = set()
    given: dict[int, list[Ended]] = {}  # handed to the child to judge, not back yet
    reaping, said, unread = False, "", ""
    handed = returned = 0  # targets handed to the child to judge, and those it sent back
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C held back comes now
        fd, write_end = write_end, -1
        os.close(fd)
        if child_back is not None:
            child_back.close()
            child_back = None
        run.engine.selector.close()  # the child's now (this process never runs that engine)
        frames = _Frames(read_end)
        waiting: deque[tuple[int, list[Ended]]] = deque()
        while len(done) < len(run.targets):
            for kind, index, payload in frames.take(wait=not waiting and not given):
                if kind == _RAW:
                    waiting.append((index, [_ended(*item) for item in payload]))
                elif kind == _JUDGED and index in given:
                    try:
                        value = pickle.loads(payload)  # noqa: S301 - our own child's
                    except Exception as exc:  # taken back and judged here instead
                        if not unread:
                            unread = f"{type(exc).__name__}: {exc}"
                            _warn(f"a report the helper process judged did not unpickle ({unread})")
                        continue
                    del given[index]
                    done.add(index)
                    returned += 1
                    yield index, Judged(value)
                elif kind == _IDLE and back is not None:
                    share = [waiting.pop() for _ in range(max(0, (len(waiting) - SPARE) // 2))]
                    given.update(share)
                    handed = len(share)
                    _answer(back, [i for i, _ in share])
                    back.close()
                    back = None
                elif kind == _ERROR and isinstance(payload, str):
                    said = payload
            if waiting:
                index, ended = waiting.popleft()
            elif given:  # nothing else to do: take back the one the child would judge last
                index, ended = given.popitem()
            elif frames.ended:
                break
            else:
                continue
            done.add(index)
            yield index, run.outcome_of(index, ended)
        for kind, _, payload in frames.take(wait=False):  # did it end meanwhile, and why?
            if kind == _ERROR and isinstance(payload, str):
                said = payload
        missing = [i for i in range(len(run.targets)) if i not in done]
        reaping = True
        if frames.ended:  # the pipe's end: the child is leaving (or gone)
            status = _end(pid, pidfd, wait=True)
        else:  # all in while it runs: what it may still judge is moot
            status = _end(pid, pidfd, wait=False)
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
                status = 0  # our SIGKILL (a child that had exited shows its own status)
        if status or said:
            _log_failure(status, said, handed - returned + len(missing))
        if missing:  # the helper died: fetch what it left here
            for local, outcome in here(run.subset(missing)):
                yield missing[local], outcome
    finally:
        try:
            for fd in (read_end, write_end):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            for sock in (back, child_back):
                if sock is not None:
                    sock.close()
        finally:
            # Not in a process forked from this one later, where this generator is a copy.
            if not reaping and os.getpid() == parent:
                _end(pid, pidfd, wait=False)


SPARE = 6
"""Of the ``n`` targets the parent has not begun when the child is idle, it hands over
``(n - SPARE) // 2``: it keeps ``SPARE`` more than it hands over, about what the child's first
judgements cost more than later ones (its caches start empty)."""


def _child(run: _Run, write_end: int, judge: Judge | None, back: socket.socket | None) -> None:
    """Run the engine and report each target; leave with ``os._exit`` whatever happens (the
    parent's ``finally`` blocks, ``atexit`` handlers and buffered output are the parent's):
    status 0 when every target was reported. With ``judge``: then say so (an idle frame), and
    judge the targets the parent sends back."""
    status = 1
    try:
        gc.freeze()  # no finalizer of the parent's objects (or garbage) runs here a second time
        gc.enable()  # ... while what the child makes is collected as usual
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # a caller waiting for the end of our output must not wait for us
            os.dup2(devnull, fd)
        for index in run.engine.run_iter(run.flat, run.concurrency, run.follow_up):
            _write(write_end, _frame(_RAW, index, _ended_of(run.jobs[index])))
        if judge is not None and back is not None:
            _write(write_end, _frame(_IDLE, -1, None))
            for index in _given(back, run.settings[1]):
                value = judge(index, run.outcome(index))
                data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                _write(write_end, _frame(_JUDGED, index, data))
        status = 0
    except BaseException as exc:  # the parent fetches or judges what was not reported
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        with contextlib.suppress(BaseException):  # the pipe may be what failed
            _write(write_end, _frame(_ERROR, -1, text[:_SAID]))
    finally:
        os._exit(status)


_SAID = 300
"""Characters of the child's error passed on (a TLS fetch and its judging hold no secret:
the error names a target, a certificate or our own code)."""


def _log_failure(status: int, said: str, redone: int) -> None:
    """One warning: the run is slower than it should be, and the child's error is a bug to
    report (the results are not affected: this process did what the child left)."""
    code = os.waitstatus_to_exitcode(status) if status else 0
    if said:
        why = f"failed ({said})"
    elif code < 0:
        try:
            why = f"was killed by {signal.Signals(-code).name}"
        except ValueError:  # a real-time signal has no name
            why = f"was killed by signal {-code}"
    else:
        why = f"ended early (exit status {code})"
    _warn(
        f"the helper process {why}; this process fetched or judged the {redone} target(s) it left"
    )


def _warn(text: str) -> None:
    """One warning on this module's logger, control characters escaped (the child's error may
    quote a server's bytes); logging is imported only here (``check``'s start-up time)."""
    import logging

    from sectigo_chain.logs import escape_controls

    logging.getLogger(__name__).warning("%s", escape_controls(text))


def _answer(back: socket.socket, indexes: list[int]) -> None:
    """Hand ``indexes`` to the child: one length-prefixed message (a child that died makes
    this fail quietly, without SIGPIPE: its targets are judged here)."""
    data = marshal.dumps(indexes)
    with contextlib.suppress(OSError):
        back.sendall(_HEADER.pack(len(data)) + data, socket.MSG_NOSIGNAL)


def _given(back: socket.socket, timeout: float) -> list[int]:
    """The targets the parent hands over; none if it closes without an answer. The parent
    answers as soon as it has judged the target in hand (and its caller has taken the report);
    after ``timeout`` (the fetch's) without an answer, none either: the parent is gone while
    another process holds a copy of its end, or its caller holds a report that long (the
    parent then takes back what it hands over; not a failure)."""
    back.settimeout(timeout)
    data = bytearray()
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        try:
            chunk = back.recv(1 << 16)
        except TimeoutError:  # the parent is busy (a slow judgement, a caller holding one)
            return []
        if not chunk:
            return []
        data += chunk
    size = _HEADER.unpack_from(data)[0]
    return list(marshal.loads(bytes(data[_HEADER.size : _HEADER.size + size])))  # noqa: S302


def _ended_of(jobs: list[Any]) -> list[Any]:
    return [
        (
            job.version,
            None if job.result is None else _handshake(job.result),
            None if job.failure is None else _failure(job.failure),
        )
        for job in jobs
    ]


def _frame(kind: int, index: int, payload: Any) -> bytes:
    data = marshal.dumps((kind, index, payload))
    return _HEADER.pack(len(data)) + data


def _handshake(hs: Handshake) -> tuple[str, str, str, tuple[bytes, ...]]:
    return (hs.address, hs.tls_version, hs.cipher, hs.der)


def _failure(failure: Failure) -> tuple[str, str, str, int]:
    return (failure.kind.__name__, failure.what, failure.hint, failure.rank)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Frames:
    """The frames from the child, read without blocking unless asked to wait."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.ended = fd, bytearray(), False
        os.set_blocking(fd, False)
        self.poll = select.poll()  # not select(): a caller may hold fds beyond FD_SETSIZE
        self.poll.register(fd, select.POLLIN)

    def take(self, *, wait: bool) -> list[tuple[int, int, Any]]:
        """The complete frames there are (decoded); with ``wait``, at least one unless the
        pipe has ended. A frame cut short by the end of the pipe is dropped."""
        while True:
            self._fill()
            frames = self._parse()
            if frames or not wait or self.ended:
                return frames
            self.poll.poll()

    def _fill(self) -> None:
        while not self.ended:
            try:
                chunk = os.read(self.fd, _READ_BYTES)
            except BlockingIOError:
                return
            if not chunk:
                self.ended = True
                return
            self.buffer += chunk

    def _parse(self) -> list[tuple[int, int, Any]]:
        out, at, size = [], 0, len(self.buffer)
        view = memoryview(self.buffer)
        try:
            while at + _HEADER.size <= size:
                (length,) = _HEADER.unpack_from(view, at)
                if at + _HEADER.size + length > size:
                    break
                start = at + _HEADER.size
                out.append(marshal.loads(view[start : start + length]))  # noqa: S302 - our child
                at = start + length
        finally:
            view.release()
        del self.buffer[:at]
        return out


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


def _end(pid: int, pidfd: int | None, *, wait: bool) -> int:
    """Reap the child: ``wait`` for it (it closed the pipe: it is leaving), or end it first
    (the caller stopped reading early, or an error or interrupt came through). Its wait
    status (0 when it exited 0, or when something else reaped it)."""
    try:
        if not wait:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]
    except (ChildProcessError, ProcessLookupError):
        return 0
    finally:
        if pidfd is not None:
            os.close(pidfd)
