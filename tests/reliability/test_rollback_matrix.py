"""Suites 1 (rollback matrix) and 2 (idempotence) of issue 13; each prints its figure.

What a point is and which faults are tried: see ``_rollback_matrix``. Reproduce the figures:
``.venv/bin/python -m pytest -q -p no:cacheprovider tests/reliability/test_rollback_matrix.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _rollback_matrix import Matrix, setups

from sectigo_chain.hosts.sim.scenarios import SCENARIOS


@pytest.fixture
def journal_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the points' journals go: a tmpfs when there is one. Each journal write fsyncs
    (twice): on a disk that is most of the suite's time, and durability is not what the
    matrix tests (a kill here is an exception: the file holds what was written)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="sectigo-chain-matrix-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n{text}")


def test_every_setup_is_covered(tmp_path: Path) -> None:
    m = Matrix(tmp_path)
    labels = [s.label for s in setups(m.lab)]
    assert set(SCENARIOS) <= set(labels)
    assert "broken-r46+pfx" in labels
    kinds = [a.kind for a in m.plan(setups(m.lab)[labels.index("broken-r46+pfx")]).actions]
    assert kinds[-3:] == ["import_pfx", "set_binding", "restart"]


@pytest.mark.slow
def test_rollback_matrix_restores_every_point_exactly(
    journal_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fig = Matrix(journal_dir).run_matrix()
    _report(capsys, fig.line("rollback matrix") + f" ({fig.seconds:.1f} s)\n" + fig.breakdown())
    assert fig.tried > 400  # every scenario x every action x every fault: not a token run
    assert not fig.failures, "\n".join(fig.failures[:20])
    assert fig.restored == fig.tried


def test_a_second_apply_runs_no_action_on_every_scenario(
    journal_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fig = Matrix(journal_dir).run_idempotence()
    _report(
        capsys,
        f"idempotence: {fig.tried} scenarios tried / {fig.restored} second applies ran no action"
        f" ({fig.seconds:.1f} s)",
    )
    assert fig.tried == len(SCENARIOS) + 1
    assert not fig.failures, "\n".join(fig.failures)
