"""Hostile servers never hang ``check`` past its timeout, and never spoil other targets.

The servers (``sectigo_chain.testing.tls_servers.HostileServer`` and TLS servers sending huge
chains) run on 127.0.0.1. Elapsed-time asserts here are hang bounds (timeout + generous slack), not
performance checks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from sectigo_chain.cli.main import main
from sectigo_chain.errors import TLSConnectError, TLSFetchError, TLSHandshakeError, TLSTimeout
from sectigo_chain.testing.lab import LabHierarchy, make_certificate, new_key
from sectigo_chain.testing.tls_servers import (
    HostileBehavior,
    HostileServer,
    LoopbackTLSServer,
    ServerLoop,
)
from sectigo_chain.tls.check import check_endpoint, check_many
from sectigo_chain.tls.fetch import MAX_CERTIFICATES
from sectigo_chain.tls.report import ChainReport, CheckFailure

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 0.5
SLACK = 5.0  # a hang bound, not a speed test
EXPECTED: dict[HostileBehavior, type[TLSFetchError]] = {
    "hang": TLSTimeout,
    "trickle": TLSTimeout,
    "blackhole": TLSTimeout,
    "reset": TLSConnectError,
    "close": TLSHandshakeError,
    "plaintext": TLSHandshakeError,
    "garbage": TLSHandshakeError,
}
UTC = dt.timezone.utc


def _junk(count: int) -> list[x509.Certificate]:
    """``count`` distinct self-signed EC CA certificates (about 400 bytes each)."""
    key = new_key("ECC")
    now = dt.datetime.now(UTC)
    out = []
    for i in range(count):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Junk CA {i}")])
        out.append(
            make_certificate(
                subject=name,
                public_key=key.public_key(),
                issuer=name,
                issuer_key=key,
                not_before=now - dt.timedelta(days=1),
                not_after=now + dt.timedelta(days=30),
                ca=True,
            )
        )
    return out


@pytest.fixture(scope="module")
def ports(lab: LabHierarchy) -> Iterator[dict[str, int]]:
    leaf = lab.issue_leaf(["www.example.test"])
    good = lab.served_chain(leaf, "cross")
    junk = _junk(400)
    with ServerLoop() as loop:
        servers: dict[str, HostileServer | LoopbackTLSServer] = {
            b: HostileServer(b, loop=loop) for b in EXPECTED
        }
        servers["good"] = LoopbackTLSServer(good, leaf.key, loop=loop)
        # ~40 KiB: accepted by the client, cut to MAX_CERTIFICATES and judged
        servers["long_chain"] = LoopbackTLSServer([*good, *junk[:100]], leaf.key, loop=loop)
        # ~160 KiB: over OpenSSL's 100 KiB certificate-list limit
        servers["huge_chain"] = LoopbackTLSServer([*good, *junk], leaf.key, loop=loop)
        for server in servers.values():
            server.start()
        yield {name: s.port for name, s in servers.items()}
        for server in servers.values():
            server.close()


@pytest.mark.parametrize("behavior", list(EXPECTED))
def test_api_raises_typed_error_in_time(
    behavior: HostileBehavior, ports: dict[str, int], lab: LabHierarchy
) -> None:
    start = time.monotonic()
    with pytest.raises(EXPECTED[behavior]) as caught:
        check_endpoint("127.0.0.1", ports[behavior], timeout=TIMEOUT, catalog=lab.catalog)
    assert time.monotonic() - start < TIMEOUT + SLACK
    assert f"127.0.0.1:{ports[behavior]}" in str(caught.value)


def test_huge_chain_is_refused_in_time(ports: dict[str, int], lab: LabHierarchy) -> None:
    start = time.monotonic()
    with pytest.raises(TLSHandshakeError, match="larger than OpenSSL accepts"):
        check_endpoint("127.0.0.1", ports["huge_chain"], timeout=TIMEOUT * 4, catalog=lab.catalog)
    assert time.monotonic() - start < TIMEOUT * 4 + SLACK


def test_long_chain_is_cut_and_judged(ports: dict[str, int], lab: LabHierarchy) -> None:
    report = check_endpoint(
        "127.0.0.1",
        ports["long_chain"],
        servername="www.example.test",
        timeout=5,
        catalog=lab.catalog,
    )
    assert len(report.served_chain) == MAX_CERTIFICATES
    assert all(r.truncated for r in report.tls_versions.values())
    assert any("103 certificates" in note for note in report.notes)
    extra = [f for f in report.findings if f.code == "EXTRA_CERTS"]
    assert len(extra) == 1
    assert len(extra[0].certificates) == MAX_CERTIFICATES - 3
    assert report.verdict == "warn"  # the path itself is the complete cross chain
    assert all(p.valid for p in report.profiles.values())


def test_check_many_isolates_targets(ports: dict[str, int], lab: LabHierarchy) -> None:
    names = [*EXPECTED, "good", "huge_chain"]
    start = time.monotonic()
    results = check_many(
        [("127.0.0.1", ports[n]) for n in names], timeout=TIMEOUT, catalog=lab.catalog
    )
    assert time.monotonic() - start < TIMEOUT + SLACK
    by_name = dict(zip(names, results, strict=True))
    good = by_name.pop("good")
    assert isinstance(good, ChainReport)
    assert good.verdict == "pass"
    for name, result in by_name.items():
        assert isinstance(result, CheckFailure), name
        assert result.unreachable
        expected = EXPECTED.get(name, TLSHandshakeError)  # type: ignore[call-overload]
        assert result.error == expected.__name__, (name, result.message)
        assert result.to_json()["verdict"] == "error"


def test_cli_exit_3_one_line_each(
    ports: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    names = list(EXPECTED)
    argv = ["check", "--json", "--timeout", str(TIMEOUT)]
    argv += [f"127.0.0.1:{ports[n]}" for n in names]
    start = time.monotonic()
    code = main(argv)
    assert time.monotonic() - start < TIMEOUT + SLACK
    captured = capsys.readouterr()
    assert code == 3
    doc = json.loads(captured.out)
    assert doc["verdict"] == "error"
    assert doc["summary"] == {"pass": 0, "warn": 0, "fail": 0, "error": len(names)}
    assert [t["error"]["type"] for t in doc["targets"]] == [EXPECTED[n].__name__ for n in names]
    lines = captured.err.splitlines()
    assert len(lines) == len(names)
    assert all(line.startswith("sectigo-chain check: error: 127.0.0.1:") for line in lines)


def test_cli_process_hang_exit_3_no_traceback(ports: dict[str, int]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "sectigo_chain", "check", f"127.0.0.1:{ports['hang']}"]
    start = time.monotonic()
    proc = subprocess.run(
        [*cmd, "--timeout", str(TIMEOUT)], capture_output=True, text=True, env=env, timeout=60
    )
    assert time.monotonic() - start < TIMEOUT + SLACK + 5  # + interpreter start-up
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "did not finish within 0.5 s" in proc.stderr
