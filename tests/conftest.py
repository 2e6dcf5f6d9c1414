"""Shared fixtures: the real Sectigo files from ../shared and the lab hierarchy."""

from __future__ import annotations

from pathlib import Path

import pytest

from sectigo_chain.testing import LabHierarchy, default_lab

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def sectigo_dir() -> Path:
    """The verified real Sectigo CA certificates (../shared/sectigo)."""
    path = SHARED / "sectigo"
    assert path.is_dir(), f"{path} is missing: tests need the shared/ folder beside the repo"
    return path


@pytest.fixture(scope="session")
def lab() -> LabHierarchy:
    """One lab hierarchy for the whole session (real keys)."""
    return default_lab()
