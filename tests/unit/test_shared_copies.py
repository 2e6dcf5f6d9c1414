"""The repository's pinned copies against ``../shared`` (the project's source material).

This is the only test that looks outside the repository. A fresh clone has no ``../shared``
beside it; then the test reports itself skipped with the reason, and every other test still
runs on the package's own pinned copies and on ``tests/data``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
PACKAGE_DATA = Path(str(resources.files("sectigo_chain") / "data"))
TEST_DATA = REPO / "tests" / "data"


def _pairs() -> list[tuple[Path, Path]]:
    pairs = [(p, SHARED / "sectigo" / p.name) for p in (PACKAGE_DATA / "sectigo").glob("*.pem")]
    pairs += [
        (p, SHARED / "trust-stores" / p.name) for p in (PACKAGE_DATA / "trust-stores").glob("*.pem")
    ]
    for folder in ("sectigo", "trust-stores"):
        pairs += [(p, SHARED / folder / p.name) for p in (TEST_DATA / folder).iterdir()]
    return pairs


def test_repository_copies_equal_the_shared_source_material() -> None:
    if not (SHARED / "sectigo").is_dir() or not (SHARED / "trust-stores").is_dir():
        pytest.skip(f"{SHARED} is absent (a fresh clone): nothing to compare the copies with")
    pairs = _pairs()
    assert len(pairs) == 15 + 7 + 2 + 2
    differ = [str(ours) for ours, theirs in pairs if ours.read_bytes() != theirs.read_bytes()]
    assert differ == []
