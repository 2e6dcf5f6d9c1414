"""Fixtures of the real-Windows suite (issue 11); see windows_env.py for when it runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from windows_env import EXECUTORS, open_executor, unavailable

from sectigo_chain.hosts.base import Executor


@pytest.fixture(params=EXECUTORS)
def executor_kind(request: pytest.FixtureRequest) -> str:
    kind = str(request.param)
    reason = unavailable(kind)
    required = os.environ.get("SECTIGO_CHAIN_WINDOWS_REQUIRED") == "1"
    if reason and required and os.environ.get("SECTIGO_CHAIN_WINDOWS_EXECUTOR") == kind:
        # In the Windows workflow a skip would be a green job that ran nothing.
        pytest.fail(f"this run requires the {kind} executor: {reason}")
    if reason:
        pytest.skip(reason)
    return kind


@pytest.fixture
def executor(executor_kind: str) -> Iterator[Executor]:
    with open_executor(executor_kind) as ex:
        yield ex


_FACTS: dict[str, Any] = {}


@pytest.fixture(scope="session")
def facts() -> Iterator[dict[str, Any]]:
    """Answers recorded by the tests; written as JSON at the end of the session."""
    yield _FACTS
    if _FACTS:
        path = Path(os.environ.get("SECTIGO_CHAIN_WINDOWS_FACTS", "windows-facts.json"))
        path.write_text(json.dumps(_FACTS, indent=2, sort_keys=True) + "\n", encoding="utf-8")
