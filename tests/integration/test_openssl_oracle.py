"""The standing oracle: the library's OpenSSL-builder profiles against the real OpenSSL.

A generated matrix of lab chains shaped like Sectigo's (short, with the cross-sign, the
self-signed R46/E46 before or after the cross-sign, wrong orders, an expired cross-sign, extra
and unrelated certificates) x trust stores x host names is judged three ways:

* by the library's OpenSSL-builder profile (:func:`sectigo_chain.trust.profiles.validate`) and
  its emulation's first error (:func:`sectigo_chain.x509.builders.openssl_verify`);
* by ``/usr/bin/openssl verify -no-CApath -no-CAstore -attime T -CAfile STORE -purpose sslserver
  -verify_hostname NAME -untrusted REST LEAF`` (a real subprocess: without ``-no-CApath
  -no-CAstore`` OpenSSL would read the system store and the comparison would be void);
* for the backtracking profiles, by ``cryptography``'s ``PolicyBuilder`` verifier directly.

A second test hands a subset to Python's ``ssl`` (a real TLS handshake over memory BIOs): it
cannot be given a validation time, so there the leaves are issued at the instant the test reads
the clock once, and ``openssl verify -attime`` and the library are given that same instant.

Every cell must agree; the sizes and counts are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from sectigo_chain.testing.lab import LabHierarchy, LabLeaf, make_certificate, new_key
from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop
from sectigo_chain.tls.check import check_endpoint
from sectigo_chain.trust.profiles import Profile, validate
from sectigo_chain.x509.builders import openssl_verify

pytestmark = pytest.mark.timeout(240)

OPENSSL = "/usr/bin/openssl"
UTC = dt.timezone.utc
# One clock for the matrix: the leaves are issued around AT and every judge is given AT (inside
# the lab CAs' fixed validity; AAA ends 2028-12-31), whatever today's date is.
AT = dt.datetime(2026, 6, 1, tzinfo=UTC)
NAME = "www.example.test"
OTHER = "other.example.test"
_ERROR = re.compile(r"error (\d+) at (\d+) depth")


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _self_signed_ca(cn: str, at: dt.datetime) -> x509.Certificate:
    key = new_key("ECC")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return make_certificate(
        subject=name,
        public_key=key.public_key(),
        issuer=name,
        issuer_key=key,
        not_before=at - dt.timedelta(days=1),
        not_after=at + dt.timedelta(days=3650),
        ca=True,
    )


def _ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


class Pieces:
    """The certificates of one family (RSA: R36/R46, ECC: E36/E46) the variants combine."""

    def __init__(self, lab: LabHierarchy, family: str, at: dt.datetime) -> None:
        fam = "RSA" if family == "RSA" else "ECC"
        self.leaf: LabLeaf = lab.issue_leaf([NAME], family=fam, at=at)  # type: ignore[arg-type]
        self.expired_leaf = lab.issue_leaf(
            [NAME],
            family=fam,  # type: ignore[arg-type]
            not_before=at - dt.timedelta(days=200),
            not_after=at - dt.timedelta(days=100),
        )
        root = lab.self_signed_root(fam)  # type: ignore[arg-type]
        usertrust = lab.usertrust(fam)  # type: ignore[arg-type]
        self.issuing = lab.issuing_ca(fam).cert  # type: ignore[arg-type]
        self.other_issuing = lab.issuing_ca("ECC" if fam == "RSA" else "RSA").cert
        self.cross = lab.cross(fam)  # type: ignore[arg-type]
        self.self_signed = root.cert
        self.usertrust = usertrust.cert
        self.usertrust_via_aaa = (
            lab.usertrust_rsa_cross_aaa if fam == "RSA" else lab.usertrust_ecc_cross_aaa
        )
        self.aaa = lab.aaa.cert
        # the cross-sign's subject and key, issued by USERTrust, expired before AT
        self.expired_cross = make_certificate(
            subject=root.cert.subject,
            public_key=root.key.public_key(),
            issuer=usertrust.cert.subject,
            issuer_key=usertrust.key,
            not_before=dt.datetime(2021, 3, 22, tzinfo=UTC),
            not_after=dt.datetime(2024, 1, 1, tzinfo=UTC),
            ca=True,
            issuer_ski=_ski(usertrust.cert),
        )
        # a self-signed certificate with the R46/E46 name but another key
        key = new_key(fam)  # type: ignore[arg-type]
        self.impostor = make_certificate(
            subject=root.cert.subject,
            public_key=key.public_key(),
            issuer=root.cert.subject,
            issuer_key=key,
            not_before=dt.datetime(2021, 3, 22, tzinfo=UTC),
            not_after=dt.datetime(2046, 3, 21, tzinfo=UTC),
            ca=True,
        )

    def variants(self, unrelated: x509.Certificate) -> dict[str, list[x509.Certificate]]:
        leaf, ca, x, s = self.leaf.cert, self.issuing, self.cross, self.self_signed
        xx, ut, uta, aaa = self.expired_cross, self.usertrust, self.usertrust_via_aaa, self.aaa
        return {
            "leaf_only": [leaf],
            "short": [leaf, ca],
            "cross": [leaf, ca, x],
            "self_signed": [leaf, ca, s],
            "cross_then_self": [leaf, ca, x, s],
            "self_then_cross": [leaf, ca, s, x],
            "self_cross_issuing": [leaf, s, x, ca],
            "cross_self_issuing": [leaf, x, s, ca],
            "wrong_order": [leaf, x, ca],
            "with_root": [leaf, ca, x, ut],
            "root_before_cross": [leaf, ca, ut, x],
            "via_aaa": [leaf, ca, x, uta],
            "via_aaa_with_root": [leaf, ca, x, uta, aaa],
            "expired_cross": [leaf, ca, xx],
            "expired_cross_then_self": [leaf, ca, xx, s],
            "self_then_expired_cross": [leaf, ca, s, xx],
            "expired_then_good_cross": [leaf, ca, xx, x],
            "good_then_expired_cross": [leaf, ca, x, xx],
            "extra_unrelated": [leaf, ca, x, unrelated],
            "unrelated_first": [leaf, unrelated, ca, x],
            "other_family_extra": [leaf, ca, x, self.other_issuing],
            "duplicate": [leaf, ca, ca, x],
            "impostor_root": [leaf, ca, self.impostor, x],
            "expired_leaf": [self.expired_leaf.cert, ca, x],
        }


def _stores(lab: LabHierarchy, unrelated: x509.Certificate) -> dict[str, list[x509.Certificate]]:
    return {
        "legacy": [lab.usertrust_rsa.cert, lab.usertrust_ecc.cert],
        "legacy+aaa": [lab.usertrust_rsa.cert, lab.usertrust_ecc.cert, lab.aaa.cert],
        "modern": [lab.r46_root.cert, lab.e46_root.cert],
        "both": [lab.usertrust_rsa.cert, lab.usertrust_ecc.cert, lab.r46_root.cert,
                 lab.e46_root.cert],
        "aaa_only": [lab.aaa.cert],
        "usertrust_rsa_only": [lab.usertrust_rsa.cert],
        "unrelated_only": [unrelated],
    }  # fmt: skip


@dataclass(frozen=True)
class Cell:
    chain_name: str
    store: str
    hostname: str


class Files:
    """PEM files for ``openssl verify``: one per store, leaf and rest per chain."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._n = 0

    def write(self, certs: list[x509.Certificate]) -> Path:
        self._n += 1
        path = self.folder / f"f{self._n}.pem"
        path.write_bytes(_pem(certs))
        return path


