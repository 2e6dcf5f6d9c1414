"""The README's Python example runs as written (against the simulated host)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, "the README has a Python example"
    code = blocks[0].replace('sc.check_endpoint("www.example.com")', "None  # no network here")
    monkeypatch.chdir(tmp_path)  # apply writes its journal into the current directory
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    journals = [
        p
        for p in os.listdir(tmp_path)
        if p.startswith("sectigo-chain-journal-") and p.endswith(".json")
    ]
    assert len(journals) == 1
