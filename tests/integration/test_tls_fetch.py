"""fetch_served_chain / fetch_many against real TLS servers on 127.0.0.1 (Python ``ssl``)."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from _chains import TestChain, make_chain
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.errors import InputError, TLSConnectError, TLSFetchError, TLSHandshakeError
from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop
from sectigo_chain.tls.fetch import NO_SNI, FetchResult, Target, fetch_many, fetch_served_chain


def _der(certs: list[x509.Certificate]) -> tuple[bytes, ...]:
    return tuple(c.public_bytes(Encoding.DER) for c in certs)


@pytest.fixture(scope="module")
def ec_chain() -> TestChain:
    return make_chain("ec.test", kind="ec", label="EC")


@pytest.fixture(scope="module")
def rsa_chain() -> TestChain:
    return make_chain("rsa.test", kind="rsa", label="RSA")


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_both_versions_return_the_chain_in_wire_order(
    kind: str, loop: ServerLoop, ec_chain: TestChain, rsa_chain: TestChain
) -> None:
    chain = ec_chain if kind == "ec" else rsa_chain
    with LoopbackTLSServer(chain.served, chain.key, loop=loop) as server:
        result = fetch_served_chain("127.0.0.1", server.port)
    assert set(result.handshakes) == {"1.2", "1.3"}
    assert result.errors == {}
    assert result.chains_agree
    for version, served in result.handshakes.items():
        assert served.tls_version == version
        assert served.der == _der(chain.served)
        assert list(served.certificates) == chain.served
        assert served.sent_count == 2
        assert not served.truncated
        assert served.address == "127.0.0.1"
        assert served.servername is None  # an IP address sends no SNI
    assert result.handshakes["1.3"].cipher.startswith("TLS_")
    assert ("ECDSA" in result.handshakes["1.2"].cipher) == (kind == "ec")
    assert sorted(server.handshakes) == [(None, "1.2"), (None, "1.3")]


@pytest.mark.parametrize(
    "order",
    ["leaf_only", "with_root", "reversed_tail", "duplicate_intermediate"],
)
def test_odd_orders_are_reported_exactly_as_sent(
    order: str, loop: ServerLoop, ec_chain: TestChain
) -> None:
    c = ec_chain
    sent = {
        "leaf_only": [c.leaf],
        "with_root": [c.leaf, c.intermediate, c.root],
        "reversed_tail": [c.leaf, c.root, c.intermediate],
        "duplicate_intermediate": [c.leaf, c.intermediate, c.intermediate],
    }[order]
    with LoopbackTLSServer(sent, c.key, loop=loop) as server:
        result = fetch_served_chain("127.0.0.1", server.port, tls_versions=["1.3"])
    assert result.chain.der == _der(sent)


@pytest.mark.timeout(30)
def test_wire_order_matches_python_ssl(loop: ServerLoop, rsa_chain: TestChain) -> None:
    """An independent client sees the same list: Python's ``ssl`` (its own OpenSSL build,
    ``get_unverified_chain``), where the engine uses pyOpenSSL on cryptography's OpenSSL."""
    c = rsa_chain
    sent = [c.leaf, c.root, c.intermediate]
    with LoopbackTLSServer(sent, c.key, loop=loop) as server:
        ours = fetch_served_chain("127.0.0.1", server.port, tls_versions=["1.2"]).chain.der
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with (
            socket.create_connection(server.address) as sock,  # blocking; pytest-timeout guards
            ctx.wrap_socket(sock) as tls,
        ):
            public = getattr(tls, "get_unverified_chain", None)  # Python 3.13+
            if public is not None:
                theirs = tuple(bytes(cert) for cert in public())
            else:  # 3.10-3.12: the same method on the private object; 2 = ENCODING_DER
                theirs = tuple(c.public_bytes(2) for c in tls._sslobj.get_unverified_chain())  # type: ignore[attr-defined]
    assert ours == theirs == _der(sent)


def test_sni_selects_the_chain(loop: ServerLoop, ec_chain: TestChain, rsa_chain: TestChain) -> None:
    other = make_chain("b.test", kind="ec", label="B")
    sni = {"rsa.test": (rsa_chain.served, rsa_chain.key), "B.TEST": (other.served, other.key)}
    with LoopbackTLSServer(ec_chain.served, ec_chain.key, sni=sni, loop=loop) as server:
        by_name = {
            name: fetch_served_chain("127.0.0.1", server.port, servername=name)
            for name in ("rsa.test", "b.test", "unknown.test")
        }
        no_sni = fetch_served_chain("127.0.0.1", server.port, servername=NO_SNI)
        localhost = fetch_served_chain("localhost", server.port, tls_versions=["1.2"])
    assert by_name["rsa.test"].chain.der == _der(rsa_chain.served)
    assert by_name["b.test"].chain.der == _der(other.served)
    assert by_name["unknown.test"].chain.der == _der(ec_chain.served)  # the default chain
    assert no_sni.chain.der == _der(ec_chain.served)
    assert all(r.chains_agree and len(r.handshakes) == 2 for r in by_name.values())
    assert by_name["b.test"].servername == "b.test"
    assert by_name["b.test"].target == f"127.0.0.1:{server.port} (SNI b.test)"
    assert no_sni.servername is None
    assert no_sni.target == f"127.0.0.1:{server.port} (no SNI)"
    assert localhost.servername == "localhost"  # a host name is sent as SNI by default
    seen = {name for name, _ in server.handshakes}
    assert seen == {"rsa.test", "b.test", "unknown.test", "localhost", None}


