"""NTLM with WinRM message encryption on the loopback endpoint: real, unmodified pypsrp with
``auth="ntlm"`` (and ``"negotiate"``) over plain HTTP, pyspnego as the acceptor.

The endpoint seals every body after the handshake (``multipart/encrypted``,
``application/HTTP-SPNEGO-session-encrypted``); these tests read the raw HTTP bodies it
received and sent (``record_wire``) to show that nothing of the scripts, their payloads or the
secrets in them is readable there, and the same reader finds all of it over Basic/HTTP.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from sectigo_chain.errors import ConnectionFailed, ScriptFailed
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.hosts.winrm import WinRMExecutor
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.verifier import verify
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.render import RenderedScript, render
from sectigo_chain.testing.winrm import SPNEGO_ENCRYPTED, WinRMTestServer, WireMessage
from sectigo_chain.x509.certs import thumbprint

pytest.importorskip("psrpcore", reason="the loopback WinRM endpoint needs the testing extra")

NOW = dt.datetime.now(dt.timezone.utc)
SITE = "Default Web Site"
#: a lab PFX's password, looked for on the wire
PFX_PASSWORD = "Pfx-Secret-7f3a91"


def _ntlm_server(host: SimulatedHost, *, tls: bool = False) -> WinRMTestServer:
    return WinRMTestServer(host, tls=tls, auth="negotiate", record_wire=True, at=NOW)


@pytest.mark.parametrize(
    ("auth", "tls", "encryption"),
    [
        ("ntlm", False, "auto"),
        ("ntlm", False, "always"),
        ("negotiate", False, "auto"),
        ("ntlm", True, "always"),
    ],
)
def test_a_full_fix_over_ntlm_with_message_encryption(
    auth: str, tls: bool, encryption: str, tmp_path: Path
) -> None:
    """observe, plan, apply every action, verify on the host and over TLS: all sealed."""
    host = SimulatedHost("broken-r46")
    listener = host.start_tls()
    try:
        with _ntlm_server(host, tls=tls) as srv:
            settings = srv.settings(auth=auth, encryption=encryption)
            with WinRMExecutor(settings) as ex:
                desired = sectigo_fix(site=SITE, catalog=host.catalog, root_strategy="remove")
                seen = observe(ex)
                first = plan(desired, seen, at=NOW, catalog=host.catalog, target=ex.target)
                assert first.actions
                result = apply(
                    first, ex, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                    at=NOW, before=seen,
                )  # fmt: skip
                report = verify(
                    ex, desired, endpoint=listener.address_for(SITE), catalog=host.catalog
                )
            stats, wire, received = srv.stats, list(srv.wire), list(srv.received)
    finally:
        host.close()
    assert result.after_plan_empty
    assert report.ok, report
    assert stats.templates == ["observe", "apply_plan", "verify_host"]  # the 3-pipeline budget
    assert "import_certificate" in [n for r in received for n in r.actions]
    assert stats.pools_opened == 1
    # the NTLM handshake is two 401s on the first connection; nothing else was refused
    assert stats.requests["401"] == 2
    sealed = [m for m in wire if m.body]
    assert sealed
    assert all(m.content_type.startswith("multipart/encrypted;") for m in sealed)
    assert all(f'protocol="{SPNEGO_ENCRYPTED}"' in m.content_type for m in sealed)
    print(f"\nfull fix over NTLM ({auth}, tls={tls}, encryption={encryption}): {stats.summary()}")


def _readable(data: bytes, depth: int = 3) -> bytes:
    """Everything a wire reader gets from ``data``: the bytes, and what decodes from every
    base64 run in them (SOAP streams, PSRP fragments, the payload), ``depth`` levels down."""
    found = [data]
    if depth:
        for run in re.findall(rb"[A-Za-z0-9+/]{16,}={0,2}", data):
            try:
                decoded = base64.b64decode(run + b"=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue
            found.append(_readable(decoded, depth - 1))
    return b"\n".join(found)


def _leaks(wire: Iterable[WireMessage], script: RenderedScript, *secrets: str) -> list[str]:
    """What of ``script`` and ``secrets`` a reader of the raw HTTP bodies can see."""
    seen = b"\n".join(_readable(m.body) for m in wire)
    marks = {
        "SOAP envelope": b"http://www.w3.org/2003/05/soap-envelope",
        # a piece of the template's text that no XML or CLIXML escaping changes
        "script text": re.findall(r"[A-Za-z0-9 .]{24,}", script.text)[0].encode(),
        "payload": script.payload.encode(),
        **{f"secret #{i}": s.encode() for i, s in enumerate(secrets)},
    }
    return [name for name, mark in marks.items() if mark in seen]


def _pfx_script(host: SimulatedHost) -> RenderedScript:
    leaf = host.lab.issue_leaf(("wire.example.test",))
    return render(
        "import_pfx",
        {
            "pfx_b64": base64.b64encode(leaf.pfx(PFX_PASSWORD)).decode(),
            "password": PFX_PASSWORD,
            "thumbprint": thumbprint(leaf.cert),
        },
    )


def _run_secret_script(srv: WinRMTestServer, script: RenderedScript) -> None:
    # what the host says about the PFX does not matter here, only the wire
    with WinRMExecutor(srv.settings()) as ex, contextlib.suppress(ScriptFailed):
        ex.run(script, timeout=60)


def test_nothing_of_the_script_or_its_secrets_is_readable_on_the_wire_with_ntlm() -> None:
    host = SimulatedHost("broken-r46")
    script = _pfx_script(host)
    with _ntlm_server(host) as srv:
        _run_secret_script(srv, script)
        wire, received = list(srv.wire), list(srv.received)
    # the script did arrive, whole, behind the encryption
    assert [r.template for r in received] == ["import_pfx"]
    assert received[0].parameters == {"Payload": script.payload}
    assert _leaks(wire, script, PFX_PASSWORD, srv.password) == []


def test_the_wire_reader_finds_everything_over_basic_on_http() -> None:
    """The control: the same reader, on unencrypted HTTP, sees the script and its secret."""
    host = SimulatedHost("broken-r46")
    script = _pfx_script(host)
    with WinRMTestServer(host, tls=False, record_wire=True) as srv:
        _run_secret_script(srv, script)
        wire = list(srv.wire)
    assert _leaks(wire, script, PFX_PASSWORD) == [
        "SOAP envelope",
        "script text",
        "payload",
        "secret #0",
    ]


def test_a_wrong_password_is_refused_with_pypsrps_authentication_error() -> None:
    from pypsrp.exceptions import AuthenticationError
    from pypsrp.powershell import RunspacePool
    from pypsrp.wsman import WSMan

    with _ntlm_server(SimulatedHost("broken-r46")) as srv:
        for user, password in ((srv.username, "Not-the-Passw0rd"), ("nobody", srv.password)):
            wsman = WSMan(
                "127.0.0.1", port=srv.port, username=user, password=password, ssl=False,
                auth="ntlm", encryption="auto", reconnection_retries=0,
            )  # fmt: skip
            with pytest.raises(AuthenticationError, match="Failed to authenticate"):
                RunspacePool(wsman).open()
            wsman.close()
        stats = srv.stats
    assert stats.pools_opened == 0
    assert stats.total_requests == stats.requests["401"] >= 2


def test_a_wrong_password_through_the_executor_is_a_typed_error_without_the_secret() -> None:
    with _ntlm_server(SimulatedHost("broken-r46")) as srv:
        settings = srv.settings(password=SecretStr("Not-the-Passw0rd"))
        with WinRMExecutor(settings) as ex, pytest.raises(ConnectionFailed) as info:
            ex.run(render("observe", {}), timeout=30)
        assert srv.stats.pipelines == 0
    assert "AuthenticationError" in str(info.value)
    assert "Not-the-Passw0rd" not in str(info.value)


def test_basic_is_refused_when_the_endpoint_takes_only_negotiate() -> None:
    with _ntlm_server(SimulatedHost("broken-r46")) as srv:
        settings = srv.settings(auth="basic", encryption="never")
        with WinRMExecutor(settings) as ex, pytest.raises(ConnectionFailed) as info:
            ex.run(render("observe", {}), timeout=30)
    assert "AuthenticationError" in str(info.value)


def test_two_endpoints_cannot_give_one_ntlm_user_two_passwords() -> None:
    with _ntlm_server(SimulatedHost("broken-r46")):
        other = WinRMTestServer(tls=False, auth="negotiate", password="Other-Passw0rd")
        with pytest.raises(ValueError, match="another password"):
            other.start()
        other.stop()


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    import http.client

    conn = _CONNECTIONS.setdefault(port, http.client.HTTPConnection("127.0.0.1", port, timeout=30))
    conn.request("POST", "/wsman", body=body, headers={"Content-Length": str(len(body)), **headers})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


_CONNECTIONS: dict[int, Any] = {}
ENVELOPE = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>'


def test_a_sealed_message_altered_on_the_wire_is_refused() -> None:
    """Message encryption is integrity-protected: flip one sealed byte and the endpoint refuses
    the message (401) instead of running anything."""
    import spnego
    from pypsrp.encryption import WinRMEncryption  # the client's own sealing code

    def seal(message: bytes) -> tuple[str, bytes]:
        kind, body = WinRMEncryption(client, SPNEGO_ENCRYPTED).wrap_message(message)
        return f'{kind};protocol="{SPNEGO_ENCRYPTED}";boundary="Encrypted Boundary"', body

    with _ntlm_server(SimulatedHost("broken-r46")) as srv:
        try:
            client = spnego.client(
                srv.username, srv.password, hostname="127.0.0.1", service="http",
                protocol="ntlm", options=spnego.NegotiateOptions.wrapping_winrm,
            )  # fmt: skip
            token = client.step()
            status, headers, _ = _post(
                srv.port, b"", {"Authorization": "Negotiate " + base64.b64encode(token).decode()}
            )
            assert status == 401
            challenge = base64.b64decode(headers["WWW-Authenticate"].split(" ", 1)[1])
            token = client.step(challenge)
            status, _, _ = _post(
                srv.port, b"", {"Authorization": "Negotiate " + base64.b64encode(token).decode()}
            )
            assert status == 200
            # the control: the same message, unaltered, gets through (and is answered, sealed,
            # with a WS-Management fault: it names no action)
            content_type, sealed = seal(ENVELOPE)
            status, headers, answer = _post(srv.port, sealed, {"Content-Type": content_type})
            assert status == 500
            assert headers["Content-Type"].startswith("multipart/encrypted;")
            assert b"Envelope" not in answer
            content_type, sealed = seal(ENVELOPE)
            marker = b"application/octet-stream\r\n"
            at = sealed.index(marker) + len(marker) + 4 + 16 + 3  # a byte of the sealed data
            altered = sealed[:at] + bytes([sealed[at] ^ 0x01]) + sealed[at + 1 :]
            status, _, _ = _post(srv.port, altered, {"Content-Type": content_type})
        finally:
            conn = _CONNECTIONS.pop(srv.port, None)
            if conn is not None:
                conn.close()
        stats = srv.stats
    assert status == 401
    # the handshake's 401, the refusal; one message (the control) reached WS-Management
    assert stats.requests["401"] == 2
    assert stats.total_requests == 3
