"""The TLS engine in a forked helper process (``fetch_as_completed(helper_process=True)``).

The loopback servers run here, on this process's server thread; each fetch runs in a fresh
interpreter (a child process with one thread, as the command line is), whose ``os.fork`` is
wrapped to count and record the forks: the helper is really forked, only observed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
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

from sectigo_chain.testing.lab import default_lab
from sectigo_chain.testing.tls_servers import HostileServer, LoopbackTLSServer, ServerLoop
from sectigo_chain.tls import _helper
from sectigo_chain.tls.fetch import FetchResult, fetch_as_completed

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="helper: Linux only")

ROOT = Path(__file__).resolve().parents[2]

# The scripts below run in a fresh interpreter whose os.fork records the pids it returned
# (_FORKS), and which keeps what the package logs (``logged``); at the end, _REAPED lists the
# pids that were already reaped (no helper left behind).
_FORKS = """
import datetime as dt, json, logging, marshal, os, signal, sys, time
logged = []
class _Keep(logging.Handler):
    def emit(self, record):
        logged.append([record.levelname, record.getMessage()])
logging.getLogger("sectigo_chain").addHandler(_Keep())
forks = []
_fork = os.fork
def fork():
    pid = _fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = fork
"""
_REAPED = """
reaped = []
for pid in forks:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        reaped.append(pid)
"""

# Fetch the targets of argv[1] (JSON) with the helper on or off and print, per target, what
# came back.
_SCRIPT = (
    _FORKS
    + """
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
kinds = []  # the kinds of frame that came
_take = _helper._Frames.take
def take(self, *, wait):
    frames = _take(self, wait=wait)
    piped.extend(index for kind, index, _ in frames if kind == _helper._RAW)
    kinds.extend(kind for kind, _, _ in frames)
    return frames
_helper._Frames.take = take
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
"""
    + _REAPED
    + """
print(json.dumps({"out": out, "forks": len(forks), "reaped": len(reaped), "piped": piped,
                  "order": order, "kinds": kinds, "logged": logged}))
"""
)


def _run(script: str, spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _fetch(spec: dict[str, Any]) -> dict[str, Any]:
    return _run(_SCRIPT, spec)


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
    assert set(helped["kinds"]) == {_helper._RAW}  # no judge: never idle, nothing judged there
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
    left = len(targets) - 3
    assert helped["logged"] == [
        [
            "WARNING",
            f"the helper process ended early (exit status 1); this process fetched or judged "
            f"the {left} target(s) it left",
        ]
    ]
    assert here["logged"] == []


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
    ended = _helper._ended_of([_Job("1.2/1.3", None, late), _Job("1.2", hs, None)])
    raw = _helper._frame(_helper._RAW, 7, ended)
    judged = _helper._frame(_helper._JUDGED, 3, b"pickled")
    read_end, write_end = os.pipe()
    frames = _helper._Frames(read_end)
    try:
        assert frames.take(wait=False) == []  # nothing yet, and no waiting for it
        os.write(write_end, raw + judged[:3])  # the second frame comes in two writes
        first = frames.take(wait=True)
        os.write(write_end, judged[3:] + raw[:5])  # a third frame cut short: the end
        os.close(write_end)
        rest = frames.take(wait=True)
        assert frames.ended
        assert frames.take(wait=True) == []  # the end: no waiting
    finally:
        os.close(read_end)
    assert len(first) == 1
    kind, index, payload = first[0]
    assert (kind, index) == (_helper._RAW, 7)
    assert [_helper._ended(*item) for item in payload] == [
        ("1.2/1.3", None, late),
        ("1.2", hs, None),
    ]
    assert rest == [(_helper._JUDGED, 3, b"pickled")]
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
        import marshal
        from sectigo_chain.tls import _helper
        KINDS = ('RAW', 'JUDGED', 'IDLE', 'ERROR')
        _take = _helper._Frames.take
        def take(self, *, wait):
            frames = _take(self, wait=wait)
            for kind, index, _ in frames:
                sys.stderr.write(f"{KINDS[kind]} {index}\\n")
            return frames
        _helper._Frames.take = take
        _write = _helper._write
        def write(fd, data):  # what the helper sends, read or not (its stderr is /dev/null)
            with open(os.environ["SENT_LOG"], "a") as log:
                log.write(KINDS[marshal.loads(data[4:])[0]] + "\\n")
            _write(fd, data)
        _helper._write = write
        _child = _helper._child
        def child(run, write_end, judge, back):
            with open(os.environ["SENT_LOG"], "a") as log:
                log.write(f"JUDGE={judge is not None}\\n")
            _child(run, write_end, judge, back)
        _helper._child = child
        sys.argv[0] = "sectigo-chain"
        from sectigo_chain.cli.main import console
        console()
    """)
    sent = tmp_path / "sent.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SENT_LOG": str(sent)}
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
    # every target came from the helper: for the parent to judge, or judged there
    lines = helped.stderr.splitlines()
    raw = [line for line in lines if line.startswith("RAW ")]
    judged = [line for line in lines if line.startswith("JUDGED ")]
    assert len(set(raw)) == len(raw) == HELPER_MIN_TARGETS  # every target came from the helper
    assert len(set(judged)) == len(judged) <= (HELPER_MIN_TARGETS - _helper.SPARE) // 2
    assert lines.count("IDLE -1") <= 1  # not read when this process had judged every target
    sent_kinds = sent.read_text().split()
    assert sent_kinds.count("RAW") == HELPER_MIN_TARGETS
    assert sent_kinds[0] == "JUDGE=True"  # the CLI gives its helper a judge
    assert sent_kinds.count("IDLE") <= 1  # ended before it said so when all was in
    assert "ERROR" not in sent_kinds
    assert "FORKED" not in alone.stderr

    def without_times(text: str) -> list[Any]:
        targets = json.loads(text)["targets"]
        for target in targets:
            target.pop("duration", None)
            target.pop("checked_at", None)
        return targets

    assert without_times(helped.stdout) == without_times(alone.stdout)
    assert len(without_times(helped.stdout)) == HELPER_MIN_TARGETS


