"""Benchmark: fetch the served chain of N loopback TLS endpoints with ``tls.fetch_many``.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_fetch.py                  # N = 1, 10, 50, 200
    PYTHONPATH=. python benchmarks/bench_fetch.py --sizes 50 200 --repeat 5 --concurrency 32

The servers (``sectigo_chain.testing.tls_servers``, one selector thread) run in a separate
process so
the client's CPU time (``time.process_time``) is the client's own. Each endpoint serves
leaf -> intermediate (RSA-2048 by default, ``--key ec`` for P-256). Connections per endpoint
are counted by the servers. Reuse: ``loopback_endpoints(n)`` starts the servers for any other
client (sslyze, for instance) and reports the connections each endpoint accepted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop
from sectigo_chain.tls.fetch import FetchResult, Target, fetch_many

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _key(kind: str) -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def make_chain(kind: str = "rsa") -> tuple[list[x509.Certificate], Key]:
    """(leaf, intermediate) and the leaf key; the root stays private to this function."""
    now = dt.datetime.now(dt.timezone.utc)
    keys = [_key(kind) for _ in range(3)]
    certs: list[x509.Certificate] = []
    for i, name in enumerate(["Bench Root", "Bench Intermediate", "localhost"]):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(certs[-1].subject if certs else subject)
            .public_key(keys[i].public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=i < 2, path_length=None), critical=True)
        )
        certs.append(builder.sign(keys[max(i - 1, 0)], hashes.SHA256()))
    return [certs[2], certs[1]], keys[2]


def _serve(n: int, kind: str, conn: Connection) -> None:
    chain, key = make_chain(kind)
    with ServerLoop() as loop:
        servers = [LoopbackTLSServer(chain, key, loop=loop) for _ in range(n)]
        for server in servers:
            server.start()
        conn.send([s.port for s in servers])
        while conn.recv() == "stats":
            conn.send([s.connections for s in servers])
        for server in servers:
            server.close()


@dataclass
class Endpoints:
    ports: list[int]
    connections: Callable[[], list[int]]
    """Connections each endpoint accepted so far."""

    @property
    def targets(self) -> list[Target]:
        return [Target("127.0.0.1", p) for p in self.ports]


@contextmanager
def loopback_endpoints(n: int, *, key: str = "rsa") -> Iterator[Endpoints]:
    """Start ``n`` loopback TLS endpoints in a child process for the duration of the block."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(n, key, child), daemon=True)
    proc.start()
    try:
        ports = parent.recv()

        def connections() -> list[int]:
            parent.send("stats")
            counts: list[int] = parent.recv()
            return counts

        yield Endpoints(ports, connections)
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def bench(n: int, *, repeat: int, concurrency: int, key: str, versions: tuple[str, ...]) -> str:
    with loopback_endpoints(n, key=key) as endpoints:
        fetch_many(endpoints.targets[:1], tls_versions=versions)  # warm up imports and caches
        before = sum(endpoints.connections())
        walls, cpus, failures = [], [], 0
        for _ in range(repeat):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            results = fetch_many(endpoints.targets, tls_versions=versions, concurrency=concurrency)
            walls.append(time.perf_counter() - wall0)
            cpus.append(time.process_time() - cpu0)
            failures += sum(
                not isinstance(r, FetchResult) or len(r.handshakes) != len(versions)
                for r in results
            )
        per_endpoint = (sum(endpoints.connections()) - before) / (n * repeat)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return (
        f"{n:>5} {wall:>9.3f} {min(walls):>9.3f} {cpu:>8.3f} {n * len(versions) / wall:>9.0f}"
        f" {per_endpoint:>8.1f} {failures:>8}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 200])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--key", choices=["rsa", "ec"], default="rsa")
    parser.add_argument("--versions", nargs="+", default=["1.2", "1.3"])
    args = parser.parse_args(argv)
    python = sys.version.split()[0]
    print(
        f"fetch_many, {args.key} chain, TLS {'+'.join(args.versions)},"
        f" concurrency {args.concurrency}, median of {args.repeat} runs (Python {python})"
    )
    header = ("N", "wall s", "best s", "cpu s", "hs/s", "conn/ep", "failed")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (5, 9, 9, 8, 9, 8, 8), strict=True)))
    for n in args.sizes:
        line = bench(
            n,
            repeat=args.repeat,
            concurrency=args.concurrency,
            key=args.key,
            versions=tuple(args.versions),
        )
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
