"""The local and WinRM executors, up to their process / network boundary.

No PowerShell and no Windows host exist here: the local executor runs a stand-in executable
(a small Python program that behaves like powershell.exe at the process boundary); the WinRM
executor runs against a fake PSRP session. What is tested is our side: payload passing (never in
the script text or command line), deadlines, error mapping and secret masking.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from sectigo_chain.errors import ConnectionFailed, InputError, ScriptFailed, ScriptTimeout
from sectigo_chain.hosts.local import WRAPPER, LocalExecutor, system_powershell
from sectigo_chain.hosts.winrm import WinRMExecutor, WinRMSettings, parse_winrm_target
from sectigo_chain.templates.render import render
from sectigo_chain.testing.lab import LabHierarchy

FAKE_SHELL = r'''#!{python}
"""Stand-in for powershell.exe: checks the call shape, then acts on the payload."""
import base64, json, os, sys, time
argv = sys.argv[1:]
assert argv[:5] == ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command"], argv
assert argv[5] == {wrapper!r}, argv
script = open(os.environ["SECTIGO_CHAIN_SCRIPT"], encoding="utf-8-sig").read()
assert "param(" in script
# Windows refuses an environment variable longer than 32,767 characters (issue 13, item 15).
too_long = [k for k, v in os.environ.items() if len(v) > 32767]
assert not too_long, too_long
payload = json.loads(base64.b64decode(sys.stdin.read().strip()).decode("utf-8"))
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "policy":
    sys.stderr.write(
        "File C:\\x\\observe.ps1 cannot be loaded because running scripts is disabled on "
        "this system. For more information, see about_Execution_Policies at "
        "https:/go.microsoft.com/fwlink/?LinkID=135170.\n"
    )
    sys.exit(1)
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"argv": argv, "payload": payload}}) + "\n")
if mode == "sleep":
    time.sleep(30)
if mode == "garbage":
    print("not json at all")
    sys.exit(1)
if mode == "fail":
    sys.stderr.write("Import-PfxCertificate : password " + payload.get("password", "") + "\n")
    print(json.dumps({{"ok": False, "changed": False, "data": None,
                      "error": {{"message": "boom", "category": "InvalidOperation"}}}}))
    sys.exit(1)
print("some host chatter")
print(json.dumps({{"ok": True, "changed": True, "data": {{"echo": payload}}, "error": None}}))
'''


@pytest.fixture
def fake_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    exe = tmp_path / "bin" / "powershell"
    exe.parent.mkdir()
    exe.write_text(FAKE_SHELL.format(python=sys.executable, wrapper=WRAPPER))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def _pfx_script(lab: LabHierarchy) -> Any:
    leaf = lab.issue_leaf(["exec.example.test"])
    return render(
        "import_pfx",
        {
            "pfx_b64": base64.b64encode(leaf.pfx("Pa$$w0rd'; Remove-Item C:\\")).decode(),
            "password": "Pa$$w0rd'; Remove-Item C:\\",
            "thumbprint": leaf.cert.fingerprint(
                __import__("cryptography").hazmat.primitives.hashes.SHA1()
            ).hex(),
            "store_name": "My",
        },
    )


def test_local_passes_payload_on_stdin(fake_shell: Path, lab: LabHierarchy) -> None:
    script = render("observe", {})
    with LocalExecutor(shell="powershell") as ex:
        result = ex.run(script, timeout=30)
    assert result.ok
    assert result.changed
    assert result.data == {"echo": script.decoded_params()}
    (call,) = [json.loads(line) for line in fake_shell.read_text().splitlines()]
    # The payload is not on the command line; only the static wrapper is.
    assert script.payload not in " ".join(call["argv"])


def test_local_secret_never_on_command_line_and_masked(
    fake_shell: Path, lab: LabHierarchy, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _pfx_script(lab)
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(ScriptFailed) as info:
        LocalExecutor(shell="powershell").run(script, timeout=30)
    text = str(info.value) + " ".join(info.value.records)
    assert "boom" in text
    assert "Import-PfxCertificate" in text
    assert "Pa$$w0rd" not in text
    # the document the script wrote travels with the error (apply reads apply_plan's from it)
    assert info.value.result is not None
    assert info.value.result.ok is False
    (call,) = [json.loads(line) for line in fake_shell.read_text().splitlines()]
    assert call["payload"]["password"] == "Pa$$w0rd'; Remove-Item C:\\"  # arrived intact
    assert "Pa$$w0rd" not in " ".join(call["argv"])
    assert "Pa$$w0rd" not in repr(script)


def test_local_large_pfx_payload_not_in_environment(fake_shell: Path, lab: LabHierarchy) -> None:
    """A payload above Windows's 32,767-character limit for one environment variable (a PFX of
    about 18 KB or more) still reaches the script whole: it travels on standard input."""
    from cryptography.hazmat.primitives import hashes

    leaf = lab.issue_leaf(["big.example.test"])
    blob = leaf.pfx("pw-123456") * 20  # the executor does not parse it; only size matters
    script = render(
        "import_pfx",
        {
            "pfx_b64": base64.b64encode(blob).decode(),
            "password": "pw-123456",
            "thumbprint": leaf.cert.fingerprint(hashes.SHA1()).hex(),
            "store_name": "My",
        },
    )
    assert len(script.payload) > 32767
    result = LocalExecutor(shell="powershell").run(script, timeout=30)
    assert result.data == {"echo": script.decoded_params()}
    (call,) = [json.loads(line) for line in fake_shell.read_text().splitlines()]
    assert call["argv"][5] == WRAPPER
    assert "$env:" not in WRAPPER.split("-Payload", 1)[1]


def test_local_execution_policy_refusal_is_explained(
    fake_shell: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "policy")
    with pytest.raises(ScriptFailed, match="refused by the PowerShell execution policy"):
        LocalExecutor(shell="powershell").run(render("observe", {}), timeout=30)


def test_system_powershell_is_absolute_and_native() -> None:
    """Never a bare name resolved through the search path; from a 32-bit Python on 64-bit
    Windows (WOW64 sets PROCESSOR_ARCHITEW6432) the 64-bit shell through Sysnative."""
    native = system_powershell({"SystemRoot": "C:\\Windows", "PROCESSOR_ARCHITECTURE": "AMD64"})
    assert native == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    wow64 = system_powershell(
        {
            "SystemRoot": "D:\\WIN",
            "PROCESSOR_ARCHITECTURE": "x86",
            "PROCESSOR_ARCHITEW6432": "AMD64",
        }
    )
    assert wow64 == "D:\\WIN\\Sysnative\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert system_powershell({}).startswith("C:\\Windows\\System32\\")


@pytest.mark.skipif(os.name == "nt", reason="on Windows the real System32 PowerShell is used")
def test_local_without_explicit_shell_ignores_path(
    monkeypatch: pytest.MonkeyPatch, fake_shell: Path, tmp_path: Path
) -> None:
    """A powershell(.exe) planted on PATH (or in the current directory) is never picked."""
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # holds only the planted "powershell"
    with pytest.raises(ConnectionFailed, match="no PowerShell found"):
        LocalExecutor().run(render("observe", {}), timeout=5)
    assert not fake_shell.exists()


def test_local_timeout_and_garbage(fake_shell: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "sleep")
    with pytest.raises(ScriptTimeout) as info:
        LocalExecutor(shell="powershell").run(render("observe", {}), timeout=1.0)
    assert isinstance(info.value, TimeoutError)
    monkeypatch.setenv("FAKE_MODE", "garbage")
    with pytest.raises(ScriptFailed, match="no result document"):
        LocalExecutor(shell="powershell").run(render("observe", {}), timeout=30)


def test_local_without_powershell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConnectionFailed, match="no PowerShell found"):
        LocalExecutor().run(render("observe", {}), timeout=5)


# ------------------------------------------------------------------------------- WinRM


class FakePipeline:
    def __init__(self, text: str, params: dict[str, str], polls: int, outputs: list[str]) -> None:
        self.text = text
        self.params = params
        self.polls_left = polls
        self.outputs = outputs
        self.stopped = False
        self.closed = False


class FakeSession:
    """Behaves like the pypsrp layer: start, poll until done, finish, stop, close."""

    instances: ClassVar[list[FakeSession]] = []

    def __init__(self, settings: WinRMSettings, *, polls: int = 2, fail_at: str = "") -> None:
        if fail_at == "open":
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        self.settings = settings
        self.polls = polls
        self.fail_at = fail_at
        self.pipelines: list[FakePipeline] = []
        self.closed = False
        self.poll_timeouts: list[int] = []
        FakeSession.instances.append(self)

    def start(self, text: str, parameters: dict[str, str]) -> FakePipeline:
        payload = json.loads(base64.b64decode(parameters["Payload"]))
        doc = {"ok": True, "changed": False, "data": {"echo": payload}, "error": None}
        p = FakePipeline(text, parameters, self.polls, [json.dumps(doc)])
        self.pipelines.append(p)
        return p

    def poll(self, pipeline: FakePipeline, timeout: int) -> bool:
        self.poll_timeouts.append(timeout)
        if self.fail_at == "poll":
            raise ConnectionResetError("connection reset by peer")
        if self.fail_at == "hang":
            return True
        pipeline.polls_left -= 1
        return pipeline.polls_left > 0

    def finish(self, pipeline: FakePipeline) -> tuple[list[str], list[str], list[str]]:
        pipeline.closed = True
        errors = []
        if self.fail_at == "records":
            assert self.settings.password is not None
            errors = [f"Access denied for {self.settings.password.get_secret_value()}"]
            failure = {"ok": False, "changed": False, "data": None}
            failure["error"] = {"message": "denied", "category": "x"}
            pipeline.outputs = [json.dumps(failure)]
        return pipeline.outputs, errors, []

    def stop(self, pipeline: FakePipeline) -> None:
        pipeline.stopped = True

    def close(self) -> None:
        self.closed = True


def _executor(**kw: Any) -> WinRMExecutor:
    settings = parse_winrm_target("winrm://admin@web01:5986", password=SecretStr("Winrm-S3cret"))
    return WinRMExecutor(settings, session_factory=lambda s: FakeSession(s, **kw))


def test_winrm_target_parsing() -> None:
    s = parse_winrm_target("winrm://ops@web01.example.test")
    assert (s.host, s.port, s.username, s.ssl) == ("web01.example.test", 5986, "ops", True)
    assert parse_winrm_target("winrm://web02:5985").ssl is False
    for bad in ("http://web01", "winrm://", "winrm://web:99999", "winrm://web:x"):
        with pytest.raises(InputError):
            parse_winrm_target(bad)
    secret = parse_winrm_target("winrm://a@b", password=SecretStr("pw-123"))
    assert "pw-123" not in repr(secret)
    assert "pw-123" not in secret.target


def test_winrm_runs_payload_as_parameter_on_one_pool() -> None:
    FakeSession.instances.clear()
    with _executor() as ex:
        first = ex.run(render("observe", {}), timeout=30)
        second = ex.run(render("restart", {"mode": "iisreset", "app_pools": []}), timeout=30)
    (session,) = FakeSession.instances  # one pool for both scripts
    assert session.closed
    assert first.data == {"echo": render("observe", {}).decoded_params()}
    assert second.data["echo"]["mode"] == "iisreset"
    for pipeline in session.pipelines:
        assert set(pipeline.params) == {"Payload"}
        assert pipeline.params["Payload"] not in pipeline.text
        assert pipeline.closed


def test_winrm_deadline_stops_pipeline() -> None:
    FakeSession.instances.clear()
    ex = _executor(fail_at="hang")
    with pytest.raises(ScriptTimeout, match="did not finish within 1 s"):
        ex.run(render("observe", {}), timeout=1.0)
    (session,) = FakeSession.instances
    assert session.pipelines[0].stopped
    assert all(t >= 1 for t in session.poll_timeouts)


def test_winrm_errors_are_mapped_and_masked() -> None:
    with pytest.raises(
        ConnectionFailed, match="cannot open a PowerShell session on winrm://admin@web01:5986"
    ):
        _executor(fail_at="open").run(render("observe", {}), timeout=5)
    FakeSession.instances.clear()
    ex = _executor(fail_at="poll")
    with pytest.raises(ConnectionFailed) as info:
        ex.run(render("observe", {}), timeout=5)
    assert isinstance(info.value, ConnectionError)
    assert FakeSession.instances[0].closed  # a broken session is dropped, reopened next time
    with pytest.raises(ScriptFailed) as failed:
        _executor(fail_at="records").run(render("observe", {}), timeout=5)
    text = str(failed.value) + " ".join(failed.value.records)
    assert "denied" in text
    assert "Winrm-S3cret" not in text
    assert "Winrm-S3cret" not in repr(_executor())


def test_short_password_does_not_shred_messages() -> None:
    """Masking a 1-character password would mangle every message; longer ones are masked."""
    for password, hidden in (("x", False), ("Winrm-S3cret", True)):
        settings = parse_winrm_target("winrm://admin@web01", password=SecretStr(password))

        def refuse(s: WinRMSettings, pw: str = password) -> FakeSession:
            raise ConnectionRefusedError(f"Max retries exceeded (auth {pw})")

        with pytest.raises(ConnectionFailed) as info:
            WinRMExecutor(settings, session_factory=refuse).run(render("observe", {}), timeout=5)
        text = str(info.value)
        assert "Max retries exceeded" in text
        assert (password not in text) is hidden