# --- check_many: the helper judges a share once its handshakes are done -----------------------

AT = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
_RT = int(getattr(signal, "SIGRTMIN", 34)) + 1  # (the module is skipped off Linux)

# check_many of argv[1]'s targets against the pinned lab, with the helper on or off. This
# process judges slowly (``slow`` seconds per chain) so that the helper, done with its
# handshakes, finds targets left to judge; it records which targets came back judged and
# which chains it judged itself.
_CHECK_SCRIPT = (
    _FORKS
    + """
from sectigo_chain.testing.lab import default_lab
from sectigo_chain.tls import _helper, check
from sectigo_chain.tls.fetch import Target
spec = json.loads(sys.argv[1])
parent = os.getpid()
_helper.SPARE = spec.get("spare", _helper.SPARE)
_report, here = check._report, []
def report(fetched, *args, **kwargs):
    if os.getpid() == parent:
        here.append(fetched.target)
        if spec.get("interrupt_at") == len(here):
            raise KeyboardInterrupt
        time.sleep(spec.get("slow", 0))
        if len(here) == 1:  # (a caller that holds the first report as long)
            time.sleep(spec.get("slow_first", 0))
    else:
        time.sleep(spec.get("slow_helper", 0))
    return _report(fetched, *args, **kwargs)
check._report = report
if spec.get("die_after_judging") is not None:  # the helper dies after judging that many
    _write, judged_sent = _helper._write, []
    def write(fd, data):
        if os.getpid() != parent and marshal.loads(data[4:])[0] == _helper._JUDGED:
            if len(judged_sent) == spec["die_after_judging"]:
                os._exit(1)
            judged_sent.append(1)
        _write(fd, data)
    _helper._write = write
if spec.get("fails_in_helper"):  # a bug in the helper, after its first judgement
    _frame = _helper._frame
    def frame(kind, index, payload):
        if kind == _helper._JUDGED and os.getpid() != parent:
            raise RuntimeError("sending broke\\n in the \\x1b[31mhelper")
        return _frame(kind, index, payload)
    _helper._frame = frame
if spec.get("die_at_idle"):  # the helper dies after saying it is idle, before the answer
    _helper._given = lambda back, timeout: os._exit(1)
if spec.get("killed_at_idle"):  # ... or is killed then, by that signal
    _helper._given = lambda back, timeout: os.kill(os.getpid(), spec["killed_at_idle"])
handed = []  # the targets this process handed to the helper to judge
_answer = _helper._answer
def answer(back, indexes):
    handed.extend(indexes)
    _answer(back, indexes)
_helper._answer = answer
judged = []
_take = _helper._Frames.take
def take(self, *, wait):
    frames = _take(self, wait=wait)
    kinds = [kind for kind, _, _ in frames]
    judged.extend(index for kind, index, _ in frames if kind == _helper._JUDGED)
    if spec.get("interrupt_on") in [("RAW", "JUDGED", "IDLE", "ERROR")[k] for k in kinds]:
        raise KeyboardInterrupt
    return frames
_helper._Frames.take = take
targets = [Target("127.0.0.1", port, name) for port, name in spec["targets"]]
try:
    results = check.check_many(targets, catalog=default_lab().catalog,
                               timeout=spec.get("timeout", 10),
                               at=dt.datetime.fromisoformat(spec["at"]),
                               helper_process=spec["helper"])
    out = []
    for result in results:
        doc = result.to_json()
        doc.pop("duration", None)  # when each was judged differs, not what
        out.append(doc)
except KeyboardInterrupt as exc:
    kept = exc  # a caller that keeps the error keeps its traceback's frames alive
    out = None
"""
    + _REAPED
    + """
print(json.dumps({"out": out, "forks": len(forks), "reaped": len(reaped), "judged": judged,
                  "here": here, "labels": [t.label for t in targets], "logged": logged,
                  "handed": handed},
                 default=str))
"""
)