def _openssl(at: dt.datetime, store: Path, leaf: Path, rest: Path | None, hostname: str) -> int:
    """The first error ``openssl verify`` reports (0: OK)."""
    cmd = [OPENSSL, "verify", "-no-CApath", "-no-CAstore", "-attime", str(int(at.timestamp()))]
    cmd += ["-CAfile", str(store), "-purpose", "sslserver", "-verify_hostname", hostname]
    if rest is not None:
        cmd += ["-untrusted", str(rest)]
    cmd.append(str(leaf))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    found = _ERROR.search(done.stderr + done.stdout)
    if done.returncode == 0:
        assert found is None, done.stderr
        return 0
    assert found is not None, f"openssl verify failed without an error line: {done.stderr}"
    return int(found.group(1))


def _matrix(
    lab: LabHierarchy, at: dt.datetime
) -> tuple[dict[str, list[x509.Certificate]], dict[str, list[x509.Certificate]]]:
    unrelated = _self_signed_ca("Unrelated Test CA", at)
    chains: dict[str, list[x509.Certificate]] = {}
    for family in ("RSA", "ECC"):
        for name, chain in Pieces(lab, family, at).variants(unrelated).items():
            chains[f"{family}/{name}"] = chain
    return chains, _stores(lab, unrelated)


