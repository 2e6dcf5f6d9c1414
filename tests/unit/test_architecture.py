"""The layout of docs/architecture.md stays true: packages, one-way layers, no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sectigo_chain"
TOP_LEVEL = {"__init__.py", "__main__.py", "errors.py", "logs.py", "demo.py", "py.typed"}
PACKAGES = {
    "x509", "trust", "state", "run", "hosts", "templates", "tls", "fleet", "display", "cli",
    "testing", "data",
}  # fmt: skip


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "sectigo_chain",
        include_external_packages=False,
        exclude_type_checking_imports=True,
        cache_dir=None,
    )


def test_only_the_listed_modules_sit_at_the_top() -> None:
    files = {p.name for p in PACKAGE.iterdir() if p.is_file()}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert files == TOP_LEVEL
    assert folders == PACKAGES


def test_every_package_says_what_it_holds_and_may_import() -> None:
    inits = [p for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE]
    assert len(inits) >= len(PACKAGES) - 1  # data/ holds files only
    for init in inits:
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8")))
        assert doc, f"{init} has no docstring"
        if init.parent.name != "commands":
            assert "import" in doc, f"{init}: say what the package may import"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    found: list[list[str]] = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                found.append([importer, *back])
    return found


def test_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = grimp.build_graph("sectigo_chain", include_external_packages=False, cache_dir=None)
    graph.add_import(importer="sectigo_chain.x509.certs", imported="sectigo_chain.x509.load")
    assert ["sectigo_chain.x509.certs", "sectigo_chain.x509.load", "sectigo_chain.x509.certs"] in (
        _cycles(graph)
    )


def test_layers_contract_is_kept() -> None:
    """import-linter's layers contract (pyproject.toml) passes: imports point one way."""
    exe = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(exe), "--config", str(PACKAGE.parent / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
