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

from sectigo_chain.errors import TLSConnectError
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


def test_epoll_out_of_room_fails_that_target_with_what_to_do(
    loop: ServerLoop, chain: TestChain, failing: type[_Failing], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failing, "fail", frozenset({2}))
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(3)]
    for server in servers:
        server.start()
    try:
        outcomes = fetch_many([("127.0.0.1", s.port) for s in servers], tls_versions=None)
    finally:
        for server in servers:
            server.close()
    assert isinstance(outcomes[0], FetchResult)
    assert isinstance(outcomes[2], FetchResult)
    error = outcomes[1]
    assert isinstance(error, TLSConnectError)
    text = str(error)
    assert "out of resources (No space left on device)" in text
    assert "fs.epoll.max_user_watches" in text
    assert "--concurrency" in text
    assert failing.offered
    assert all(s.fileno() == -1 for s in failing.offered)


def test_a_selector_that_raises_ends_the_fetch_with_every_socket_closed(
    loop: ServerLoop, chain: TestChain, failing: type[_Failing], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not an OS error (a bug, or an interrupt): it ends the fetch, and the connection being
    opened is closed with the others although it never reached the list of those under way."""
    monkeypatch.setattr(failing, "fail", frozenset({3}))
    monkeypatch.setattr(failing, "error", RuntimeError("boom"))
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(4)]
    for server in servers:
        server.start()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            fetch_many([("127.0.0.1", s.port) for s in servers], tls_versions=None)
    finally:
        for server in servers:
            server.close()
    assert len(failing.offered) == 3
    assert all(s.fileno() == -1 for s in failing.offered)


_OUT_OF_FILES = """
import json, os, resource, sys
from sectigo_chain.tls.fetch import FetchResult, fetch_many
ports = json.loads(sys.argv[1])
targets = [("127.0.0.1", p) for p in ports]
fetch_many(targets[:1], tls_versions=None)  # contexts and libraries loaded before the limit
opened = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own descriptor
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (opened + 2, hard))  # the selector and one socket
out = []
for o in fetch_many(targets, tls_versions=None, concurrency=len(targets)):
    out.append("ok" if isinstance(o, FetchResult) else type(o).__name__ + ": " + str(o))
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_out_of_open_files_fails_the_targets_it_could_not_open(
    loop: ServerLoop, chain: TestChain
) -> None:
    """A real EMFILE (the open-file limit of a child process set to what it has open plus
    two): the engine opens four connections per turn, so some fail at once, with the limit
    named and what to do; the rest are fetched as descriptors free up."""
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(8)]
    for server in servers:
        server.start()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _OUT_OF_FILES, json.dumps([s.port for s in servers])],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for server in servers:
            server.close()
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert len(outcomes) == 8
    failed = [o for o in outcomes if o != "ok"]
    assert "ok" in outcomes
    assert failed
    for text in failed:
        assert text.startswith("TLSConnectError: ")
        assert "out of resources (Too many open files)" in text
        assert "ulimit -n" in text
        assert "--concurrency" in text
