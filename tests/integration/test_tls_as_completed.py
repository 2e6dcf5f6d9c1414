"""fetch_as_completed against real TLS servers on 127.0.0.1: every target once, early close."""

from __future__ import annotations

import time
from typing import Any

import pytest
from _chains import TestChain, make_chain
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.errors import InputError
from sectigo_chain.testing.tls_servers import HostileServer, LoopbackTLSServer, ServerLoop
from sectigo_chain.tls.fetch import FetchResult, fetch_as_completed, fetch_many


@pytest.fixture(scope="module")
def chain() -> TestChain:
    return make_chain("stream.test", kind="ec", label="Stream")


def test_every_target_comes_once_with_its_index(loop: ServerLoop, chain: TestChain) -> None:
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(6)]
    for server in servers:
        server.start()
    dead = HostileServer("close", loop=loop)
    dead.start()
    try:
        targets = [("127.0.0.1", s.port) for s in servers] + [("127.0.0.1", dead.port)]
        seen = dict(fetch_as_completed(targets, timeout=10, concurrency=3))
        listed = fetch_many(targets, timeout=10)
    finally:
        for server in [*servers, dead]:
            server.close()
    assert sorted(seen) == list(range(7))
    for index, outcome in seen.items():
        other = listed[index]
        assert type(outcome) is type(other)
        if isinstance(outcome, FetchResult):
            assert isinstance(other, FetchResult)
            assert outcome.target == other.target
            assert outcome.chain.der == other.chain.der
    assert not isinstance(seen[6], FetchResult)
    assert all(s.connections == 4 for s in servers)  # 2 per fetch: one per TLS version


def test_bad_arguments_fail_before_anything_connects() -> None:
    with pytest.raises(InputError):
        fetch_as_completed([("127.0.0.1", 1)], tls_versions=["1.1"])
    with pytest.raises(InputError):
        fetch_as_completed([("127.0.0.1", 1)], concurrency=0)


def test_stopping_early_closes_the_connections(loop: ServerLoop, chain: TestChain) -> None:
    good = LoopbackTLSServer(chain.served, chain.key, loop=loop)
    hang = HostileServer("hang", loop=loop)
    with good, hang:
        fetching = fetch_as_completed(
            [("127.0.0.1", good.port), ("127.0.0.1", hang.port)], timeout=30
        )
        index, outcome = next(fetching)
        fetching.close()  # the hanging server's connections are closed now, not in 30 s
        assert (index, isinstance(outcome, FetchResult)) == (0, True)
        deadline = time.monotonic() + 5
        while hang._open and time.monotonic() < deadline:  # the server sees both closed
            time.sleep(0.01)
        assert not hang._open


def test_each_turn_opens_and_begins_at_most_a_batch(
    loop: ServerLoop, chain: TestChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine paces itself: per turn of its loop at most START_BATCH new connections and
    at most START_BATCH TLS handshakes begun (the rest wait in ``connected``), so the first
    targets can end while later ones have not begun; every target still comes, with the
    same chain."""
    from sectigo_chain.tls import _engine

    turns: list[list[str]] = []
    turn, start, handshake = _engine.Engine._turn, _engine.Job.start, _engine.Job.handshake

    def counted_turn(self: _engine.Engine, *args: object) -> None:
        turns.append([])
        turn(self, *args)  # type: ignore[arg-type]

    def counted_start(self: _engine.Job, now: float) -> None:
        turns[-1].append("open")
        start(self, now)

    def counted_handshake(self: _engine.Job) -> None:
        turns[-1].append("tls")
        handshake(self)

    monkeypatch.setattr(_engine.Engine, "_turn", counted_turn)
    monkeypatch.setattr(_engine.Job, "start", counted_start)
    monkeypatch.setattr(_engine.Job, "handshake", counted_handshake)
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(24)]
    for server in servers:
        server.start()
    try:
        targets = [("127.0.0.1", s.port) for s in servers]
        seen = dict(fetch_as_completed(targets, tls_versions=None, timeout=10, connect_timeout=5))
    finally:
        for server in servers:
            server.close()
    assert sorted(seen) == list(range(24))
    served = tuple(c.public_bytes(Encoding.DER) for c in chain.served)
    assert all(isinstance(r, FetchResult) and r.chain.der == served for r in seen.values())
    assert sum(t.count("open") for t in turns) == 24
    assert sum(t.count("tls") for t in turns) == 24
    assert max(t.count("open") for t in turns) == _engine.START_BATCH
    assert max(t.count("tls") for t in turns) <= _engine.START_BATCH


def test_a_connection_waiting_for_its_turn_is_under_the_handshake_deadline(
    loop: ServerLoop, chain: TestChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy engine (each turn here takes 40 ms) begins the last handshakes well after the
    connect timeout (0.1 s): the connections waiting in ``connected`` are up, so only the
    handshake deadline applies to them, and every target succeeds."""
    from sectigo_chain.tls import _engine

    turn = _engine.Engine._turn

    def slow_turn(self: _engine.Engine, *args: object) -> None:
        time.sleep(0.04)
        turn(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_engine.Engine, "_turn", slow_turn)
    servers = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(16)]
    for server in servers:
        server.start()
    try:
        targets = [("127.0.0.1", s.port) for s in servers]
        seen = dict(
            fetch_as_completed(
                targets, tls_versions=None, timeout=10, connect_timeout=0.1, concurrency=16
            )
        )
    finally:
        for server in servers:
            server.close()
    assert sorted(seen) == list(range(16))
    assert all(isinstance(r, FetchResult) for r in seen.values()), seen


def test_a_handshake_never_begun_times_out_as_such(
    loop: ServerLoop, chain: TestChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the engine never gets to begin a handshake (here: it begins none), the target fails
    at its handshake deadline with an error that says the TLS handshake was never begun and
    that this machine, not the server, was the cause."""
    from sectigo_chain.errors import TLSTimeout
    from sectigo_chain.tls import _engine

    def open_only(
        self: _engine.Engine, waiting: Any, active: list[_engine.Job], concurrency: int, now: float
    ) -> None:
        while waiting and len(active) < concurrency:
            job = waiting.popleft()
            job.start(now)
            active.append(job)

    monkeypatch.setattr(_engine.Engine, "_turn", open_only)
    with LoopbackTLSServer(chain.served, chain.key, loop=loop) as server:
        ((index, outcome),) = fetch_as_completed(
            [("127.0.0.1", server.port)], tls_versions=None, timeout=5, handshake_timeout=0.2
        )
    assert index == 0
    assert isinstance(outcome, TLSTimeout)
    assert "beginning the TLS" in str(outcome)
    assert "this machine was too busy" in str(outcome)
    assert server.connections == 1  # connected, then nothing sent