@pytest.mark.parametrize(("only", "missing"), [("1.2", "1.3"), ("1.3", "1.2")])
def test_single_version_servers(
    only: str, missing: str, loop: ServerLoop, ec_chain: TestChain
) -> None:
    with LoopbackTLSServer(
        ec_chain.served, ec_chain.key, min_version=only, max_version=only, loop=loop
    ) as server:
        result = fetch_served_chain("127.0.0.1", server.port)
        with pytest.raises(TLSHandshakeError, match=f"does not support TLS {missing}"):
            fetch_served_chain("127.0.0.1", server.port, tls_versions=[missing])
    assert list(result.handshakes) == [only]
    assert result.chain.tls_version == only
    assert isinstance(result.errors[missing], TLSHandshakeError)
    assert f"does not support TLS {missing}" in str(result.errors[missing])


def test_huge_ec_chain_is_truncated(loop: ServerLoop, ec_chain: TestChain) -> None:
    sent = [ec_chain.leaf] + [ec_chain.intermediate] * 99
    with LoopbackTLSServer(sent, ec_chain.key, loop=loop) as server:
        result = fetch_served_chain("127.0.0.1", server.port)
        small = fetch_served_chain("127.0.0.1", server.port, max_certificates=3)
    for served in result.handshakes.values():
        assert served.sent_count == 100
        assert served.truncated
        assert len(served.der) == len(served.certificates) == 64
        assert served.der == _der(sent[:64])
    assert small.chain.der == _der(sent[:3])


def test_chain_over_openssl_limit_is_a_typed_error(loop: ServerLoop, rsa_chain: TestChain) -> None:
    sent = [rsa_chain.leaf] + [rsa_chain.intermediate] * 199  # about 160 KB of certificates
    with (
        LoopbackTLSServer(sent, rsa_chain.key, loop=loop) as server,
        pytest.raises(TLSHandshakeError, match="larger than OpenSSL accepts") as info,
    ):
        fetch_served_chain("127.0.0.1", server.port)
    assert info.value.target == f"127.0.0.1:{server.port}"


def test_fetch_many_keeps_order_and_isolates_failures(
    loop: ServerLoop, ec_chain: TestChain, rsa_chain: TestChain
) -> None:
    chains = [ec_chain, rsa_chain] * 10
    servers = [LoopbackTLSServer(c.served, c.key, loop=loop) for c in chains]
    for s in servers:
        s.start()
    refused = LoopbackTLSServer(ec_chain.served, ec_chain.key, loop=loop)
    refused_port = refused.port
    refused.close()  # nothing listens there any more
    try:
        targets: list[Target | str | tuple[str, int]] = [
            Target("127.0.0.1", s.port) for s in servers
        ]
        targets.insert(7, f"127.0.0.1:{refused_port}")
        targets.append(("127.0.0.1", servers[0].port))
        outcomes = fetch_many(targets, concurrency=5, timeout=5)
    finally:
        for s in servers:
            s.close()
    assert len(outcomes) == len(targets)
    bad = outcomes.pop(7)
    assert isinstance(bad, TLSConnectError)
    assert "connection refused" in str(bad)
    assert bad.target == f"127.0.0.1:{refused_port}"
    for outcome, chain in zip(outcomes, [*chains, chains[0]], strict=True):
        assert isinstance(outcome, FetchResult)
        assert outcome.chain.der == _der(chain.served)
        assert set(outcome.handshakes) == {"1.2", "1.3"}
    # one connection per endpoint per TLS version (the first server was fetched twice)
    assert [s.connections for s in servers] == [4] + [2] * (len(servers) - 1)


