"""fetch_as_completed against real TLS servers on 127.0.0.1: every target once, early close."""

from __future__ import annotations

import time

import pytest
from _chains import TestChain, make_chain

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
