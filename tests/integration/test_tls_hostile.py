"""Hostile servers on 127.0.0.1 give typed errors, never a hang.

Every test carries a pytest-timeout guard far above the fetch timeout: a fetch that ignored its
deadline would fail the test instead of hanging the suite. Which deadline fired (connect,
handshake or total) is read from the error message, not from a clock.
"""

from __future__ import annotations

import pytest
from _chains import TestChain, make_chain

from sectigo_chain.errors import TLSConnectError, TLSFetchError, TLSHandshakeError, TLSTimeout
from sectigo_chain.testing.tls_servers import (
    HostileBehavior,
    HostileServer,
    LoopbackTLSServer,
    ServerLoop,
)
from sectigo_chain.tls.fetch import FetchResult, fetch_many, fetch_served_chain

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(scope="module")
def chain() -> TestChain:
    return make_chain("hostile.test")


HTTPS = "is this port serving HTTPS?"
PLAIN = "is this port serving HTTPS, not plain HTTP?"


@pytest.mark.parametrize(
    ("behavior", "error", "message", "hint"),
    [
        ("hang", TLSTimeout, "TLS 1.2/1.3 handshake did not finish within 0.4 s", HTTPS),
        ("trickle", TLSTimeout, "TLS 1.2/1.3 handshake did not finish within 0.4 s", HTTPS),
        ("blackhole", TLSTimeout, "TCP connect did not finish within 0.4 s", "firewall"),
        ("reset", TLSConnectError, "reset the connection during the TLS 1.2/1.3 handshake", HTTPS),
        ("close", TLSHandshakeError, "closed the connection during the TLS 1.2/1.3 hands", HTTPS),
        (
            "plaintext",
            TLSHandshakeError,
            "does not speak TLS: it answered 'HTTP/1.1 400 Bad",
            PLAIN,
        ),
        ("garbage", TLSHandshakeError, "does not speak TLS: it answered 01 02 03", PLAIN),
    ],
)
def test_hostile_server_gives_typed_error(
    behavior: HostileBehavior,
    error: type[TLSFetchError],
    message: str,
    hint: str,
    loop: ServerLoop,
) -> None:
    with HostileServer(behavior, loop=loop) as server, pytest.raises(error, match=message) as info:
        fetch_served_chain("127.0.0.1", server.port, timeout=0.4)
    assert info.value.target == f"127.0.0.1:{server.port}"
    assert hint in str(info.value)
    if behavior != "blackhole":  # a blackhole never accepts
        assert server.connections == 2  # one per TLS version


def test_handshake_deadline_is_separate_from_total(loop: ServerLoop) -> None:
    with HostileServer("trickle", loop=loop, interval=0.02) as server:
        with pytest.raises(TLSTimeout, match=r"handshake did not finish within 0\.3 s"):
            fetch_served_chain("127.0.0.1", server.port, timeout=10, handshake_timeout=0.3)
        with pytest.raises(TLSTimeout, match=r"handshake did not finish within 0\.3 s"):
            fetch_served_chain("127.0.0.1", server.port, timeout=0.3, handshake_timeout=5)


def test_connect_deadline(loop: ServerLoop) -> None:
    with (
        HostileServer("blackhole", loop=loop) as server,
        pytest.raises(TLSTimeout, match=r"TCP connect did not finish within 0\.2 s"),
    ):
        fetch_served_chain("127.0.0.1", server.port, timeout=10, connect_timeout=0.2)


def test_hostile_servers_do_not_disturb_good_ones(loop: ServerLoop, chain: TestChain) -> None:
    behaviors: list[HostileBehavior] = ["hang", "reset", "plaintext", "garbage", "blackhole"]
    hostile = [HostileServer(b, loop=loop) for b in behaviors]
    good = [LoopbackTLSServer(chain.served, chain.key, loop=loop) for _ in range(6)]
    servers = [*hostile, *good]
    for s in servers:
        s.start()
    try:
        outcomes = fetch_many([s.address for s in servers], timeout=0.5, concurrency=4)
    finally:
        for s in servers:
            s.close()
    expected = [TLSTimeout, TLSConnectError, TLSHandshakeError, TLSHandshakeError, TLSTimeout]
    assert [type(o) for o in outcomes[: len(hostile)]] == expected
    for outcome in outcomes[len(hostile) :]:
        assert isinstance(outcome, FetchResult)
        assert len(outcome.handshakes) == 2
        assert outcome.chain.certificates[0] == chain.leaf
