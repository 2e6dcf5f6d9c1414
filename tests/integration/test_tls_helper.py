"""The TLS engine in a forked helper process (``fetch_as_completed(helper_process=True)``).

The loopback servers run here, on this process's server thread; each fetch runs in a fresh
interpreter (a child process with one thread, as the command line is), whose ``os.fork`` is
wrapped to count and record the forks: the helper is really forked, only observed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _chains import TestChain, make_chain
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.testing.tls_servers import HostileServer, LoopbackTLSServer, ServerLoop
from sectigo_chain.tls import _helper
from sectigo_chain.tls.fetch import FetchResult, fetch_as_completed

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="helper: Linux only")

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: fetch the targets of argv[1] (JSON) with the helper on or off
# and print, per target, what came back; "forks" lists the pids os.fork returned.
_SCRIPT = """
import json, os, sys
forks = []
_fork = os.fork
def fork():
    pid = _fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = fork
from sectigo_chain.tls import _helper
from sectigo_chain.tls.fetch import FetchResult, Target, fetch_as_completed
spec = json.loads(sys.argv[1])
if spec.get("die_after") is not None:  # the helper dies after that many targets
    _write, sent = _helper._write, []
    def write(fd, data):
        if len(sent) == spec["die_after"]:
            os._exit(1)
        sent.append(1)
        _write(fd, data)
    _helper._write = write
piped = []  # the indexes that came through the helper's pipe (not fetched here)
_read = _helper._read
def read(frames):
    for index, ended in _read(frames):
        piped.append(index)
        yield index, ended
_helper._read = read
targets = [Target("127.0.0.1", port, name) for port, name in spec["targets"]]
stream = fetch_as_completed(targets, tls_versions=spec["versions"], timeout=5,
                            concurrency=spec.get("concurrency", 64),
                            helper_process=spec["helper"])
out, order = {}, []
for index, outcome in stream:
    order.append(index)
    if isinstance(outcome, FetchResult):
        out[index] = {v: [s.tls_version, [d.hex() for d in s.der]]
                      for v, s in outcome.handshakes.items()}
        out[index]["errors"] = {v: [type(e).__name__, str(e)] for v, e in outcome.errors.items()}
    else:
        out[index] = [type(outcome).__name__, str(outcome)]
    if spec.get("stop_after") == len(out):
        stream.close()
        break
reaped = []
for pid in forks:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        reaped.append(pid)
print(json.dumps({"out": out, "forks": len(forks), "reaped": len(reaped), "piped": piped,
                  "order": order}))
"""


def _fetch(spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def chains() -> list[TestChain]:
    return [make_chain("helper.test", kind=k, label=f"Helper {k}") for k in ("ec", "rsa")]


@pytest.fixture(scope="module")
def targets(loop: ServerLoop, chains: list[TestChain]) -> Iterator[list[list[Any]]]:
    """Nine good servers (two chains, TLS 1.2-only among them), a refused port, a server
    that hangs up after the ClientHello and one that answers plain HTTP."""
    servers: list[LoopbackTLSServer | HostileServer] = [
        LoopbackTLSServer(
            chains[i % 2].served, chains[i % 2].key, max_version="1.2" if i == 4 else "1.3",
            loop=loop,
        )
        for i in range(9)
    ]  # fmt: skip
    gone = LoopbackTLSServer(chains[0].served, chains[0].key, loop=loop)
    refused = gone.port
    gone.close()
    servers += [HostileServer("close", loop=loop), HostileServer("plaintext", loop=loop)]
    for server in servers:
        server.start()
    ports = [s.port for s in servers]
    try:
        yield [[p, "helper.test"] for p in [*ports[:5], refused, *ports[5:]]]
    finally:
        for server in servers:
            server.close()


@pytest.mark.parametrize("versions", [None, ["1.2", "1.3"]])
def test_the_helper_gives_what_the_engine_gives_here(
    targets: list[list[Any]], chains: list[TestChain], versions: list[str] | None
) -> None:
    helped = _fetch({"targets": targets, "versions": versions, "helper": True})
    here = _fetch({"targets": targets, "versions": versions, "helper": False})
    assert helped["forks"] == 1
    assert here["forks"] == 0
    assert helped["reaped"] == 1  # no helper is left behind
    assert sorted(helped["piped"]) == list(range(len(targets)))  # all came from the helper
    assert sorted(helped["order"]) == list(range(len(targets)))  # each once
    assert here["piped"] == []
    assert helped["out"] == here["out"]
    out = helped["out"]
    assert sorted(out, key=int) == [str(i) for i in range(len(targets))]
    served = [[c.public_bytes(Encoding.DER).hex() for c in chain.served] for chain in chains]
    good = [0, 1, 2, 3, 4, 6, 7, 8, 9]
    for n, index in enumerate(good):
        result = out[str(index)]
        chosen = result["1.2"] if n == 4 else result.get("1.3")  # the TLS 1.2-only server
        assert chosen is not None
        assert chosen[1] == served[n % 2]
    assert out["5"][0] == "TLSConnectError"
    assert "connection refused" in out["5"][1]
    assert out["10"][0] == "TLSHandshakeError"
    assert "does not speak TLS" in out["11"][1]
    if versions is None:  # negotiated: the 1.2-only server picked 1.2 in one handshake
        assert set(out["4"]) == {"1.2", "errors"}
    else:  # per version: its 1.3 failure is recorded next to the 1.2 chain
        assert set(out["4"]["errors"]) == {"1.3"}


def test_targets_a_dead_helper_left_are_fetched_here(targets: list[list[Any]]) -> None:
    spec = {"targets": targets, "versions": None, "concurrency": 2}
    here = _fetch({**spec, "helper": False})
    helped = _fetch({**spec, "helper": True, "die_after": 3})
    assert helped["forks"] == 1
    assert helped["reaped"] == 1
    assert len(helped["piped"]) == 3  # the helper reported three, then died
    assert sorted(helped["order"]) == list(range(len(targets)))  # the rest here, none twice
    assert helped["out"] == here["out"]  # every target, the same answers


def test_stopping_early_ends_the_helper(targets: list[list[Any]]) -> None:
    helped = _fetch({"targets": targets, "versions": None, "helper": True, "stop_after": 1})
    assert helped["forks"] == 1
    assert len(helped["out"]) == 1
    assert helped["reaped"] == 1  # ended and reaped, not left running


def test_no_helper_while_other_threads_run(
    targets: list[list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process runs the servers' thread: forking it could copy a lock that thread
    holds, so the engine runs here instead."""
    assert threading.active_count() > 1
    assert not _helper.available()

    def no_fork() -> int:
        raise AssertionError("forked a process that runs other threads")

    monkeypatch.setattr(os, "fork", no_fork)
    stream = fetch_as_completed(
        [("127.0.0.1", port) for port, _ in targets[:3]], tls_versions=None, helper_process=True
    )
    results = dict(stream)
    assert sorted(results) == [0, 1, 2]
    assert all(isinstance(r, FetchResult) for r in results.values())


