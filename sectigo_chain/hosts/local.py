"""Run templates on this machine with ``powershell.exe`` (or ``pwsh``) as a subprocess.

The template runs from a private temporary ``.ps1`` file; the payload travels in an environment
variable of the child process and reaches the template as its ``-Payload`` parameter through a
static wrapper command, so it is never pasted into PowerShell text nor shown on a command line
(other users can read command lines; they cannot read another process's environment).

Not verified here: no PowerShell runs on this machine. The subprocess handling is tested with a
stand-in executable at the process boundary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sectigo_chain.errors import ConnectionFailed, ScriptFailed, ScriptTimeout
from sectigo_chain.hosts.base import ExecutorBase, ScriptResult, mask_secrets, parse_document

if TYPE_CHECKING:
    from sectigo_chain.templates.render import RenderedScript

__all__ = ["WRAPPER", "LocalExecutor"]

# Static: the only text handed to -Command. Values come from the environment.
WRAPPER = "& $env:SECTIGO_CHAIN_SCRIPT -Payload $env:SECTIGO_CHAIN_PAYLOAD"


def _find_shell(preferred: str | None) -> str | None:
    for name in [preferred] if preferred else ["powershell.exe", "powershell", "pwsh"]:
        if name and shutil.which(name):
            return name
    return None


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
            env = {
                **os.environ,
                "SECTIGO_CHAIN_SCRIPT": str(path),
                "SECTIGO_CHAIN_PAYLOAD": script.payload,
            }
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
                    stdin=subprocess.DEVNULL,
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
            )
        return result
