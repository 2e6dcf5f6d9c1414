"""Suite 3 of issue 13: recognisable PFX and WinRM passwords never appear, in any form, in any
stream or file, on every command path (success and failure, logs at DEBUG), including a WinRM
endpoint that echoes the ``Authorization`` header in its error body.

Forms searched: plain, base64, base64 of ``user:password``, UTF-16LE, hex (both cases),
URL-encoded (``quote`` and ``quote_plus``). Streams: stdout and stderr (logging at ``-vv``
goes to stderr); files: every file the commands wrote (journals, fleet JSON and HTML
reports). The figure (paths run, artefacts scanned, occurrences found) is printed.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sectigo_chain.cli.main import main
from sectigo_chain.logs import clear_secrets
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.testing.tls_servers import server_context

# Sets environment variables while server threads run: see the marker's reason (pyproject).
pytestmark = pytest.mark.environ_race

pytestmark = pytest.mark.timeout(120)
PFX_PW = "Pfx-Secret-Q7x!42"
WINRM_PW = "WinRM-Secret-Z9k!77"
USER = "admin"
AT = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
SCANNED: dict[str, int] = {"paths": 0, "artefacts": 0, "occurrences": 0}


def _forms(secret: str) -> dict[str, bytes]:
    raw = secret.encode()
    u16 = secret.encode("utf-16-le")
    forms = {
        "plain": raw,
        "utf-16le": u16,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "url": urllib.parse.quote(secret, safe="").encode(),
        "url+": urllib.parse.quote_plus(secret).encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64 utf-16le": base64.b64encode(u16).rstrip(b"="),
        "base64 user:password": base64.b64encode(f"{USER}:{secret}".encode()).rstrip(b"="),
    }
    for lead in (1, 2):  # the secret at other offsets inside a longer base64 run
        enc = base64.b64encode(b"x" * lead + raw)
        forms[f"base64+{lead}"] = enc[4 : len(enc) - 4]
    return forms


FORMS = {f"{name}/{form}": value for name in ("pfx", "winrm") for form, value in
         _forms(PFX_PW if name == "pfx" else WINRM_PW).items()}  # fmt: skip


def _leaks(data: bytes) -> list[str]:
    return [name for name, value in FORMS.items() if value in data]


class _Echo(http.server.BaseHTTPRequestHandler):
    """A WinRM endpoint (or proxy) that echoes the request headers in a 500 error body."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = ("proxy error; request headers were:\r\n" + str(self.headers)).encode()
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def lab() -> LabHierarchy:
    return LabHierarchy.create(at=AT)