def _check(spec: dict[str, Any]) -> dict[str, Any]:
    return _run(_CHECK_SCRIPT, {"at": AT.isoformat(), **spec})


@pytest.fixture(scope="module")
def lab_targets(loop: ServerLoop) -> Iterator[list[list[Any]]]:
    """Sixteen servers of lab chains (RSA and ECC leaves; the fixed chain, the short one, the
    self-signed R46/E46 sent, the root sent), a refused port and one that hangs up."""
    lab = default_lab()
    leaves = [lab.issue_leaf(("helper.test",), family=f, at=AT) for f in ("RSA", "ECC")]
    kinds: list[Any] = ["cross", "short", "selfsigned", "with_root"]
    servers: list[LoopbackTLSServer | HostileServer] = [
        LoopbackTLSServer(
            lab.served_chain(leaves[i % 2], kinds[i // 2 % 4]), leaves[i % 2].key, loop=loop
        )
        for i in range(16)
    ]
    gone = LoopbackTLSServer(lab.served_chain(leaves[0]), leaves[0].key, loop=loop)
    refused = gone.port
    gone.close()
    servers.append(HostileServer("close", loop=loop))
    for server in servers:
        server.start()
    ports = [s.port for s in servers]
    try:
        yield [[p, "helper.test"] for p in [*ports[:8], refused, *ports[8:]]]
    finally:
        for server in servers:
            server.close()


def test_the_helper_judges_a_share_with_the_same_answers(lab_targets: list[list[Any]]) -> None:
    spec = {"targets": lab_targets, "slow": 0.05, "spare": 0}
    helped = _check({**spec, "helper": True})
    alone = _check({**spec, "helper": False})
    assert helped["forks"] == 1
    assert helped["reaped"] == 1
    assert helped["logged"] == []  # nothing went wrong: nothing to say
    assert alone["forks"] == 0
    assert alone["judged"] == []
    assert helped["out"] == alone["out"]  # target for target, every field but the time
    verdicts = [doc["verdict"] for doc in helped["out"]]
    assert "pass" in verdicts
    assert "fail" in verdicts
    assert "error" in verdicts  # the refused port and the one that hangs up
    judged = helped["judged"]
    assert judged  # the helper judged some ...
    assert len(set(judged)) == len(judged)
    labels = helped["labels"]
    mine = {labels[i] for i in judged}
    assert not mine & set(helped["here"])  # ... and this process judged none of those again
    chains = {doc["target"] for doc in helped["out"] if doc["verdict"] != "error"}
    assert mine & chains  # chains among them, not only the failed connections
    assert len(mine & chains) + len(helped["here"]) == len(chains)  # each chain judged once


def test_targets_a_helper_died_judging_are_judged_here(lab_targets: list[list[Any]]) -> None:
    spec = {"targets": lab_targets, "slow": 0.05, "spare": 0}
    alone = _check({**spec, "helper": False})
    helped = _check({**spec, "helper": True, "die_after_judging": 1})
    assert helped["forks"] == 1
    assert helped["reaped"] == 1
    assert len(helped["judged"]) == 1  # one came back judged, then the helper died
    left = len(helped["handed"]) - 1
    assert helped["logged"] == [
        [
            "WARNING",
            f"the helper process ended early (exit status 1); this process fetched or judged "
            f"the {left} target(s) it left",
        ]
    ]
    chains = {doc["target"] for doc in alone["out"] if doc["verdict"] != "error"}
    first = helped["labels"][helped["judged"][0]]
    # this process judged every other chain, those it had handed over too
    assert sorted(helped["here"]) == sorted(chains - {first})
    assert helped["out"] == alone["out"]


@pytest.mark.parametrize("when", ["IDLE", "JUDGED", "here"])
def test_an_interrupt_ends_the_helper_while_it_judges(
    lab_targets: list[list[Any]], when: str
) -> None:
    """Ctrl-C when the helper has said it is idle (it waits for the answer), when its first
    judged target comes (it is judging the others), or while this process judges its third
    target (check_many's own loop; the caller keeps the error): the helper is ended and
    reaped before the error leaves check_many, not whenever the generator is collected."""
    spec = {"targets": lab_targets, "slow": 0.05, "spare": 0, "helper": True}
    if when == "here":
        helped = _check({**spec, "interrupt_at": 3})
    else:
        helped = _check({**spec, "interrupt_on": when})
    assert helped["out"] is None
    assert helped["forks"] == 1
    assert helped["reaped"] == 1
    if when != "here":  # the helper judges only once it has the answer
        assert bool(helped["judged"]) == (when == "JUDGED")


def test_a_helper_that_dies_before_the_answer_leaves_its_share_here(
    lab_targets: list[list[Any]],
) -> None:
    """The helper dies after saying it is idle: the answer finds no reader (no SIGPIPE here),
    and this process judges every target itself, with the same answers."""
    spec = {"targets": lab_targets, "slow": 0.05, "spare": 0}
    alone = _check({**spec, "helper": False})
    helped = _check({**spec, "helper": True, "die_at_idle": True})
    assert helped["forks"] == 1
    assert helped["reaped"] == 1
    assert helped["judged"] == []
    chains = {doc["target"] for doc in alone["out"] if doc["verdict"] != "error"}
    assert sorted(helped["here"]) == sorted(chains)
    assert helped["out"] == alone["out"]


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("fails_in_helper", "failed (RuntimeError: sending broke in the \\x1b[31mhelper)"),
        (int(signal.SIGKILL), "was killed by SIGKILL"),
        (_RT, f"was killed by signal {_RT}"),  # a real-time signal has no name
    ],
)
def test_a_helper_that_fails_says_why_once(
    lab_targets: list[list[Any]], how: str | int, why: str
) -> None:
    """The helper fails sending what it judged (a bug: its error comes through the pipe, on one
    line, control characters escaped here), or is killed at IDLE: one warning says so, with
    how many targets this process took over, and the answers are the same."""
    spec = {"targets": lab_targets, "slow": 0.05, "spare": 0}
    alone = _check({**spec, "helper": False})
    extra = {"fails_in_helper": True} if how == "fails_in_helper" else {"killed_at_idle": how}
    helped = _check({**spec, "helper": True, **extra})
    assert helped["reaped"] == 1
    assert helped["judged"] == []
    assert helped["out"] == alone["out"]
    left = len(helped["handed"])  # none came back: all handed over were judged here
    assert left
    assert helped["logged"] == [
        [
            "WARNING",
            f"the helper process {why}; this process fetched or judged the {left} target(s) "
            "it left",
        ]
    ]
    assert alone["logged"] == []


