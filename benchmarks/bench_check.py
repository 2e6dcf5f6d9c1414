"""Benchmark: ``sectigo-chain check`` against sslyze's certificate_info scan, same endpoints.

Run from the repository root (sslyze is AGPL: install it in a separate venv, never here)::

    python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install sslyze
    PYTHONPATH=. python benchmarks/bench_check.py --sslyze-python /work/bench-venv/bin/python
    PYTHONPATH=. python benchmarks/bench_check.py --sizes 50 --repeat 5    # SSLYZE_PYTHON env
    PYTHONPATH=. python benchmarks/bench_check.py --leaf-keys ec    # P-256 leaves only
    PYTHONPATH=. python benchmarks/bench_check.py --sslyze-python ... --write-docs  # the table
                                                        # in docs/performance.md is replaced

N loopback endpoints (default N = 50, 200) serve the scenarios of
``tests/golden/check_truth_table.json`` in turn (the Python-``ssl`` ones; each endpoint gets its
own leaf: ``--leaf-keys scenario`` RSA-2048, P-256 under E36; ``ec`` a P-256 key everywhere;
``both``, the default, runs the two one after the other) from a separate process, so each
tool's CPU time is its own. Every repetition runs each tool once, in turn (ours, sslyze, ours
CLI, sslyze CLI), so a change in the machine's load hits all of them alike; the median of the
repetitions is printed, with the 1-minute load average over each size's runs. For each N it
times:

* ours, API: ``check_many`` in this process (wall: ``perf_counter``; CPU: ``process_time``),
  every memo of the package cleared before each run unless ``--warm``;
* ours, fetch (``--breakdown``): ``tls.fetch_many`` alone, the handshakes without analysis;
* ours, CLI: ``python -m sectigo_chain check --targets-file ... --json`` as a child process
  (default flags: one handshake per endpoint; after one untimed run, so that its bytecode is
  compiled, as in an installed package: ``PYTHONDONTWRITEBYTECODE`` is dropped for it); from
  40 endpoints on its default does the handshakes in a helper process (which also judges a
  share once they are done);
* ours, 1 process (N >= 40): the same with ``--single-process``;
* sslyze, API: ``Scanner`` with ``CERTIFICATE_INFO`` in the sslyze venv (timed inside that
  process: imports and start-up excluded, like ours);
* sslyze, CLI: ``sslyze --certinfo --certinfo_ca_file ...`` as a child process.

Child CPU is ``resource.getrusage(RUSAGE_CHILDREN)`` (user + system) deltas. The servers count
the connections each endpoint accepted. "Findings" counts, per endpoint, what each tool flags:
ours = chain findings + profiles (legacy, modern) that fail; sslyze = the custom CA store
(the lab legacy roots) failing validation + invalid order + anchor sent + SHA-1 in the
verified chain. Without ``--sslyze-python``/``SSLYZE_PYTHON`` only our figures are printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[1]
TABLE = json.loads((REPO / "tests" / "golden" / "check_truth_table.json").read_text("utf-8"))
UTC = dt.timezone.utc

SSLYZE_RUNNER = r"""
import json, sys, time
from pathlib import Path
from sslyze import (Scanner, ServerNetworkLocation, ServerScanRequest, ScanCommand,
                    ScanCommandAttemptStatusEnum)
from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.scanner.models import ScanCommandsExtraArguments

spec = json.load(sys.stdin)
extra = ScanCommandsExtraArguments(
    certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(spec["ca_file"])))
requests = [ServerScanRequest(server_location=ServerNetworkLocation(name, port, "127.0.0.1"),
                              scan_commands={ScanCommand.CERTIFICATE_INFO},
                              scan_commands_extra_arguments=extra)
            for name, port in spec["targets"]]
wall0, cpu0 = time.perf_counter(), time.process_time()
scanner = Scanner(concurrent_server_scans_limit=spec.get("servers"))
scanner.queue_scans(requests)
by_port = {}
for result in scanner.get_results():
    port = result.server_location.port
    row = {"ok": False}
    attempt = result.scan_result.certificate_info if result.scan_result else None
    if attempt is not None and attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
        dep = attempt.result.certificate_deployments[0]
        ca = Path(spec["ca_file"])
        custom = [r for r in dep.path_validation_results if r.trust_store.path == ca]
        row = {"ok": True, "chain_len": len(dep.received_certificate_chain),
               "custom_valid": bool(custom and custom[0].was_validation_successful),
               "custom_error": custom[0].validation_error if custom else None,
               "order_ok": dep.received_chain_has_valid_order,
               "contains_anchor": dep.received_chain_contains_anchor_certificate,
               "sha1": dep.verified_chain_has_sha1_signature}
    by_port[port] = row
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
print(json.dumps({"wall": wall, "cpu": cpu,
                  "results": [by_port.get(port, {"ok": False}) for _, port in spec["targets"]]}))