@pytest.fixture(scope="module")
def echo(lab: LabHierarchy) -> Iterator[int]:
    leaf = lab.issue_leaf(("127.0.0.1",), at=AT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    ctx: ssl.SSLContext = server_context([leaf.cert, lab.r36.cert], leaf.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def work(tmp_path: Path, lab: LabHierarchy, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    leaf = lab.issue_leaf(("www.example.test",), at=AT)
    pfx = serialization.pkcs12.serialize_key_and_certificates(
        b"site", leaf.key, leaf.cert, [lab.r36.cert],
        serialization.BestAvailableEncryption(PFX_PW.encode()),
    )  # fmt: skip
    (tmp_path / "site.pfx").write_bytes(pfx)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PFX_PW", PFX_PW)
    monkeypatch.setenv("WINRM_PW", WINRM_PW)
    monkeypatch.setenv("WRONG_PW", "not-the-password")
    yield tmp_path
    clear_secrets()


def _inventory(path: Path, hosts: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"hosts": hosts}), encoding="utf-8")
    return path


def _paths(echo_port: int, work: Path) -> dict[str, list[str]]:
    sim = ["--target", "sim://broken-r46"]
    pw = ["--pfx", "site.pfx", "--pfx-password-env", "PFX_PW", "--password-env", "WINRM_PW"]
    winrm_host = {
        "name": "echo", "target": f"winrm://{USER}@127.0.0.1:{echo_port}",
        "winrm_auth": "basic", "winrm_cert_validation": False, "password_env": "WINRM_PW",
        "pfx": "site.pfx", "pfx_password_env": "PFX_PW", "timeout": 5,
    }  # fmt: skip
    sim_host = {
        "name": "web01", "target": "sim://broken-r46", "pfx": "site.pfx",
        "pfx_password_env": "PFX_PW", "password_env": "WINRM_PW",
    }  # fmt: skip
    inv_sim = _inventory(work / "sim.json", [sim_host])
    inv_echo = _inventory(work / "echo.json", [winrm_host])
    return {
        "inspect pfx": ["inspect", "site.pfx", "--password-env", "PFX_PW", "-vv"],
        "inspect pfx wrong password": ["inspect", "site.pfx", "--password-env", "WRONG_PW", "-vv"],
        "inspect pfx json": ["inspect", "site.pfx", "--password-env", "PFX_PW", "--json"],
        "plan sim": ["plan", *sim, *pw, "-vv"],
        "plan sim json": ["plan", *sim, *pw, "--json", "-vv"],
        "apply sim": ["apply", *sim, *pw, "--yes", "-vv", "--journal-dir", str(work)],
        "apply sim wrong pfx password": [
            "apply",
            *sim,
            "--pfx",
            "site.pfx",
            "--pfx-password-env",
            "WRONG_PW",
            "--yes",
            "-vv",
        ],
        "verify sim": ["verify", *sim, *pw, "-vv"],
        "plan winrm echo (negotiate)": [
            "plan",
            "--target",
            f"winrm://{USER}@127.0.0.1:{echo_port}",
            *pw,
            "-vv",
        ],
        "fleet plan sim": [
            "fleet",
            "plan",
            str(inv_sim),
            "--report",
            "r1.json",
            "--html",
            "r1.html",
            "-vv",
        ],
        "fleet apply sim": [
            "fleet",
            "apply",
            str(inv_sim),
            "--yes",
            "--report",
            "r2.json",
            "--html",
            "r2.html",
            "--journal-dir",
            str(work),
            "-vv",
        ],
        "fleet plan winrm echo (basic)": [
            "fleet",
            "plan",
            str(inv_echo),
            "--report",
            "r3.json",
            "--html",
            "r3.html",
            "-vv",
        ],
        "fleet plan winrm echo json": ["fleet", "plan", str(inv_echo), "--json", "-vv"],
        "render import_pfx": ["render", "import_pfx", "--pfx", "site.pfx"],
        "password in target": ["plan", "--target", f"winrm://{USER}:{WINRM_PW}@127.0.0.1", "-vv"],
    }


def test_no_secret_in_any_stream_or_file(
    work: Path, echo: int, capsys: pytest.CaptureFixture[str]
) -> None:
    leaks: dict[str, list[str]] = {}
    echoed = False
    for name, argv in _paths(echo, work).items():
        try:
            main(argv)
        except SystemExit:
            pass
        finally:
            clear_secrets()
        out, err = capsys.readouterr()
        SCANNED["paths"] += 1
        for stream, text in (("stdout", out), ("stderr", err)):
            SCANNED["artefacts"] += 1
            if "winrm echo (basic)" in name and "proxy error" in text:
                echoed = True
            found = _leaks(text.encode("utf-8", "surrogateescape"))
            if found:
                leaks[f"{name} {stream}"] = found
    for journal in sorted(work.glob("sectigo-chain-journal-*.json"))[:1]:  # rollback path
        try:
            main(["rollback", str(journal), "--password-env", "WINRM_PW", "-vv"])
        finally:
            clear_secrets()
        out, err = capsys.readouterr()
        SCANNED["paths"] += 1
        for stream, text in (("stdout", out), ("stderr", err)):
            SCANNED["artefacts"] += 1
            if found := _leaks(text.encode("utf-8", "surrogateescape")):
                leaks[f"rollback {stream}"] = found
    for path in sorted(work.rglob("*")):
        if path.is_file() and path.name not in ("site.pfx",):
            SCANNED["artefacts"] += 1
            found = _leaks(path.read_bytes())
            if found:
                leaks[str(path.relative_to(work))] = found
    SCANNED["occurrences"] = sum(len(v) for v in leaks.values())
    assert echoed, "the echoing endpoint was not reached: the test would prove nothing"
    assert any(work.glob("sectigo-chain-journal-*.json")), "apply wrote no journal"
    assert (work / "r3.json").is_file()
    assert not leaks, leaks


def test_zz_print_figure() -> None:
    print(
        f"\nSUITE secrets: {SCANNED['paths']} command paths, {SCANNED['artefacts']} streams and "
        f"files scanned for {len(FORMS)} forms of 2 secrets, {SCANNED['occurrences']} found"
    )
    assert SCANNED["paths"] > 0