def test_many_servers_share_one_thread(ec_chain: TestChain) -> None:
    def loop_threads() -> int:
        return sum(t.name == "loopback-tls" for t in threading.enumerate())

    before = loop_threads()
    with ServerLoop() as loop:
        servers = [LoopbackTLSServer(ec_chain.served, ec_chain.key, loop=loop) for _ in range(40)]
        for s in servers:
            s.start()
        during = loop_threads()
        outcomes = fetch_many([s.address for s in servers], tls_versions=["1.3"])
        for s in servers:
            s.close()
    assert during == before + 1
    assert all(isinstance(o, FetchResult) for o in outcomes)
    assert sum(s.connections for s in servers) == 40


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tls_versions": ["1.1"]}, "TLS versions"),
        ({"tls_versions": []}, "TLS versions"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"handshake_timeout": -1}, "handshake_timeout"),
        ({"max_certificates": 0}, "at least 1"),
    ],
)
def test_bad_arguments_are_input_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        fetch_served_chain("127.0.0.1", 443, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("example.com", "example.com", 443),
        ("example.com:8443", "example.com", 8443),
        ("[::1]:8443", "::1", 8443),
        ("[::1]", "::1", 443),
        ("::1", "::1", 443),
        (" 10.0.0.1:444 ", "10.0.0.1", 444),
    ],
)
def test_target_parse(text: str, host: str, port: int) -> None:
    target = Target.parse(text)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize("text", ["host:https", "host:0", "host:70000", "", "[::1]x"])
def test_target_parse_rejects(text: str) -> None:
    with pytest.raises(InputError):
        Target.parse(text)


def test_errors_are_one_tree() -> None:
    assert issubclass(TLSConnectError, ConnectionError)
    assert issubclass(TLSHandshakeError, TLSFetchError)


def test_when_all_versions_fail_the_most_telling_error_wins() -> None:
    """Ranking (pure): a timeout explains more than a version the server does not support."""
    from sectigo_chain.errors import TLSTimeout
    from sectigo_chain.tls._engine import RANK_TIMEOUT, RANK_VERSION, Failure
    from sectigo_chain.tls.fetch import _outcome

    target = Target("127.0.0.1", 8443)
    unsupported = Failure(
        TLSHandshakeError, "the server does not support TLS {v}", "", RANK_VERSION
    )
    slow = Failure(TLSTimeout, "the TLS {v} handshake did not finish", "is it HTTPS?", RANK_TIMEOUT)
    error = _outcome(target, [("1.2", None, unsupported), ("1.3", None, slow)], 64)
    assert isinstance(error, TLSTimeout)
    assert str(error) == (
        "127.0.0.1:8443: the server does not support TLS 1.2; "
        "the TLS 1.3 handshake did not finish (is it HTTPS?)"
    )
    error = _outcome(target, [(v, None, slow) for v in ("1.2", "1.3")], 64)
    assert str(error) == "127.0.0.1:8443: the TLS 1.2/1.3 handshake did not finish (is it HTTPS?)"


@pytest.mark.parametrize(
    ("host", "servername"), [("127.0.0.1", "x" * 64 + ".test"), ("bad..name", None)]
)
def test_invalid_names_are_input_errors(host: str, servername: str | None) -> None:
    with pytest.raises(InputError, match="not a valid host name"):
        fetch_served_chain(host, 443, servername=servername)


# --- tls_versions=None: one negotiated handshake, per-version handshakes only on doubt ---------


def test_negotiated_fetch_is_one_handshake(loop: ServerLoop, rsa_chain: TestChain) -> None:
    with LoopbackTLSServer(rsa_chain.served, rsa_chain.key, loop=loop) as server:
        result = fetch_served_chain("127.0.0.1", server.port, tls_versions=None)
    assert server.connections == 1
    assert list(server.handshakes) == [(None, "1.3")]
    assert list(result.handshakes) == ["1.3"]  # filed under the version the server picked
    assert result.errors == {}
    assert result.chain.tls_version == "1.3"
    assert result.chain.der == _der(rsa_chain.served)


@pytest.mark.parametrize("only", ["1.2", "1.3"])
def test_negotiated_fetch_of_single_version_servers(
    only: str, loop: ServerLoop, ec_chain: TestChain
) -> None:
    with LoopbackTLSServer(
        ec_chain.served, ec_chain.key, min_version=only, max_version=only, loop=loop
    ) as server:
        result = fetch_served_chain("127.0.0.1", server.port, tls_versions=None)
    assert server.connections == 1
    assert list(result.handshakes) == [only]
    assert result.errors == {}


def _hello_extensions(hello: bytes) -> dict[int, bytes]:
    """The extensions of a ClientHello record (type -> body)."""
    body = hello[5 + 4 :]  # record header, handshake header
    pos = 2 + 32  # legacy_version, random
    pos += 1 + body[pos]  # session id
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher suites
    pos += 1 + body[pos]  # compression methods
    end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 2
    found: dict[int, bytes] = {}
    while pos + 4 <= end:
        kind = int.from_bytes(body[pos : pos + 2], "big")
        size = int.from_bytes(body[pos + 2 : pos + 4], "big")
        found[kind] = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return found