def test_a_helper_whose_answer_is_late_judges_nothing_and_says_nothing(
    loop: ServerLoop, lab_targets: list[list[Any]]
) -> None:
    """This process takes 4 s over its first target, so it reads the helper's IDLE (sent
    after 1 s: a server that hangs) late: the helper, without an answer for the fetch's timeout
    (1 s), leaves quietly, and this process takes back what it then hands over; not a
    failure."""
    with HostileServer("hang", loop=loop) as hang:
        spec = {"targets": [*lab_targets, [hang.port, "helper.test"]], "spare": 0, "timeout": 1}
        alone = _check({**spec, "helper": False})
        helped = _check({**spec, "helper": True, "slow_first": 4})
    assert helped["out"] == alone["out"]
    assert helped["judged"] == []
    assert helped["handed"]
    assert helped["logged"] == []
    assert helped["reaped"] == 1


def test_this_process_takes_back_what_a_slow_helper_has_not_judged(
    lab_targets: list[list[Any]],
) -> None:
    """The helper judges slowly (3 s a chain) and this process fast: once it has judged its
    own, it takes back the targets it handed over, last first, instead of waiting; the helper
    is ended when everything is in (not a failure: no warning), each target reported once."""
    spec = {"targets": lab_targets, "spare": 0}
    alone = _check({**spec, "helper": False})
    helped = _check({**spec, "helper": True, "slow_helper": 3})
    assert helped["out"] == alone["out"]
    assert helped["handed"]
    labels = helped["labels"]
    chains = {doc["target"] for doc in alone["out"] if doc["verdict"] != "error"}
    handed_chains = {labels[i] for i in helped["handed"]} & chains
    assert handed_chains
    assert handed_chains <= set(helped["here"])  # judged here after all ...
    taken_back = [label for label in helped["here"] if label in handed_chains]
    handed_order = [labels[i] for i in helped["handed"] if labels[i] in handed_chains]
    assert taken_back == handed_order[::-1]  # ... the last handed first
    assert len(helped["here"]) == len(set(helped["here"])) == len(chains)  # each once
    assert not {labels[i] for i in helped["judged"]} & chains  # it was still on its first
    assert helped["reaped"] == 1
    assert helped["logged"] == []
