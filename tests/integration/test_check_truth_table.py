"""The check truth table (tests/golden/check_truth_table.json) against real TLS servers.

Every server of the table runs on 127.0.0.1 for the whole module: Python ``ssl`` servers from
``sectigo_chain.testing.tls_servers`` on one loop thread, and ``openssl s_server`` processes. Each
scenario is checked over the network with the lab catalog, judged at the fixed instant ``AT``
around which the lab leaves are issued (one clock: the result does not depend on today's date).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from sectigo_chain.testing.lab import LabHierarchy, LabLeaf, make_certificate, new_key
from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop
from sectigo_chain.tls.check import check_endpoint, check_many, verdict_for
from sectigo_chain.tls.fetch import Target
from sectigo_chain.tls.report import ChainReport
from sectigo_chain.trust.profiles import Profile, load_profiles
from sectigo_chain.x509.certs import sha256_hex

pytestmark = pytest.mark.timeout(120)

TABLE_PATH = Path(__file__).resolve().parents[1] / "golden" / "check_truth_table.json"
TABLE: dict[str, Any] = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
SCENARIOS: dict[str, dict[str, Any]] = TABLE["scenarios"]
OPENSSL = "/usr/bin/openssl"
UTC = dt.timezone.utc
# One clock for the whole table: the leaves are issued around AT and every verdict is judged at
# AT, inside the lab CAs' fixed validity (AAA ends 2028-12-31, as the real one does), whatever
# today's date is.
AT = dt.datetime(2026, 6, 1, tzinfo=UTC)


class Material:
    """The certificates the table names, and the leaves' keys."""

    def __init__(self, lab: LabHierarchy) -> None:
        self.lab = lab
        self.leaf = lab.issue_leaf(["www.example.test", "sni.example.test"], at=AT)
        self.ecc_leaf = lab.issue_leaf(["www.example.test"], family="ECC", at=AT)
        now = AT
        expired = make_certificate(
            subject=lab.r46_root.cert.subject,
            public_key=lab.r46_root.key.public_key(),
            issuer=lab.usertrust_rsa.cert.subject,
            issuer_key=lab.usertrust_rsa.key,
            not_before=dt.datetime(2021, 3, 22, tzinfo=UTC),
            not_after=dt.datetime(2024, 1, 1, tzinfo=UTC),
            ca=True,
        )
        key = new_key("ECC")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unrelated Test CA")])
        unrelated = make_certificate(
            subject=name,
            public_key=key.public_key(),
            issuer=name,
            issuer_key=key,
            not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=365),
            ca=True,
        )
        self.certs: dict[str, x509.Certificate] = {
            "leaf": self.leaf.cert,
            "ecc_leaf": self.ecc_leaf.cert,
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

    def chain(self, names: list[str]) -> list[x509.Certificate]:
        return [self.certs[n] for n in names]

    def leaf_for(self, names: list[str]) -> LabLeaf:
        return self.ecc_leaf if names[0] == "ecc_leaf" else self.leaf


@contextmanager
def s_server(tmp: Path, chain: list[x509.Certificate], leaf: LabLeaf) -> Iterator[int]:
    """``openssl s_server`` serving ``chain`` (leaf first, the rest in this order)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "leaf.pem").write_bytes(chain[0].public_bytes(Encoding.PEM))
    (tmp / "chain.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain[1:]))
    (tmp / "key.pem").write_bytes(
        leaf.key.private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    log = tmp / "s_server.log"
    args = [OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-cert", str(tmp / "leaf.pem")]
    args += ["-cert_chain", str(tmp / "chain.pem"), "-key", str(tmp / "key.pem")]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
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
def material(lab: LabHierarchy) -> Material:
    return Material(lab)


@pytest.fixture(scope="module")
def servers(
    material: Material, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, int]]:
    """Every server of the table, by name -> port."""
    ports: dict[str, int] = {}
    with ExitStack() as stack:
        loop = stack.enter_context(ServerLoop())
        for name, spec in TABLE["servers"].items():
            chain = material.chain(spec["chain"])
            leaf = material.leaf_for(spec["chain"])
            if spec.get("engine") == "openssl":
                tmp = tmp_path_factory.mktemp(name)
                ports[name] = stack.enter_context(s_server(tmp, chain, leaf))
                continue
            sni = {
                host: (material.chain(names), material.leaf_for(names).key)
                for host, names in spec.get("sni", {}).items()
            }
            server = LoopbackTLSServer(
                chain,
                leaf.key,
                sni=sni,
                min_version=spec.get("min_version", "1.2"),
                max_version=spec.get("max_version", "1.3"),
                loop=loop,
            )
            stack.enter_context(server)
            ports[name] = server.port
        yield ports


@pytest.fixture(scope="module")
def profiles(lab: LabHierarchy) -> list[Profile]:
    aaa_only = Profile(
        name="aaa_only",
        description="a very old client: AAA Certificate Services only",
        anchors=(lab.aaa.cert,),
        catalog=lab.catalog,
    )
    return [*load_profiles(["legacy", "modern", "both"], catalog=lab.catalog), aaa_only]


def _expected_chain(material: Material, row: dict[str, Any]) -> list[str]:
    spec = TABLE["servers"][row["server"]]
    names = spec.get("sni", {}).get(row["servername"], spec["chain"])
    return [sha256_hex(c) for c in material.chain(names)]


def _check_row(
    report: ChainReport, row: dict[str, Any], material: Material, *, each_version: bool = False
) -> None:
    """``each_version``: one handshake per TLS version was asked for, so every version the
    server speaks is reported; else one negotiated handshake: the newest it speaks."""
    assert sorted((f.code, f.severity) for f in report.findings) == sorted(
        row["findings"].items()
    ), [str(f) for f in report.findings]
    assert [c.sha256 for c in report.served_chain] == _expected_chain(material, row)
    tls = row["tls"] if each_version else row["tls"][-1:]
    assert [v for v, r in report.tls_versions.items() if r.ok] == tls
    assert report.servername == (row["servername"] or None)
    assert report.hostname == (row["servername"] or None)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_truth_table(
    name: str, servers: dict[str, int], profiles: list[Profile], material: Material
) -> None:
    row = SCENARIOS[name]
    report = check_endpoint(
        "127.0.0.1",
        servers[row["server"]],
        servername=row["servername"],
        profiles=profiles,
        catalog=material.lab.catalog,
        timeout=10,
        at=AT,
        tls_versions=("1.2", "1.3"),
    )
    _check_row(report, row, material, each_version=True)
    assert set(report.profiles) == set(row["profiles"])
    for profile, expected in row["profiles"].items():
        result = report.profiles[profile]
        assert result.valid is expected["valid"], (profile, str(result))
        if "classification" in expected:
            assert result.classification == expected["classification"], (profile, str(result))
        if result.valid:
            assert result.anchor is not None
            assert result.path[0] == report.served_chain[0].sha256
        else:
            assert result.reason
    selections = {"default": ["legacy", "modern"], **{p: [p] for p in row["profiles"]}}
    for selection, expected_verdict in row["verdict"].items():
        chosen = [report.profiles[p] for p in selections[selection]]
        assert verdict_for(report.findings, chosen) == expected_verdict, selection
    worst = "fail" if not all(r.valid for r in report.profiles.values()) else None
    assert report.verdict == (worst or verdict_for(report.findings, []))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_default_profiles(name: str, servers: dict[str, int], material: Material) -> None:
    """No profile given: legacy and modern are selected, with the table's default verdict."""
    row = SCENARIOS[name]
    report = check_endpoint(
        "127.0.0.1",
        servers[row["server"]],
        servername=row["servername"],
        catalog=material.lab.catalog,
        timeout=10,
        at=AT,
    )
    assert list(report.profiles) == ["legacy", "modern"]
    assert report.verdict == row["verdict"]["default"]
    _check_row(report, row, material)
    doc = report.to_json()
    assert doc["verdict"] == row["verdict"]["default"]
    assert set(doc["profiles"]) == {"legacy", "modern"}


@pytest.mark.parametrize("each_version", [False, True])
def test_check_many_matches_single_checks(
    servers: dict[str, int], material: Material, each_version: bool
) -> None:
    """All scenarios at once (concurrently; each twice, so judgements are shared between
    targets serving the same chains) give the verdicts of the table, in order, with one
    negotiated handshake per target (the default) as with one per TLS version."""
    names = list(SCENARIOS) * 2
    targets = [
        Target("127.0.0.1", servers[SCENARIOS[n]["server"]], SCENARIOS[n]["servername"])
        for n in names
    ]
    versions = ("1.2", "1.3") if each_version else None
    results = check_many(
        targets,
        catalog=material.lab.catalog,
        timeout=10,
        concurrency=16,
        at=AT,
        tls_versions=versions,
    )
    assert [r.verdict for r in results] == [SCENARIOS[n]["verdict"]["default"] for n in names]
    for name, result in zip(names, results, strict=True):
        assert isinstance(result, ChainReport)
        _check_row(result, SCENARIOS[name], material, each_version=each_version)
        assert result.target.startswith(f"127.0.0.1:{servers[SCENARIOS[name]['server']]}")


def test_each_distinct_chain_is_validated_once_per_profile(
    servers: dict[str, int], material: Material, lab: LabHierarchy
) -> None:
    """Eight targets serving one chain for one name and two serving another: each profile's
    verifier runs once per distinct chain (plus the retries that explain the failing one)."""
    from cryptography.x509.verification import Store

    calls: dict[str, int] = {}

    class Counting(Profile):
        @property  # type: ignore[override]
        def store(self) -> Store:
            calls[self.name] = calls.get(self.name, 0) + 1
            return Store(list(self.anchors))

    legacy, modern = (
        Counting(name=p.name, description=p.description, anchors=p.anchors, catalog=p.catalog)
        for p in load_profiles(["legacy", "modern"], catalog=lab.catalog)
    )
    cross, short = servers["cross"], servers["short"]
    targets = [Target("127.0.0.1", cross, "www.example.test")] * 8
    targets += [Target("127.0.0.1", short, "www.example.test")] * 2
    results = check_many(targets, profiles=[legacy, modern], catalog=lab.catalog, timeout=10, at=AT)
    assert [r.verdict for r in results] == ["pass"] * 8 + ["fail"] * 2
    # modern validates both chains at once; legacy validates both, and the short chain's
    # failure is explained by one retry with the catalog's intermediates (it then validates)
    assert calls == {"modern": 2, "legacy": 3}