def _library_openssl(
    chain: list[x509.Certificate], store: list[x509.Certificate], at: dt.datetime, host: str
) -> tuple[bool, int]:
    profile = Profile(name="openssl-oracle", description="oracle store", anchors=tuple(store))
    assert profile.builder == "openssl"
    verdict = validate(chain, profile, at=at, hostname=host).valid
    emulated = openssl_verify(chain[0], chain[1:], store, at=at, hostname=host).error
    return verdict, emulated


@pytest.fixture(scope="module")
def oracle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oracle")


def _cells(
    chains: dict[str, list[x509.Certificate]], stores: dict[str, list[x509.Certificate]],
    hostnames: tuple[str, ...],
) -> Iterator[Cell]:  # fmt: skip
    for chain_name in chains:
        for store in stores:
            for hostname in hostnames:
                yield Cell(chain_name, store, hostname)


def test_openssl_builder_profile_agrees_with_openssl_verify(
    lab: LabHierarchy, oracle_dir: Path
) -> None:
    chains, stores = _matrix(lab, AT)
    files = Files(oracle_dir)
    store_files = {name: files.write(certs) for name, certs in stores.items()}
    chain_files = {
        name: (files.write(chain[:1]), files.write(chain[1:]) if len(chain) > 1 else None)
        for name, chain in chains.items()
    }
    cells = list(_cells(chains, stores, (NAME, OTHER)))

    def real(cell: Cell) -> int:
        leaf, rest = chain_files[cell.chain_name]
        return _openssl(AT, store_files[cell.store], leaf, rest, cell.hostname)

    with ThreadPoolExecutor(max_workers=2) as pool:
        truth = list(pool.map(real, cells))
    disagree: list[str] = []
    codes_agree = 0
    for cell, code in zip(cells, truth, strict=True):
        chain, store = chains[cell.chain_name], stores[cell.store]
        verdict, emulated = _library_openssl(chain, store, AT, cell.hostname)
        if verdict != (code == 0):
            disagree.append(f"{cell}: openssl {code}, library valid={verdict}")
        codes_agree += emulated == code
        if emulated != code:
            disagree.append(f"{cell}: openssl error {code}, emulation error {emulated}")
    valid = sum(code == 0 for code in truth)
    print(
        f"\nOpenSSL oracle: {len(cells)} cells ({len(chains)} chains x {len(stores)} stores x 2 "
        f"names), {len(cells) - len(disagree)} verdicts agree, {codes_agree} first-error codes "
        f"agree; openssl verify accepts {valid}"
    )
    assert len(cells) >= 500
    assert 0 < valid < len(cells)  # the matrix has both outcomes
    assert disagree == []


def _cryptography_accepts(
    chain: list[x509.Certificate], store: list[x509.Certificate], at: dt.datetime, host: str
) -> bool:
    verifier = (
        PolicyBuilder().store(Store(store)).time(at).build_server_verifier(x509.DNSName(host))
    )
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError:
        return False
    return True


