"""Runs tests/windows/facts.ps1 (the probe for the open questions of issue 11) with the
local 64-bit Windows PowerShell and records its answers in the facts artefact.

Local only: the probe is test code, not a template, and is not sent over WinRM. Skipped
(reason printed) elsewhere. NOT YET RUN on Windows when this was written.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from windows_env import unavailable

PROBE = Path(__file__).with_name("facts.ps1")


def test_probe_answers_the_open_questions(facts: dict[str, Any]) -> None:
    reason = unavailable("local")
    if reason:
        pytest.skip(reason)
    from sectigo_chain.hosts.local import system_powershell

    proc = subprocess.run(
        [system_powershell(), "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
         "-File", str(PROBE)],
        capture_output=True,
        timeout=600,
        check=False,
        env=os.environ.copy(),
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.decode("utf-8", "replace").splitlines() if ln.strip()]
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert lines, "the probe wrote nothing"
    answers = json.loads(lines[-1])
    facts["probe"] = answers
    assert answers["elevated"] is True
    assert answers["is64bit"] is True
    for question in ("x509store_remove", "sni_subkeys", "inplace_change", "auto_root_update"):
        assert question in answers
