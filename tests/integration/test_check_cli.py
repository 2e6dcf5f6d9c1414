"""``sectigo-chain check`` against loopback servers: documents, text and exit codes.

The CLI judges with the packaged (real) Sectigo catalog; the lab roots are given as user
bundles (``--profile NAME=PEMFILE``), as a user with a private test PKI would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.cli.main import main
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop
from sectigo_chain.x509.certs import sha256_hex, thumbprint

pytestmark = pytest.mark.timeout(120)


@dataclass
class Lab:
    ports: dict[str, int]
    chains: dict[str, list[x509.Certificate]]
    profiles: dict[str, str]  # name -> NAME=PEMFILE spec

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def specs(self, *names: str) -> list[str]:
        return [arg for n in names for arg in ("--profile", self.profiles[n])]


@pytest.fixture(scope="module")
def env(lab: LabHierarchy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    leaf = lab.issue_leaf(["www.example.test"])
    chains = {
        "cross": lab.served_chain(leaf, "cross"),
        "short": lab.served_chain(leaf, "short"),
        "root_sent": lab.served_chain(leaf, "with_root"),
    }
    tmp = tmp_path_factory.mktemp("bundles")
    profiles = {}
    roots = {"lab-legacy": lab.usertrust_rsa, "lab-modern": lab.r46_root, "aaa": lab.aaa}
    for name, ca in roots.items():
        path = tmp / f"{name}.pem"
        path.write_bytes(ca.cert.public_bytes(Encoding.PEM))
        profiles[name] = f"{name}={path}"
    with ServerLoop() as loop:
        servers = {k: LoopbackTLSServer(c, leaf.key, loop=loop) for k, c in chains.items()}
        servers["tls12"] = LoopbackTLSServer(
            chains["cross"], leaf.key, loop=loop, max_version="1.2"
        )
        for s in servers.values():
            s.start()
        yield Lab({k: s.port for k, s in servers.items()}, chains, profiles)
        for s in servers.values():
            s.close()


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_single_target_document(
    env: Lab, lab: LabHierarchy, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", env.target("cross"), "--servername", "www.example.test", "--json"]
    code, out, err = _run(capsys, [*argv, *env.specs("lab-legacy", "lab-modern")])
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["target"] == f"{env.target('cross')} (SNI www.example.test)"
    assert doc["servername"] == "www.example.test"
    assert doc["verdict"] == "pass"
    assert doc["findings"] == []
    chain = env.chains["cross"]
    served = doc["served_chain"]
    assert [c["sha256"] for c in served] == [sha256_hex(c) for c in chain]
    assert [c["thumbprint"] for c in served] == [thumbprint(c) for c in chain]
    assert [c["subject"] for c in served] == [c.subject.rfc4514_string() for c in chain]
    assert [c["issuer"] for c in served] == [c.issuer.rfc4514_string() for c in chain]
    assert "der_b64" not in served[0]
    assert set(doc["profiles"]) == {"lab-legacy", "lab-modern"}
    legacy = doc["profiles"]["lab-legacy"]
    assert legacy["valid"] is True
    assert legacy["anchor"] == lab.usertrust_rsa.cert.subject.rfc4514_string()
    assert legacy["path"] == [*[sha256_hex(c) for c in chain], sha256_hex(lab.usertrust_rsa.cert)]
    assert legacy["reason"] is None
    assert doc["profiles"]["lab-modern"]["path"][-1] == sha256_hex(lab.r46_root.cert)
    assert set(doc["tls_versions"]) == {"1.3"}  # one handshake: the server picked TLS 1.3
    assert all(v["ok"] and v["cipher"] for v in doc["tls_versions"].values())


def test_fail_exit_1_with_text_report(env: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", env.target("short"), "--servername", "www.example.test"]
    code, out, err = _run(capsys, [*argv, *env.specs("lab-legacy", "lab-modern")])
    assert (code, err) == (1, "")
    assert out.splitlines()[0] == f"{env.target('short')} (SNI www.example.test): FAIL"
    assert "ERROR SHORT_CHAIN_R46" in out
    assert "lab-legacy: FAILS (incomplete" in out
    assert "lab-modern: valid" in out


def test_warnings_exit_0(env: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", env.target("root_sent"), "--servername", "www.example.test", "--json"]
    code, out, _ = _run(capsys, [*argv, *env.specs("lab-legacy", "lab-modern")])
    doc = json.loads(out)
    assert code == 0
    assert doc["verdict"] == "warn"
    assert [(f["code"], f["severity"]) for f in doc["findings"]] == [("CONTAINS_ANCHOR", "warning")]
    assert {"code", "severity", "detail"} <= set(doc["findings"][0])


def test_a_failing_profile_alone_fails(env: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """No chain finding, but the selected profile does not validate: fail, exit 1."""
    argv = ["check", env.target("cross"), "--servername", "www.example.test", "--json"]
    code, out, _ = _run(capsys, [*argv, *env.specs("aaa")])
    doc = json.loads(out)
    assert (code, doc["verdict"], doc["findings"]) == (1, "fail", [])
    aaa = doc["profiles"]["aaa"]
    assert aaa["valid"] is False
    assert aaa["anchor"] is None
    assert aaa["path"] == []
    assert aaa["reason"]


def test_default_profiles_are_legacy_and_modern(
    env: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    # The packaged profiles do not trust lab roots: both fail, and both are reported.
    code, out, _ = _run(capsys, ["check", env.target("cross"), "--json"])
    doc = json.loads(out)
    assert code == 1
    assert list(doc["profiles"]) == ["legacy", "modern"]
    assert doc["servername"] is None  # an IP address and no --servername: no SNI


def test_tls_version_option(env: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", env.target("tls12"), "--tls-version", "1.3", "--json"]
    code, out, err = _run(capsys, [*argv, *env.specs("lab-legacy")])
    assert code == 3
    assert "does not support TLS 1.3" in err
    assert json.loads(out)["verdict"] == "error"
    argv = ["check", env.target("tls12"), "--json", *env.specs("lab-legacy")]
    code, out, _ = _run(capsys, argv)
    doc = json.loads(out)
    assert code == 0
    assert list(doc["tls_versions"]) == ["1.2"]  # one handshake: the server picked TLS 1.2
    assert doc["tls_versions"]["1.2"]["ok"] is True
    code, out, _ = _run(capsys, [*argv, "--each-tls-version"])
    doc = json.loads(out)
    assert code == 0
    assert doc["tls_versions"]["1.2"]["ok"] is True
    assert doc["tls_versions"]["1.3"]["ok"] is False
    assert "does not support TLS 1.3" in doc["tls_versions"]["1.3"]["error"]


def test_targets_file_many_document(
    env: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text(
        "# endpoints to check\n"
        f"{env.target('cross')} www.example.test\n"
        "\n"
        f"{env.target('short')}   www.example.test  # the broken one\n"
        f"{env.target('root_sent')}\n",
        encoding="utf-8",
    )
    argv = ["check", "--targets-file", str(listing), "--json"]
    code, out, err = _run(capsys, [*argv, *env.specs("lab-legacy", "lab-modern")])
    doc = json.loads(out)
    assert (code, err) == (1, "")
    assert doc["verdict"] == "fail"
    assert doc["summary"] == {"pass": 1, "warn": 1, "fail": 1, "error": 0}
    assert [t["verdict"] for t in doc["targets"]] == ["pass", "fail", "warn"]
    assert [t["servername"] for t in doc["targets"]] == ["www.example.test"] * 2 + [None]


def test_unreachable_beats_fail(env: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", env.target("short"), "127.0.0.1:1", "--servername", "www.example.test"]
    code, out, err = _run(capsys, [*argv, *env.specs("lab-legacy")])
    assert code == 3
    assert err.splitlines() == [
        "sectigo-chain check: error: 127.0.0.1:1 (SNI www.example.test): connection refused: "
        "nothing listens on port 1 (check the host and port)"
    ]
    assert "SHORT_CHAIN_R46" in out
    assert out.rstrip().endswith("2 targets: 0 pass, 0 warn, 1 fail, 1 not checked")


def test_quiet_prints_nothing(env: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "-q", env.target("short"), "--servername", "www.example.test"]
    code, out, err = _run(capsys, [*argv, *env.specs("lab-legacy")])
    assert (code, out, err) == (1, "", "")


def test_no_sni_option(env: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", env.target("cross"), "--no-sni", "--json", *env.specs("lab-legacy")]
    code, out, _ = _run(capsys, argv)
    doc = json.loads(out)
    assert code == 0
    assert (doc["servername"], doc["hostname"]) == (None, None)
    assert doc["profiles"]["lab-legacy"]["hostname"] == "www.example.test"  # from the leaf


_CONSOLE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('ATEXIT RAN\\n'))\n"
    "sys.argv = ['sectigo-chain', *sys.argv[1:]]\n"
    "from sectigo_chain.cli.main import console\n"
    "console()\n"
)


def _console(*argv: str, tmp: Path) -> tuple[int, str, str]:
    """The console script in a child process, its output to files (as a shell redirect)."""
    import os
    import subprocess
    import sys

    out, err = tmp / "out.txt", tmp / "err.txt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with out.open("wb") as o, err.open("wb") as e:
        code = subprocess.run(
            [sys.executable, "-c", _CONSOLE, *argv], stdout=o, stderr=e, env=env, timeout=60
        ).returncode
    return code, out.read_text("utf-8"), err.read_text("utf-8")


def test_console_check_leaves_fast_with_all_its_output(env: Lab, tmp_path: Path) -> None:
    """``check`` leaves with ``os._exit`` (no atexit handler runs), after its whole document:
    80 targets give a JSON document far larger than a pipe's buffer, and the exit code is the
    worst verdict's."""
    listing = tmp_path / "targets.txt"
    listing.write_text(
        "".join(f"{env.target(k)} www.example.test\n" for k in ("cross", "short") * 40), "utf-8"
    )
    specs = env.specs("lab-legacy", "lab-modern")
    code, out, err = _console("check", "--targets-file", str(listing), "--json", *specs,
                              tmp=tmp_path)  # fmt: skip
    assert len(out) > 200_000
    doc = json.loads(out)
    assert [t["verdict"] for t in doc["targets"]] == ["pass", "fail"] * 40
    assert (code, err) == (1, "")  # a failing chain, and no atexit handler ran
    code, out, err = _console("check", env.target("cross"), "--servername", "www.example.test",
                              *specs, "-v", tmp=tmp_path)  # fmt: skip
    assert code == 0
    assert "PASS" in out.upper()
    assert "ATEXIT RAN" not in err


