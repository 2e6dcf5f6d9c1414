"""The PowerShell behaviour apply_plan.ps1 and verify_host.ps1 rely on (issue 12a,
docs/windows-facts.md, "Windows facts relied on by issue 12a"), probed with the local 64-bit
Windows PowerShell.

Local only; skipped (reason printed) elsewhere. NOT YET RUN on Windows when this was written.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from windows_env import unavailable

PROBE = r"""
$ErrorActionPreference = 'Stop'
$facts = [ordered]@{}
$entries = @{}
$entries['writes'] = {
    param([string]$Payload)
    Write-Error 'record' -ErrorAction Continue
    '{"ok":true}'
}
$entries['throws'] = {
    param([string]$Payload)
    Get-Item -LiteralPath 'HKLM:\no\such\key'
    '{"ok":true}'
}
$entries['scoped'] = { param([string]$Payload) $p = 'inner'; '{"ok":true}' }
$p = 'outer'
$items = @(& $entries['writes'] -Payload 'x' 2>&1)
$facts.merged_types = @($items | ForEach-Object { $_.GetType().FullName })
try {
    $null = & $entries['throws'] -Payload 'x' 2>&1
    $facts.stop_inherited = $false
} catch {
    $facts.stop_inherited = $true
}
$null = & $entries['scoped'] -Payload 'x'
$facts.outer_kept = ($p -eq 'outer')
function Get-Outcome { $o = [ordered]@{ a = 1; b = 2 }; return $o }
$facts.dictionary_not_unrolled = (@(Get-Outcome).Count -eq 1)
ConvertTo-Json -InputObject $facts -Compress
"""


def test_scriptblock_entries_behave_as_apply_plan_assumes(facts: dict[str, Any]) -> None:
    reason = unavailable("local")
    if reason:
        pytest.skip(reason)
    from sectigo_chain.hosts.local import system_powershell

    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "apply_plan_facts.ps1"
        probe.write_text(PROBE, encoding="ascii")
        proc = subprocess.run(
            [system_powershell(), "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
             "-File", str(probe)],
            capture_output=True, timeout=120, check=False, env=os.environ.copy(),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    answers = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    facts["apply_plan"] = answers
    assert answers["merged_types"] == [
        "System.Management.Automation.ErrorRecord",
        "System.String",
    ]
    assert answers["stop_inherited"] is True
    assert answers["outer_kept"] is True
    assert answers["dictionary_not_unrolled"] is True