"""


# --- endpoints --------------------------------------------------------------------------------


@dataclass
class Endpoint:
    scenario: str
    servername: str  # "" = no SNI
    chain_pem: bytes
    key_pem: bytes
    sni: dict[str, bytes] = field(default_factory=dict)  # name -> chain PEM (same key)
    min_version: str = "1.2"
    max_version: str = "1.3"


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def build_endpoints(n: int, lab: Any, leaf_keys: str = "scenario") -> list[Endpoint]:
    """N endpoints cycling through the truth table's Python-served scenarios, one leaf each.

    ``leaf_keys="scenario"``: an RSA-2048 leaf key under R36, a P-256 one under E36 (the
    scenario's family); ``"ec"``: a P-256 leaf key everywhere (same issuers and chains), which
    makes each server handshake far cheaper (an ECDSA signature instead of an RSA one)."""
    from sectigo_chain.testing.lab import make_certificate, new_key

    keys = {"RSA": new_key("RSA"), "ECC": new_key("ECC")}
    now = dt.datetime.now(UTC)
    expired = make_certificate(
        subject=lab.r46_root.cert.subject,
        public_key=lab.r46_root.key.public_key(),
        issuer=lab.usertrust_rsa.cert.subject,
        issuer_key=lab.usertrust_rsa.key,
        not_before=dt.datetime(2021, 3, 22, tzinfo=UTC),
        not_after=dt.datetime(2024, 1, 1, tzinfo=UTC),
        ca=True,
    )
    other = new_key("ECC")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unrelated Test CA")])
    unrelated = make_certificate(
        subject=name,
        public_key=other.public_key(),
        issuer=name,
        issuer_key=other,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=365),
        ca=True,
    )
    fixed = {
        "r36": lab.r36.cert,
        "e36": lab.e36.cert,
        "r46_cross": lab.r46_cross,
        "e46_cross": lab.e46_cross,
        "r46_self": lab.r46_root.cert,
        "usertrust_rsa": lab.usertrust_rsa.cert,
        "usertrust_rsa_cross_aaa": lab.usertrust_rsa_cross_aaa,
        "expired_r46_cross": expired,
        "unrelated_ca": unrelated,
    }
    rows = [
        (name, row)
        for name, row in TABLE["scenarios"].items()
        if TABLE["servers"][row["server"]].get("engine", "python") == "python"
    ]
    out = []
    for i in range(n):
        scenario, row = rows[i % len(rows)]
        spec = TABLE["servers"][row["server"]]
        family = "ECC" if spec["chain"][0] == "ecc_leaf" else "RSA"
        key = keys["ECC" if leaf_keys == "ec" else family]
        leaf = lab.issue_leaf(
            [f"ep{i}.example.test", "www.example.test", "sni.example.test"],
            family=family,
            key=key,
        )
        certs = {**fixed, "leaf": leaf.cert, "ecc_leaf": leaf.cert}
        out.append(
            Endpoint(
                scenario=scenario,
                servername=row["servername"],
                chain_pem=_pem([certs[c] for c in spec["chain"]]),
                key_pem=key.private_bytes(
                    Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
                sni={k: _pem([certs[c] for c in v]) for k, v in spec.get("sni", {}).items()},
                min_version=spec.get("min_version", "1.2"),
                max_version=spec.get("max_version", "1.3"),
            )
        )
    return out


def _serve(endpoints: list[Endpoint], conn: Connection) -> None:
    from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop

    def load(pem: bytes) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(pem)

    with ServerLoop() as loop:
        servers = []
        for ep in endpoints:
            key = serialization.load_pem_private_key(ep.key_pem, None)
            server = LoopbackTLSServer(
                load(ep.chain_pem),
                key,  # type: ignore[arg-type]
                sni={k: (load(v), key) for k, v in ep.sni.items()},  # type: ignore[misc]
                min_version=ep.min_version,
                max_version=ep.max_version,
                loop=loop,
            )
            server.start()
            servers.append(server)
        conn.send([s.port for s in servers])
        while conn.recv() == "stats":
            conn.send(([s.connections for s in servers], time.process_time()))
        for server in servers:
            server.close()


@dataclass
class Running:
    endpoints: list[Endpoint]
    ports: list[int]
    stats: Callable[[], tuple[int, float]]
    """(connections accepted by all endpoints so far, CPU seconds the servers used so far)"""


@contextmanager
def serving(endpoints: list[Endpoint]) -> Iterator[Running]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(endpoints, child), daemon=True)
    proc.start()
    try:
        ports: list[int] = parent.recv()

        def stats() -> tuple[int, float]:
            parent.send("stats")
            counts, cpu = parent.recv()
            return sum(counts), cpu

        yield Running(endpoints, ports, stats)
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()


# --- the runs ---------------------------------------------------------------------------------


@dataclass
class Measure:
    wall: float
    cpu: float
    connections: float  # per endpoint
    server_cpu: float  # CPU seconds the servers spent on this run
    findings: int | None = None
    detail: list[Any] = field(default_factory=list)


def _delta(run: Running, before: tuple[int, float]) -> tuple[float, float]:
    """(connections per endpoint, server CPU seconds) since ``before``."""
    connections, cpu = run.stats()
    return (connections - before[0]) / len(run.ports), cpu - before[1]


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_child(
    cmd: list[str], **kw: Any
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    cpu0, wall0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    return time.perf_counter() - wall0, _child_cpu() - cpu0, proc


def cold_caches() -> None:
    """Forget what earlier runs memoised (parsed certificates, certificate facts, summaries,
    the catalog), as a new process would; imports stay loaded, as they do for the sslyze API
    run (timed inside its process). Every memo in the package has ``cache_clear``."""
    for name, module in list(sys.modules.items()):
        if name != "sectigo_chain" and not name.startswith("sectigo_chain."):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and not isinstance(value, type):
                clear()


def ours_api(run: Running, catalog: Any, profiles: list[str], *, warm: bool = False) -> Measure:
    """``check_many`` in this process; profiles are loaded inside the timed call (by name)."""
    from sectigo_chain.tls.check import ChainReport, check_many
    from sectigo_chain.tls.fetch import NO_SNI, Target

    if not warm:
        cold_caches()

    targets = [
        Target("127.0.0.1", p, ep.servername or NO_SNI)
        for ep, p in zip(run.endpoints, run.ports, strict=True)
    ]
    before = run.stats()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = check_many(targets, profiles=profiles, catalog=catalog, timeout=30)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    conns, server = _delta(run, before)
    findings = 0
    for r in results:
        if not isinstance(r, ChainReport):
            raise SystemExit(f"our check failed on a benchmark endpoint: {r}")
        findings += len(r.findings) + sum(not p.valid for p in r.profiles.values())
    return Measure(wall, cpu, conns, server, findings, list(results))


def ours_fetch(run: Running) -> Measure:
    """Only the handshakes: ``tls.fetch_many`` (the share of ``check`` that OpenSSL bounds)."""
    from sectigo_chain.tls.fetch import NO_SNI, FetchResult, Target, fetch_many

    cold_caches()
    targets = [
        Target("127.0.0.1", p, ep.servername or NO_SNI)
        for ep, p in zip(run.endpoints, run.ports, strict=True)
    ]
    before = run.stats()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = fetch_many(targets, timeout=30)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if not all(isinstance(r, FetchResult) for r in results):
        raise SystemExit("our fetch failed on a benchmark endpoint")
    return Measure(wall, cpu, *_delta(run, before))


def ours_cli(
    run: Running,
    workdir: Path,
    profile_args: list[str],
    repo: Path = REPO,
    label: str = "",
    extra: tuple[str, ...] = (),
) -> Measure:
    listing = workdir / f"targets{label}.txt"
    listing.write_text(
        "".join(
            f"127.0.0.1:{p} {ep.servername}\n"
            for ep, p in zip(run.endpoints, run.ports, strict=True)
        ),
        encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "sectigo_chain", "check", "--targets-file", str(listing)]
    # An installed package has its bytecode compiled (as sslyze's has in its venv): without
    # PYTHONDONTWRITEBYTECODE the warm-up run writes what is stale, and no run compiles.
    env = {**os.environ, "PYTHONPATH": str(repo)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = run.stats()
    # cwd too: ``python -m`` puts the working directory before PYTHONPATH on sys.path
    wall, cpu, proc = _timed_child([*cmd, "--json", *profile_args, *extra], env=env, cwd=repo)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"sectigo-chain check exited {proc.returncode}: {proc.stderr[-500:]}")
    return Measure(wall, cpu, *_delta(run, before))


def _bare_handshakes(run: Running, library: str) -> float:
    """Client CPU of one blocking handshake per endpoint with the TLS library alone (no
    verification, no parsing): what OpenSSL and the kernel cost, the floor under our engine.
    ``library``: ``pyopenssl`` (the OpenSSL our engine uses, from cryptography's wheel) or
    ``ssl`` (Python's own, for comparison)."""
    import socket
    import ssl

    from OpenSSL import SSL

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    from sectigo_chain.tls.fetch import GROUPS, _set_groups

    pyo = SSL.Context(SSL.TLS_CLIENT_METHOD)
    _set_groups(pyo, GROUPS)  # the engine's ClientHello: one X25519 key share
    cpu0 = time.process_time()
    for ep, port in zip(run.endpoints, run.ports, strict=True):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if library == "ssl":
                with context.wrap_socket(sock, server_hostname=ep.servername or None):
                    pass
                continue
            conn = SSL.Connection(pyo, sock)
            if ep.servername:
                conn.set_tlsext_host_name(ep.servername.encode("idna"))
            conn.set_connect_state()
            conn.do_handshake()
            conn.get_peer_cert_chain()
    return time.process_time() - cpu0


def budget(run: Running, catalog: Any, profiles: list[str], repeat: int) -> list[str]:
    """Where the client CPU of ``check`` goes, per endpoint (medians of ``repeat`` cold runs).

    Rows: bare handshakes (pyOpenSSL alone, as the engine uses it); ``fetch_many`` (one
    negotiated handshake per endpoint, the engine, parsing and checking the served
    certificates); ``check_many`` (the same plus the analysis), of which the CPU spent inside
    cryptography's X.509 verifier (``trust.profiles._verify``, timed by wrapping it: a
    measurement, not a change); what the CLI adds for ``--json`` (``to_json`` and
    ``json.dumps(indent=2)``); and, for comparison, the bare handshake with Python's ``ssl``.
    """
    import sectigo_chain.trust.profiles as profiles_module
    from sectigo_chain.tls.check import check_many
    from sectigo_chain.tls.fetch import NO_SNI, Target, fetch_many

    targets = [
        Target("127.0.0.1", p, ep.servername or NO_SNI)
        for ep, p in zip(run.endpoints, run.ports, strict=True)
    ]
    inner = profiles_module._verify
    spent = [0.0]

    def timed_verify(*args: Any, **kwargs: Any) -> Any:
        cpu0 = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - cpu0

    rows: dict[str, list[float]] = {}
    profiles_module._verify = timed_verify  # type: ignore[assignment]
    try:
        for _ in range(repeat):
            rows.setdefault("bare", []).append(_bare_handshakes(run, "pyopenssl"))
            rows.setdefault("stdlib", []).append(_bare_handshakes(run, "ssl"))
            cold_caches()
            cpu0 = time.process_time()
            fetch_many(targets, tls_versions=None, timeout=30)
            rows.setdefault("fetch", []).append(time.process_time() - cpu0)
            cold_caches()
            spent[0] = 0.0
            cpu0 = time.process_time()
            results = check_many(targets, profiles=profiles, catalog=catalog, timeout=30)
            rows.setdefault("check", []).append(time.process_time() - cpu0)
            rows.setdefault("verify", []).append(spent[0])
            cpu0 = time.process_time()
            json.dumps({"targets": [r.to_json() for r in results]}, indent=2, default=str)
            rows.setdefault("json", []).append(time.process_time() - cpu0)
    finally:
        profiles_module._verify = inner  # type: ignore[assignment]
    n = len(targets)
    ms = {k: 1000 * statistics.median(v) / n for k, v in rows.items()}
    parts = [
        ("OpenSSL handshake (bare pyOpenSSL client, C + kernel)", ms["bare"]),
        ("our engine and certificate parsing (fetch - bare)", ms["fetch"] - ms["bare"]),
        ("cryptography's X.509 verifier (Rust)", ms["verify"]),
        (
            "the rest of the analysis (check - fetch - verifier)",
            ms["check"] - ms["fetch"] - ms["verify"],
        ),
        ("`--json` output (CLI only)", ms["json"]),
    ]
    total = sum(v for _, v in parts)
    out = ["|    N | part | cpu ms/ep | share |", "|---|---|---|---|"]
    out += [f"| {n:4d} | {name} | {v:.3f} | {100 * v / total:.0f} % |" for name, v in parts]
    out.append(f"| {n:4d} | total | {total:.3f} | |")
    stdlib = "the same bare handshake with Python's `ssl` (not used; for comparison)"
    out.append(f"| {n:4d} | {stdlib} | {ms['stdlib']:.3f} | |")
    return out


def _sslyze_findings(row: dict[str, Any]) -> int:
    if not row.get("ok"):
        return 0
    return (
        (not row["custom_valid"])
        + (row["order_ok"] is False)
        + bool(row["contains_anchor"])
        + bool(row["sha1"])
    )


def sslyze_api(run: Running, python: str, ca_file: Path, servers: int | None = None) -> Measure:
    spec = {
        "ca_file": str(ca_file),
        "servers": servers,
        "targets": [
            [ep.servername or "127.0.0.1", p]
            for ep, p in zip(run.endpoints, run.ports, strict=True)
        ],
    }
    before = run.stats()
    proc = subprocess.run(
        [python, "-c", SSLYZE_RUNNER],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"sslyze runner failed: {proc.stderr[-1500:]}")
    doc = json.loads(proc.stdout)
    conns, server = _delta(run, before)
    rows = doc["results"]
    findings = sum(_sslyze_findings(r) for r in rows)
    return Measure(doc["wall"], doc["cpu"], conns, server, findings, rows)


def sslyze_cli(run: Running, python: str, ca_file: Path, workdir: Path) -> Measure:
    exe = str(Path(python).with_name("sslyze"))
    targets = [
        f"{ep.servername or '127.0.0.1'}:{p}{{127.0.0.1}}"
        for ep, p in zip(run.endpoints, run.ports, strict=True)
    ]
    out = workdir / "sslyze.json"
    cmd = [exe, "--certinfo", f"--certinfo_ca_file={ca_file}", f"--json_out={out}", "--quiet"]
    before = run.stats()
    wall, cpu, proc = _timed_child([*cmd, *targets])
    if proc.returncode != 0:
        raise SystemExit(f"sslyze exited {proc.returncode}: {proc.stderr[-1500:]}")
    return Measure(wall, cpu, *_delta(run, before))


# --- report -----------------------------------------------------------------------------------


def _median(measures: list[Measure]) -> Measure:
    return Measure(
        statistics.median(m.wall for m in measures),
        statistics.median(m.cpu for m in measures),
        statistics.mean(m.connections for m in measures),
        statistics.median(m.server_cpu for m in measures),
        measures[-1].findings,
        measures[-1].detail,
    )


def _row(n: int, tool: str, m: Measure, ours: Measure | None, load: str) -> str:
    """One table row; on a baseline row, ``ours`` gives how many times faster ours is."""
    ratio = f"{m.wall / ours.wall:>6.1f}x" if ours is not None else f"{'':>7}"
    found = "-" if m.findings is None else str(m.findings)
    per = 1000 * m.cpu / n
    return (
        f"| {n:>4} | {tool:<14} | {m.wall:>8.3f} | {m.cpu:>7.3f} | {per:>9.2f} "
        f"| {m.server_cpu:>7.3f} | {m.connections:>5.2f} | {found:>8} | {ratio} | {load:>7} |"
    )


def scenario_table(ours: Measure, theirs: Measure | None, endpoints: list[Endpoint]) -> None:
    print("\nPer scenario (first endpoint of each): what each tool reports")
    print("| scenario | ours: verdict, findings, failing profiles | sslyze: custom store, flags |")
    print("|---|---|---|")  # (not written into the docs: it changes only with the code)
    seen: set[str] = set()
    for i, ep in enumerate(endpoints):
        if ep.scenario in seen:
            continue
        seen.add(ep.scenario)
        report = ours.detail[i]
        codes = ", ".join(f.code for f in report.findings) or "none"
        failing = ", ".join(n for n, p in report.profiles.items() if not p.valid) or "none"
        mine = f"{report.verdict}; {codes}; fails: {failing}"
        other = "-"
        if theirs is not None:
            row = theirs.detail[i]
            if not row.get("ok"):
                other = "scan failed"
            else:
                flags = [
                    "order invalid" if row["order_ok"] is False else "",
                    "anchor sent" if row["contains_anchor"] else "",
                    "SHA-1" if row["sha1"] else "",
                ]
                state = "valid" if row["custom_valid"] else f"invalid ({_short(row)})"
                other = "; ".join([state, *[f for f in flags if f]])
        print(f"| {ep.scenario} | {mine} | {other} |")


def _short(row: dict[str, Any]) -> str:
    """sslyze's validation error without its boilerplate."""
    text = str(row.get("custom_error") or "")
    text = text.replace("validation failed: ", "").replace("candidates exhausted: ", "")
    return text.split(" (encountered")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and size (median)")
    parser.add_argument("--sslyze-python", default=os.environ.get("SSLYZE_PYTHON"))
    parser.add_argument("--no-cli", action="store_true", help="skip the two CLI runs")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="keep our memoised certificate facts between runs (repeated checks of one fleet)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time our handshakes alone (tls.fetch_many, no analysis): 'ours fetch'",
    )
    parser.add_argument(
        "--leaf-keys",
        choices=("scenario", "ec", "both"),
        default="both",
        help="scenario: RSA-2048 leaves, P-256 under E36; ec: P-256 leaves everywhere; "
        "both (default): the two in turn",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="also time the CLI of another tree (e.g. `git worktree add DIR <commit>`): "
        "'before CLI', in the same alternation",
    )
    parser.add_argument(
        "--budget",
        action="store_true",
        help="also print where our client CPU goes per endpoint: bare OpenSSL handshakes, "
        "engine and parsing, cryptography's verifier, the rest of the analysis, --json",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="replace the generated table in docs/performance.md with this run's",
    )
    parser.add_argument(
        "--sslyze-servers",
        type=int,
        metavar="K",
        help="also time sslyze's API scanning K servers at once (its default is 10)",
    )
    args = parser.parse_args(argv)

    from sectigo_chain.cli.commands.check import HELPER_MIN_TARGETS
    from sectigo_chain.testing.lab import default_lab

    lab = default_lab()
    profiles = ["legacy", "modern"]
    sslyze = args.sslyze_python
    if sslyze and not Path(sslyze).exists():
        parser.error(f"--sslyze-python {sslyze} does not exist")
    kinds = ["scenario", "ec"] if args.leaf_keys == "both" else [args.leaf_keys]
    warm = args.warm
    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    load0 = _load()
    caches = "warm" if args.warm else "cold"
    say(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.repeat} runs "
        f"(tools alternating), {caches} caches"
    )
    if not sslyze:
        say("sslyze baseline skipped: pass --sslyze-python PATH or set SSLYZE_PYTHON")
    goals = {50: 10.0, 200: 15.0}
    verdicts: list[str] = []
    last: tuple[Measure, Measure | None, list[Endpoint]] | None = None
    budgets: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        work = Path(tmp)
        ca_file = work / "lab-legacy.pem"
        ca_file.write_bytes(_pem([lab.usertrust_rsa.cert, lab.usertrust_ecc.cert]))
        modern = work / "lab-modern.pem"
        modern.write_bytes(_pem([lab.r46_root.cert, lab.e46_root.cert]))
        profile_args = ["--profile", f"lab-legacy={ca_file}", "--profile", f"lab-modern={modern}"]
        for kind in kinds:
            label = "RSA-2048 leaves (P-256 under E36)" if kind == "scenario" else "P-256 leaves"
            say(f"\n**{label}**\n")
            say(HEADER)
            say("|" + "|".join("-" * len(c) for c in HEADER.split("|")[1:-1]) + "|")
            for n in args.sizes:
                endpoints = build_endpoints(n, lab, kind)
                runs: dict[str, list[Measure]] = {}
                loads: list[float] = []
                with serving(endpoints) as run:
                    ours_api(run, lab.catalog, profiles)  # warm-up: imports, caches
                    if not args.no_cli:
                        ours_cli(run, work, profile_args)  # warm-up: bytecode, file cache
                        if args.before:
                            ours_cli(run, work, profile_args, args.before, "-before")
                    for _ in range(args.repeat):
                        loads.append(os.getloadavg()[0])
                        turn: list[tuple[str, Callable[[], Measure]]] = [
                            ("ours API", partial(ours_api, run, lab.catalog, profiles, warm=warm))
                        ]
                        if args.breakdown:
                            turn.append(("ours fetch", partial(ours_fetch, run)))
                        if sslyze:
                            turn.append(("sslyze API", partial(sslyze_api, run, sslyze, ca_file)))
                            if k := args.sslyze_servers:
                                tuned = partial(sslyze_api, run, sslyze, ca_file, k)
                                turn.append((f"sslyze API {k}", tuned))
                        if not args.no_cli:
                            turn.append(("ours CLI", partial(ours_cli, run, work, profile_args)))
                            if n >= HELPER_MIN_TARGETS:  # the default used a helper process
                                alone = partial(
                                    ours_cli, run, work, profile_args, extra=("--single-process",)
                                )
                                turn.append(("ours 1 process", alone))
                            if args.before:
                                old = partial(
                                    ours_cli, run, work, profile_args, args.before, "-before"
                                )
                                turn.append(("before CLI", old))
                            if sslyze:
                                theirs = partial(sslyze_cli, run, sslyze, ca_file, work)
                                turn.append(("sslyze CLI", theirs))
                        for name, measure in turn:
                            runs.setdefault(name, []).append(measure())
                    if args.budget:
                        budgets.append(budget(run, lab.catalog, profiles, args.repeat))
                    loads.append(os.getloadavg()[0])
                med = {name: _median(ms) for name, ms in runs.items()}
                load = f"{min(loads):.1f}-{max(loads):.1f}"
                for name, m in med.items():
                    ours = None
                    if name.startswith("sslyze") or name in ("before CLI", "ours 1 process"):
                        cli = name in ("sslyze CLI", "before CLI", "ours 1 process")
                        ours = med["ours CLI"] if cli else med["ours API"]
                    say(_row(n, name, m, ours, load))
                if "sslyze CLI" in med and "ours CLI" in med and n in goals:
                    mine, theirs = med["ours CLI"], med["sslyze CLI"]
                    ratio = theirs.wall / mine.wall
                    met = "met" if ratio >= goals[n] else "NOT met"
                    # CPU of client and servers: steadier than wall time on a loaded machine
                    cpu = (theirs.cpu + theirs.server_cpu) / (mine.cpu + mine.server_cpu)
                    verdicts.append(
                        f"{label}, N = {n}: CLI {ratio:.1f}x sslyze CLI in wall time "
                        f"(goal {goals[n]:.0f}x: {met}; load {load}); {cpu:.1f}x less CPU "
                        "(client + servers)"
                    )
                last = (med["ours API"], med.get("sslyze API"), endpoints)
            if budgets:
                say(f"\nWhere the client CPU of `check` goes ({label}, medians, cold caches):\n")
                say(budgets[0][0])
                say(budgets[0][1])
                for rows in budgets:
                    for line in rows[2:]:
                        say(line)
                budgets.clear()
        if last is not None:
            scenario_table(*last)
    say()
    for line in verdicts:
        say(f"- {line}")
    say(f"\nload average at the start: {load0}, at the end: {_load()}")
    if args.write_docs:
        _write_docs("\n".join(out))
    return 0 if all("NOT met" not in v for v in verdicts) else 1


HEADER = (
    "|    N | tool           |   wall s |   cpu s | cpu ms/ep | srv cpu | hs/ep | findings "
    "| ours is | load 1m |"
)
_DOCS = REPO / "docs" / "performance.md"
_BEGIN, _END = "<!-- bench_check: begin -->", "<!-- bench_check: end -->"


def _write_docs(text: str) -> None:
    """Put ``text`` between the two markers of docs/performance.md."""
    doc = _DOCS.read_text(encoding="utf-8")
    head, begin, rest = doc.partition(_BEGIN)
    _, end, tail = rest.partition(_END)
    if not begin or not end:
        raise SystemExit(f"{_DOCS} lacks the markers {_BEGIN} ... {_END}")
    _DOCS.write_text(f"{head}{_BEGIN}\n\n{text}\n\n{_END}{tail}", encoding="utf-8")
    print(f"written into {_DOCS}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
