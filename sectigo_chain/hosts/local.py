r"""Run templates on this machine with ``powershell.exe`` (or ``pwsh``) as a subprocess.

The template runs from a private temporary ``.ps1`` file; the payload travels on the child's
standard input and reaches the template through ``-Payload '-'`` (the template then reads
stdin), by a static wrapper command, so it is never pasted into PowerShell text, shown on a
command line (other users can read command lines) nor held in an environment variable (Windows
limits one variable to 32,767 characters: a PFX payload outgrows that) or written to disk.

On Windows the shell is the absolute
``%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe`` (``Sysnative`` from a 32-bit
Python, whose ``System32`` is SysWOW64 with the 32-bit PowerShell and another registry view),
never a bare name looked up on a search path that starts with the current directory. A
machine execution policy set by Group Policy overrides ``-ExecutionPolicy Bypass``; that
refusal becomes a :class:`~sectigo_chain.errors.ScriptFailed` that says so.

Not verified here: no PowerShell runs on this machine. The subprocess handling is tested with a
stand-in executable at the process boundary.
"""

from __future__ import annotations

import ntpath
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sectigo_chain.errors import ConnectionFailed, ScriptFailed, ScriptTimeout
from sectigo_chain.hosts.base import ExecutorBase, ScriptResult, mask_secrets, parse_document

if TYPE_CHECKING:
    from sectigo_chain.templates.render import RenderedScript

__all__ = ["WRAPPER", "LocalExecutor", "system_powershell"]

# Static: the only text handed to -Command. The script path comes from the environment, the
# payload from standard input ("-Payload '-'": Read-SectigoPayload then reads stdin).
WRAPPER = "& $env:SECTIGO_CHAIN_SCRIPT -Payload '-'"

# Markers of PowerShell's "running scripts is disabled / not digitally signed" refusal
# (PSSecurityException, FullyQualifiedErrorId UnauthorizedAccess).
_POLICY_MARKERS = ("about_Execution_Policies", "running scripts is disabled", "PSSecurityException")


def system_powershell(environ: Mapping[str, str] | None = None) -> str:
    r"""The absolute path of the 64-bit Windows PowerShell 5.1 for this process.

    ``%SystemRoot%\System32\...``; from a 32-bit process on 64-bit Windows (WOW64 sets
    ``PROCESSOR_ARCHITEW6432``) ``%SystemRoot%\Sysnative\...``, the alias WOW64 provides for
    the real System32.
    """
    env = os.environ if environ is None else environ
    root = env.get("SystemRoot") or env.get("SYSTEMROOT") or env.get("windir") or r"C:\Windows"
    system = "Sysnative" if env.get("PROCESSOR_ARCHITEW6432") else "System32"
    return ntpath.join(root, system, "WindowsPowerShell", "v1.0", "powershell.exe")


def _find_shell(preferred: str | None) -> str | None:
    if preferred:  # an explicit choice (a path, or a name looked up on PATH)
        return preferred if shutil.which(preferred) else None
    if os.name == "nt":
        path = system_powershell()
        return path if os.path.isfile(path) else None
    return shutil.which("pwsh")  # pragma: no cover - not Windows: nothing to manage locally


class LocalExecutor(ExecutorBase):
    """Runs rendered templates with the local Windows PowerShell (5.1 preferred)."""

    def __init__(self, *, shell: str | None = None) -> None:
        self._shell = shell

    @property
    def target(self) -> str:
        """Always ``local``."""
        return "local"

    def __repr__(self) -> str:
        return "LocalExecutor()"

    def run(self, script: RenderedScript, *, timeout: float) -> ScriptResult:
        """Run ``script`` in a child PowerShell; bounded by ``timeout`` seconds."""
        shell = _find_shell(self._shell)
        if shell is None:
            raise ConnectionFailed(
                "no PowerShell found on this machine (powershell.exe or pwsh); the 'local' "
                "target only works on Windows: use winrm://HOST from elsewhere",
                host="local",
                script=script.name,
            )
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="sectigo-chain-") as tmp:
            path = Path(tmp) / f"{script.name}.ps1"
            # utf-8-sig: Windows PowerShell 5.1 reads BOM-less files as the ANSI code page.
            path.write_text(script.text, encoding="utf-8-sig")
            env = {**os.environ, "SECTIGO_CHAIN_SCRIPT": str(path)}
            argv = [
                shell,
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-Command",
                WRAPPER,
            ]
            try:
                proc = subprocess.run(
                    argv,
                    env=env,
                    capture_output=True,
                    timeout=timeout,
                    input=(script.payload + "\n").encode("ascii"),
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ScriptTimeout(
                    f"{script.name} did not finish within {timeout:g} s (it was killed)",
                    host="local",
                    script=script.name,
                ) from None
            except OSError as exc:
                raise ConnectionFailed(
                    f"cannot start {shell}: {exc.strerror}", host="local", script=script.name
                ) from None
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")
        errors = [mask_secrets(line, script) for line in stderr.splitlines() if line.strip()]
        if proc.returncode != 0 and any(m in stderr for m in _POLICY_MARKERS):
            raise ScriptFailed(
                f"{script.name} was refused by the PowerShell execution policy: Group Policy "
                "sets a machine or user execution policy that overrides -ExecutionPolicy Bypass "
                "(see Get-ExecutionPolicy -List); ask for an exception, or run the script by hand "
                "(`sectigo-chain render`) as your policy allows",
                host="local",
                script=script.name,
                records=errors,
            )
        result = parse_document(
            stdout.splitlines(),
            errors=errors,
            duration=time.monotonic() - started,
            host="local",
            script=script.name,
        )
        if not result.ok or proc.returncode != 0:
            message = (result.error or {}).get("message") or f"exit code {proc.returncode}"
            message = mask_secrets(str(message), script)
            raise ScriptFailed(
                f"{script.name} failed: {message}",
                host="local",
                script=script.name,
                records=result.errors,
                result=result,
            )
        return result