def test_frames_round_trip() -> None:
    """What the child writes is what the parent reads: every field of a handshake and a
    failure, the error class by name (an unknown name reads as the base class)."""
    from sectigo_chain.errors import TLSFetchError, TLSTimeout
    from sectigo_chain.tls._engine import Failure, Handshake

    class _Job:
        def __init__(self, version: str, result: Any, failure: Any) -> None:
            self.version, self.result, self.failure = version, result, failure

    hs = Handshake("127.0.0.1", "1.3", "TLS_AES_128_GCM_SHA256", (b"\x30\x01", b"\x30\x02"))
    late = Failure(TLSTimeout, "the TLS {v} handshake did not finish", "hint", 4)
    frame = _helper._frame(7, [_Job("1.2/1.3", None, late), _Job("1.2", hs, None)])
    read_end, write_end = os.pipe()
    os.write(write_end, frame + frame[:5])  # a second frame cut short: the end
    os.close(write_end)
    with os.fdopen(read_end, "rb") as frames:
        got = list(_helper._read(frames))
    assert got == [(7, [("1.2/1.3", None, late), ("1.2", hs, None)])]
    odd = _helper._ended("1.2", None, ("NoSuchError", "what", "", 1))
    assert odd[2] is not None
    assert odd[2].kind is TLSFetchError


def test_the_cli_uses_a_helper_for_long_lists(
    loop: ServerLoop, chains: list[TestChain], tmp_path: Path
) -> None:
    from sectigo_chain.cli.commands.check import HELPER_MIN_TARGETS

    servers = [
        LoopbackTLSServer(chains[i % 2].served, chains[i % 2].key, loop=loop)
        for i in range(HELPER_MIN_TARGETS)
    ]
    for server in servers:
        server.start()
    listing = tmp_path / "targets.txt"
    listing.write_text("".join(f"127.0.0.1:{s.port} helper.test\n" for s in servers))
    code = textwrap.dedent("""
        import os, sys
        _fork = os.fork
        def fork():
            pid = _fork()
            if pid:
                sys.stderr.write("FORKED\\n")
            return pid
        os.fork = fork
        from sectigo_chain.tls import _helper
        _read = _helper._read
        def read(frames):
            for item in _read(frames):
                sys.stderr.write("FRAME\\n")
                yield item
        _helper._read = read
        sys.argv[0] = "sectigo-chain"
        from sectigo_chain.cli.main import console
        console()
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-c", code, "check", "--targets-file", str(listing), "--json"]
    try:
        runs = [
            subprocess.run([*base, *extra], capture_output=True, text=True, env=env, timeout=60)
            for extra in ([], ["--single-process"])
        ]
    finally:
        for server in servers:
            server.close()
    helped, alone = runs
    assert helped.returncode == alone.returncode == 1  # test chains: not Sectigo's roots
    assert helped.stderr.count("FORKED") == 1
    assert helped.stderr.count("FRAME") == HELPER_MIN_TARGETS  # every target from the helper
    assert "FORKED" not in alone.stderr

    def without_times(text: str) -> list[Any]:
        targets = json.loads(text)["targets"]
        for target in targets:
            target.pop("duration", None)
            target.pop("checked_at", None)
        return targets

    assert without_times(helped.stdout) == without_times(alone.stdout)
    assert len(without_times(helped.stdout)) == HELPER_MIN_TARGETS