def _read_hello(conn: socket.socket) -> bytes:
    hello = b""
    while len(hello) < 5 or len(hello) < 5 + int.from_bytes(hello[3:5], "big"):
        data = conn.recv(65536)
        if not data:
            break
        hello += data
    return hello


class _Tls13Intolerant:
    """A TCP proxy in front of a TLS 1.2 server that hangs up on any ClientHello offering TLS
    1.3 (the supported_versions extension), as some old middleboxes do."""

    def __init__(self, backend: tuple[str, int]) -> None:
        self.backend = backend
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _offers_tls13(hello: bytes) -> bool:
        return b"\x03\x04" in _hello_extensions(hello).get(0x2B, b"")  # supported_versions

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            hello = _read_hello(conn)
            if not hello or self._offers_tls13(hello):
                return  # hang up
            with socket.create_connection(self.backend) as up:
                up.sendall(hello)
                pipes = [
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                    for a, b in ((conn, up), (up, conn))
                ]
                for p in pipes:
                    p.start()
                for p in pipes:
                    p.join(10)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


def test_negotiated_fetch_retries_each_version_when_the_handshake_fails(
    loop: ServerLoop, rsa_chain: TestChain
) -> None:
    """A server that hangs up on a TLS 1.3 offer: the negotiated handshake fails, so each
    version is tried on its own; TLS 1.2 works and the 1.3 failure is recorded."""
    with LoopbackTLSServer(
        rsa_chain.served, rsa_chain.key, max_version="1.2", loop=loop
    ) as backend:
        proxy = _Tls13Intolerant(backend.address)
        try:
            result = fetch_served_chain("127.0.0.1", proxy.port, tls_versions=None, timeout=5)
        finally:
            proxy.close()
    assert proxy.connections == 3  # the negotiated try, then 1.2 and 1.3
    assert list(result.handshakes) == ["1.2"]
    assert result.chain.der == _der(rsa_chain.served)
    assert list(result.errors) == ["1.3"]
    assert "closed the connection during the TLS 1.3 handshake" in str(result.errors["1.3"])


def test_negotiated_fetch_does_not_retry_an_unreachable_server(
    loop: ServerLoop, ec_chain: TestChain
) -> None:
    gone = LoopbackTLSServer(ec_chain.served, ec_chain.key, loop=loop)
    port = gone.port
    gone.close()
    with pytest.raises(TLSConnectError) as info:
        fetch_served_chain("127.0.0.1", port, tls_versions=None)
    # one attempt, reported once: a retry per version would name the versions separately
    assert str(info.value) == (
        f"127.0.0.1:{port}: connection refused: nothing listens on port {port} "
        "(check the host and port)"
    )


def test_the_client_hello_offers_one_classical_key_share() -> None:
    """The negotiated handshake's ClientHello, read on the wire: OpenSSL 3.0's group list and
    one key share (X25519), not OpenSSL 4.0's default hybrid post-quantum one (1.5 KB)."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def record() -> None:
        conn, _ = listener.accept()
        with conn:
            seen.append(_read_hello(conn))

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    try:
        with pytest.raises(TLSFetchError):
            fetch_served_chain("127.0.0.1", listener.getsockname()[1], tls_versions=None, timeout=3)
    finally:
        thread.join(5)
        listener.close()
    hello = seen[0]
    ext = _hello_extensions(hello)
    groups = ext[0x0A][2:]  # supported_groups, after its length
    named = [int.from_bytes(groups[i : i + 2], "big") for i in range(0, len(groups), 2)]
    # x25519, secp256r1, x448, secp521r1, secp384r1, ffdhe2048 ... ffdhe8192
    assert named == [0x1D, 0x17, 0x1E, 0x19, 0x18, 0x100, 0x101, 0x102, 0x103, 0x104]
    shares = ext[0x33][2:]  # key_share: (group, length, key) entries
    offered = []
    while shares:
        size = int.from_bytes(shares[2:4], "big")
        offered.append((int.from_bytes(shares[:2], "big"), size))
        shares = shares[4 + size :]
    assert offered == [(0x1D, 32)]
    assert len(hello) < 600


def test_a_server_that_wants_another_group_still_answers(ec_chain: TestChain) -> None:
    """A TLS 1.3 server that only accepts P-384 asks for it (HelloRetryRequest): one handshake,
    the chain as served."""
    import tempfile
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_ecdh_curve("secp384r1")
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "chain.pem"
        pem.write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in ec_chain.served)
            + ec_chain.key.private_bytes(
                Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(pem)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = fetch_served_chain(
            "127.0.0.1", listener.getsockname()[1], tls_versions=None, timeout=5
        )
    finally:
        thread.join(5)
        listener.close()
    assert list(result.handshakes) == ["1.3"]
    assert result.chain.der == _der(ec_chain.served)
