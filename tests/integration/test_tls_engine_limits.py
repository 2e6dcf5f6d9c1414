"""The TLS engine at this machine's limits: out of open files, epoll out of room, a selector
that fails. Each target then fails with what to do (not a traceback), the others are fetched,
and no socket is left open."""

from __future__ import annotations

import errno
import json
import selectors
import socket
import subprocess
import sys
from typing import Any, ClassVar

import pytest
from _chains import TestChain, make_chain

from sectigo_chain.errors import TLSConnectError, TLSFetchError
from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop
from sectigo_chain.tls.fetch import FetchResult, fetch_many


@pytest.fixture(scope="module")
def chain() -> TestChain:
    return make_chain("limits.test", kind="ec", label="Limits")


class _Failing(selectors.DefaultSelector):
    """The real selector, but ``register`` raises ``error`` on the calls numbered in ``fail``
    (1-based) after creating nothing; every socket offered to it is kept, to check it is
    closed afterwards."""

    fail: ClassVar[frozenset[int]] = frozenset()
    error: ClassVar[BaseException] = OSError(errno.ENOSPC, "No space left on device")
    offered: ClassVar[list[socket.socket]] = []

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        _Failing.offered.append(fileobj)
        if len(_Failing.offered) in _Failing.fail:
            raise _Failing.error
        return super().register(fileobj, events, data)


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> type[_Failing]:
    monkeypatch.setattr(_Failing, "offered", [])
    monkeypatch.setattr(selectors, "DefaultSelector", _Failing)  # the one _engine calls
    return _Failing


def _fetch(loop: ServerLoop, chain: TestChain, count: int) -> list[FetchResult | TLSFetchError]:
    """``fetch_many`` (one negotiated handshake each) of ``count`` loopback servers."""
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(count)]
    for server in servers:
        server.start()
    try:
        return fetch_many([("127.0.0.1", s.port) for s in servers], tls_versions=None)
    finally:
        for server in servers:
            server.close()


def test_epoll_out_of_room_waits_for_room_and_fails_only_with_nothing_open(
    loop: ServerLoop, chain: TestChain, failing: type[_Failing], monkeypatch: pytest.MonkeyPatch
) -> None:
    """epoll refuses every connection after the first (ENOSPC): the others wait while the
    first is open and are tried again when it has closed; then nothing else is open, so they
    fail, naming the limit and what to do. Every socket is closed."""
    monkeypatch.setattr(failing, "fail", frozenset(range(2, 100)))
    outcomes = _fetch(loop, chain, 3)
    assert isinstance(outcomes[0], FetchResult)
    for error in outcomes[1:]:
        assert isinstance(error, TLSConnectError)
        text = str(error)
        assert "could not open a connection: this machine hit epoll's watch limit" in text
        assert "(No space left on device)" in text
        assert "raise fs.epoll.max_user_watches or lower the concurrency" in text
    # tries: the first; the other two while it was open (deferred), then again (failed)
    assert len(failing.offered) == 5
    assert all(s.fileno() == -1 for s in failing.offered)


def test_a_connection_that_found_no_room_once_is_tried_again(
    loop: ServerLoop, chain: TestChain, failing: type[_Failing], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failing, "fail", frozenset({2}))
    outcomes = _fetch(loop, chain, 3)
    assert all(isinstance(o, FetchResult) for o in outcomes)
    assert len(failing.offered) == 4  # the second was tried again once the others were under way
    assert all(s.fileno() == -1 for s in failing.offered)


def test_a_selector_that_raises_ends_the_fetch_with_every_socket_closed(
    loop: ServerLoop, chain: TestChain, failing: type[_Failing], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not an OS error (a bug, or an interrupt): it ends the fetch, and the connection being
    opened is closed with the others although it never reached the list of those under way."""
    monkeypatch.setattr(failing, "fail", frozenset({3}))
    monkeypatch.setattr(failing, "error", RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        _fetch(loop, chain, 4)
    assert len(failing.offered) == 3
    assert all(s.fileno() == -1 for s in failing.offered)


_OUT_OF_FILES = """
import json, os, resource, sys
from sectigo_chain.errors import TLSFetchError
from sectigo_chain.tls.fetch import FetchResult, fetch_many
ports, room = json.loads(sys.argv[1]), int(sys.argv[2])
targets = [("127.0.0.1", p) for p in ports]
fetch_many(targets[:1], tls_versions=None)  # contexts and libraries loaded before the limit
opened = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own descriptor
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (opened + room, hard))
try:
    found = fetch_many(targets, tls_versions=None, concurrency=len(targets))
except TLSFetchError as exc:
    print(json.dumps("raised " + type(exc).__name__ + ": " + str(exc)))
else:
    print(json.dumps(["ok" if isinstance(o, FetchResult) else type(o).__name__ + ": " + str(o)
                      for o in found]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
@pytest.mark.parametrize("room", [0, 1, 2])
def test_out_of_open_files(loop: ServerLoop, chain: TestChain, room: int) -> None:
    """A real EMFILE: a child process's open-file limit set to what it has open plus
    ``room``. 0: not even the engine's epoll descriptor: one typed error for the fetch. 1: the
    epoll descriptor and no socket: every target fails, naming the limit and what to do. 2:
    one socket at a time: the engine opens four connections in its first turn, three hit the
    limit and wait, the concurrency drops to one, and every target is fetched."""
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(8)]
    for server in servers:
        server.start()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _OUT_OF_FILES, json.dumps([s.port for s in servers]), str(room)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for server in servers:
            server.close()
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    limit = "this machine hit this process's open-file limit (Too many open files)"
    hint = "raise it (ulimit -n) or lower the concurrency"
    if room == 0:
        assert found == f"raised TLSFetchError: cannot start the TLS client: {limit}; {hint}"
        return
    assert len(found) == 8
    if room == 2:
        assert found == ["ok"] * 8
        return
    for text in found:
        assert text.startswith("TLSConnectError: ")
        assert f"could not open a connection: {limit} ({hint})" in text
