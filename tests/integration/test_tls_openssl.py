"""fetch_served_chain against ``openssl s_server`` (a TLS stack other than Python's server)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _chains import TestChain, make_chain
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.errors import TLSHandshakeError
from sectigo_chain.tls.fetch import fetch_many, fetch_served_chain

pytestmark = pytest.mark.timeout(60)

OPENSSL = "/usr/bin/openssl"


@contextmanager
def s_server(tmp: Path, chain: TestChain, *args: str) -> Iterator[int]:
    """Run ``openssl s_server`` on 127.0.0.1:<ephemeral>; yield its port; kill it after."""
    (tmp / "leaf.pem").write_bytes(chain.leaf.public_bytes(Encoding.PEM))
    (tmp / "chain.pem").write_bytes(
        b"".join(c.public_bytes(Encoding.PEM) for c in (chain.root, chain.intermediate))
    )
    (tmp / "key.pem").write_bytes(
        chain.key.private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    log = tmp / "s_server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                OPENSSL,
                "s_server",
                "-accept",
                "127.0.0.1:0",
                "-cert",
                str(tmp / "leaf.pem"),
                "-cert_chain",
                str(tmp / "chain.pem"),
                "-key",
                str(tmp / "key.pem"),
                *args,
            ],
            stdin=subprocess.PIPE,  # s_server stops at EOF on stdin
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(rb"ACCEPT 127\.0\.0\.1:(\d+)", log.read_bytes())):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "openssl s_server did not start"
            time.sleep(0.02)
        yield int(found.group(1))
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdin is not None:
            proc.stdin.close()


@pytest.fixture(scope="module")
def chain() -> TestChain:
    return make_chain("openssl.test", kind="rsa", label="OpenSSL")


@pytest.mark.parametrize(
    ("flag", "version", "missing"), [("-tls1_2", "1.2", "1.3"), ("-tls1_3", "1.3", "1.2")]
)
def test_s_server_chain_and_versions(
    tmp_path: Path, chain: TestChain, flag: str, version: str, missing: str
) -> None:
    # -cert_chain is sent in file order: here root BEFORE intermediate, a wrong order on purpose
    expected = tuple(
        c.public_bytes(Encoding.DER) for c in (chain.leaf, chain.root, chain.intermediate)
    )
    with s_server(tmp_path, chain, flag) as port:
        result = fetch_served_chain("127.0.0.1", port, servername="openssl.test", timeout=5)
        with pytest.raises(TLSHandshakeError, match=f"does not support TLS {missing}"):
            fetch_served_chain("127.0.0.1", port, tls_versions=[missing], timeout=5)
    assert list(result.handshakes) == [version]
    assert result.chain.der == expected
    assert result.chain.tls_version == version
    assert result.chain.servername == "openssl.test"
    assert isinstance(result.errors[missing], TLSHandshakeError)


def test_s_server_in_fetch_many(tmp_path: Path, chain: TestChain) -> None:
    with s_server(tmp_path, chain) as port:
        (outcome,) = fetch_many([("127.0.0.1", port)], timeout=5)
    assert not isinstance(outcome, Exception)
    assert set(outcome.handshakes) == {"1.2", "1.3"}
    assert outcome.chains_agree
    assert outcome.chain.certificates[0] == chain.leaf


@pytest.mark.parametrize(
    "args",
    [
        # static RSA key exchange (no forward secrecy), as very old servers offer
        ("-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0"),
        # ECDHE, but the server signs its key exchange with SHA-1 only
        ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0", "-sigalgs", "RSA+SHA1"),
    ],
    ids=["static-rsa", "sha1-signature"],
)
def test_an_old_servers_chain_is_still_read(
    tmp_path: Path, chain: TestChain, args: tuple[str, ...]
) -> None:
    """The client only reads certificates, so it accepts what an old server offers
    (``@SECLEVEL=0``): the chain is fetched whatever the key exchange or signature."""
    with s_server(tmp_path, chain, *args) as port:
        result = fetch_served_chain("127.0.0.1", port, servername="openssl.test", timeout=5)
    assert list(result.handshakes) == ["1.2"]
    assert result.chain.certificates[0] == chain.leaf
    assert result.handshakes["1.2"].cipher == args[2].split(":")[0]
