"""The loopback server kit itself (sectigo_chain.testing.tls_servers)."""

from __future__ import annotations

import socket
import ssl
import tempfile
from pathlib import Path

import pytest
from _chains import make_chain
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop, server_context
from sectigo_chain.tls.fetch import fetch_served_chain

pytestmark = pytest.mark.timeout(30)


def test_key_and_chain_files_are_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    chain = make_chain()
    created: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def spy(*args: object, **kwargs: object) -> str:
        path = real_mkdtemp(*args, **kwargs)  # type: ignore[call-overload]
        created.append(path)
        return str(path)

    monkeypatch.setattr(tempfile, "mkdtemp", spy)
    with LoopbackTLSServer(chain.served, chain.key, sni={"x.test": (chain.served, chain.key)}):
        assert len(created) == 2  # default chain + one SNI name
        assert all(Path(p).parent == tmp_path for p in created)
        assert list(tmp_path.iterdir()) == []  # already deleted once loaded


def test_server_answers_https_after_the_handshake() -> None:
    chain = make_chain("web.test")
    client = ssl.create_default_context()
    client.load_verify_locations(cadata=chain.root.public_bytes(Encoding.PEM).decode())
    with (
        LoopbackTLSServer(chain.served, chain.key) as server,
        socket.create_connection(server.address, timeout=10) as raw,
        client.wrap_socket(raw, server_hostname="web.test") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
        reply = tls.recv(1024)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert server.handshakes[-1] == ("web.test", "1.3")


def test_close_stops_listening_and_drops_connections() -> None:
    chain = make_chain()
    with ServerLoop() as loop:
        server = LoopbackTLSServer(chain.served, chain.key, loop=loop)
        server.start()
        idle = socket.create_connection(server.address, timeout=10)  # never says hello
        fetch_served_chain(*server.address, tls_versions=["1.2"])
        server.close()
        assert idle.recv(1) == b""  # the server closed the idle connection
        idle.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(server.address, timeout=10)
        assert loop.errors == []


def test_server_context_rejects_bad_input() -> None:
    chain = make_chain()
    with pytest.raises(ValueError, match="at least a leaf"):
        server_context([], chain.key)
    with pytest.raises(ValueError, match="TLS versions"):
        server_context(chain.served, chain.key, max_version="1.1")
