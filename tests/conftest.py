"""Shared fixtures: the real Sectigo files (the package's own pinned copies) and the lab hierarchy.

Nothing here reads outside the repository: the real CA certificates are the ones the package
ships (``sectigo_chain/data/sectigo``), and the manifests they were verified with are copied,
pinned, under ``tests/data/``. Only ``tests/unit/test_shared_copies.py`` compares those copies
with ``../shared`` and reports itself skipped when that folder is absent.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from sectigo_chain.testing.lab import LabHierarchy, default_lab

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def sectigo_dir() -> Path:
    """The real Sectigo CA certificates, as the package ships them (PEM files)."""
    path = Path(str(resources.files("sectigo_chain") / "data" / "sectigo"))
    assert path.is_dir(), f"{path} is missing: the package data was not installed"
    return path


@pytest.fixture(scope="session")
def sectigo_manifest_path() -> Path:
    """The manifest the real Sectigo certificates were verified with (a pinned copy)."""
    return TEST_DATA / "sectigo" / "manifest.json"


@pytest.fixture(scope="session")
def trust_store_manifest_path() -> Path:
    """The manifest of the dated client trust stores (a pinned copy)."""
    return TEST_DATA / "trust-stores" / "manifest.json"


@pytest.fixture(scope="session")
def lab() -> LabHierarchy:
    """One lab hierarchy for the whole session (real keys)."""
    return default_lab()


def pytest_configure(config: pytest.Config) -> None:
    """Point pyspnego's NTLM acceptor (the loopback WinRM endpoint's NTLM) at its accounts file
    now, before any test starts a server thread: the one ``setenv`` of ``NTLM_USER_FILE``
    happens here, so NTLM tests need not be ``environ_race``."""
    from sectigo_chain.testing.winrm import ntlm_user_file

    ntlm_user_file()