def test_console_other_commands_exit_normally(lab: LabHierarchy, tmp_path: Path) -> None:
    """Any other command leaves through the interpreter's normal exit (its atexit handlers
    and finalisers run); a usage error of ``check`` still says why, with exit code 2."""
    pem = tmp_path / "r46.pem"
    pem.write_bytes(lab.r46_root.cert.public_bytes(Encoding.PEM))
    code, out, err = _console("inspect", str(pem), tmp=tmp_path)
    assert code == 0
    assert "Sectigo Public Server Authentication Root R46" in out
    assert err == "ATEXIT RAN\n"
    code, out, err = _console("check", "--timeout", "0", "127.0.0.1:1", tmp=tmp_path)
    assert code == 2
    assert "--timeout must be a positive number" in err


def test_check_loads_logging_only_when_asked(env: Lab, tmp_path: Path) -> None:
    """``check`` logs nothing at the default level, so the CLI neither imports nor configures
    logging for it (start-up time) unless ``-v`` or ``-q`` asks for a level; with ``-vv`` the
    library's handler (with its secret mask) is in place."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from sectigo_chain.cli.main import main\n"
        "main(sys.argv[1:])\n"
        "loaded = 'logging' in sys.modules\n"
        "handlers = []\n"
        "if loaded:\n"
        "    import logging\n"
        "    handlers = [type(f).__name__ for h in logging.getLogger('sectigo_chain').handlers"
        " for f in h.filters]\n"
        "print('LOGGING', loaded, handlers, file=sys.stderr)\n"
    )
    base = ["check", env.target("cross"), "--servername", "www.example.test", "--json",
            *env.specs("lab-legacy")]  # fmt: skip
    for flags, expected in (
        ([], "LOGGING False []"),
        (["-vv"], "LOGGING True ['SecretMaskFilter']"),
        (["-q"], "LOGGING True ['SecretMaskFilter']"),
    ):
        run = subprocess.run(
            [sys.executable, "-c", code, *base, *flags],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert run.stderr.strip().splitlines()[-1] == expected, flags