def test_backtracking_profiles_agree_with_cryptography(lab: LabHierarchy) -> None:
    chains, stores = _matrix(lab, AT)
    cells = list(_cells(chains, stores, (NAME, OTHER)))
    agree = 0
    differ: list[Cell] = []
    openssl_differs = 0
    for cell in cells:
        chain, store = chains[cell.chain_name], stores[cell.store]
        profile = Profile(name=f"bt-{cell.store}", description="oracle", anchors=tuple(store))
        assert profile.builder == "backtracking"
        mine = validate(chain, profile, at=AT, hostname=cell.hostname).valid
        if mine == _cryptography_accepts(chain, store, AT, cell.hostname):
            agree += 1
        else:
            differ.append(cell)
        openssl_differs += mine != _library_openssl(chain, store, AT, cell.hostname)[0]
    print(
        f"\nbacktracking vs cryptography: {len(cells)} cells, {agree} agree; "
        f"{openssl_differs} cells where a backtracking client and OpenSSL differ"
    )
    assert differ == []
    assert openssl_differs > 0  # the point of the builder: some chains split the clients


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, host: str) -> int:
    """A TLS handshake over memory BIOs; the client's verify error (0: verified)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client.wrap_bio(c_in, c_out, server_hostname=host)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(20):
        for side in (cli, srv):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                return int(exc.verify_code)
            except ssl.SSLError:
                if side is cli:
                    raise
        for src, dst in ((c_out, s_in), (s_out, c_in)):
            data = src.read()
            if data:
                dst.write(data)
        try:
            cli.do_handshake()
        except ssl.SSLWantReadError:
            continue
        except ssl.SSLCertVerificationError as exc:
            return int(exc.verify_code)
        return 0
    raise AssertionError("handshake did not finish")


def test_python_ssl_agrees_at_the_wall_clock(lab: LabHierarchy, oracle_dir: Path) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)  # read once: the one clock of this test
    unrelated = _self_signed_ca("Unrelated Test CA", now)
    folder = oracle_dir / "ssl"
    folder.mkdir()
    files = Files(folder)
    stores = _stores(lab, unrelated)
    store_files = {name: files.write(certs) for name, certs in stores.items()}
    clients: dict[str, ssl.SSLContext] = {}
    for name, path in store_files.items():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(path))
        clients[name] = ctx
    rows: list[tuple[str, list[x509.Certificate], str, Path, Path | None, int]] = []
    for family in ("RSA", "ECC"):
        pieces = Pieces(lab, family, now)
        key = pieces.leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_file = folder / f"{family}.key"
        key_file.write_bytes(key)
        for variant, chain in pieces.variants(unrelated).items():
            if chain[0] != pieces.leaf.cert:
                continue  # the server's key must match the leaf it sends
            server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server.load_cert_chain(str(files.write(chain)), str(key_file))
            leaf_file = files.write(chain[:1])
            rest = files.write(chain[1:]) if len(chain) > 1 else None
            for store_name in stores:
                by_ssl = _handshake(server, clients[store_name], NAME)
                rows.append((f"{family}/{variant}", chain, store_name, leaf_file, rest, by_ssl))

    def by_cli(row: tuple[str, list[x509.Certificate], str, Path, Path | None, int]) -> int:
        return _openssl(now, store_files[row[2]], row[3], row[4], NAME)

    with ThreadPoolExecutor(max_workers=2) as pool:
        cli = list(pool.map(by_cli, rows))
    differ: list[str] = []
    for (name, chain, store_name, _, _, by_ssl), by_openssl in zip(rows, cli, strict=True):
        verdict, emulated = _library_openssl(chain, stores[store_name], now, NAME)
        if not (by_ssl == by_openssl == emulated and verdict == (by_ssl == 0)):
            differ.append(
                f"{name} x {store_name}: ssl {by_ssl}, openssl {by_openssl}, "
                f"emulation {emulated}, library valid={verdict}"
            )
    print(
        f"\nPython ssl ({ssl.OPENSSL_VERSION}): {len(rows)} cells, {len(rows) - len(differ)} "
        "agree (ssl, openssl verify -attime, library)"
    )
    assert len(rows) >= 300
    assert differ == []


def test_check_over_tls_names_the_openssl_clients(lab: LabHierarchy) -> None:
    """``check`` against a real loopback server sending the self-signed R46 before the cross."""
    leaf = lab.issue_leaf([NAME], at=AT)
    chain = [leaf.cert, lab.r36.cert, lab.r46_root.cert, lab.r46_cross]
    with ServerLoop() as loop:
        server = LoopbackTLSServer(chain, leaf.key, loop=loop)
        server.start()
        try:
            report = check_endpoint(
                "127.0.0.1",
                server.port,
                servername=NAME,
                profiles=["legacy", "openssl-legacy", "openssl-1.0-legacy", "openssl-modern"],
                catalog=lab.catalog,
                timeout=10,
                at=AT,
            )
        finally:
            server.close()
    assert report.verdict == "fail"
    assert report.profiles["legacy"].valid  # backtracking clients: unchanged
    assert report.profiles["openssl-modern"].valid  # trusted first finds R46 in the store
    for name in ("openssl-legacy", "openssl-1.0-legacy"):
        assert report.profiles[name].classification == "openssl_path"
    (finding,) = [f for f in report.findings if f.code == "SELF_SIGNED_R46_SENT"]
    assert finding.severity == "error"
    assert "OpenSSL-based clients" in finding.detail
