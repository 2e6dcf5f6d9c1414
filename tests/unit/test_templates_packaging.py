"""The templates ship in the wheel and are found in both layouts.

* The real wheel (``pip wheel --no-deps --no-build-isolation``, hatchling from the test
  environment, no network) contains ``sectigo_chain/ps_templates/<name>.ps1`` for every
  template, byte for byte the repository's files; unpacked on its own (nothing else on
  ``sys.path``) it renders every template from its own copy.
* The editable wheel (hatchling's ``build_editable``, what ``pip install -e`` installs; needs
  the ``editables`` package) puts the repository on ``sys.path`` through a ``.pth`` file;
  through it the templates resolve to the live ``<repo>/ps_templates``, not to the copy
  hatchling also drops into site-packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sectigo_chain.templates import render as templates

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
{setup}
import sectigo_chain, sectigo_chain.templates.render as t
texts = {{name: t.template_text(name) for name in t.TEMPLATE_NAMES}}
rendered = t.render("observe", {{}})
print(json.dumps({{
    "package": sectigo_chain.__path__[0] if hasattr(sectigo_chain, "__path__") else "",
    "template_dir": str(t.template_dir()),
    "names": list(t.TEMPLATE_NAMES),
    "texts": texts,
    "observe_payload": rendered.payload,
}}))
"""


def _probe(setup: str, cwd: Path) -> dict[str, object]:
    # -I: no PYTHONPATH, no current directory, no user site: only what `setup` adds.
    result = subprocess.run(
        [sys.executable, "-I", "-c", PROBE.format(setup=setup)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:  # pragma: no cover - environment problem, reported loudly
        pytest.fail(
            f"{', '.join(missing)} must be installed in the test environment to build wheels "
            "offline (pip install hatchling editables); the test never downloads build tools"
        )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("sectigo_chain-*.whl")
    return built


def test_wheel_contains_every_template(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in templates.TEMPLATE_NAMES:
            member = f"sectigo_chain/ps_templates/{name}.ps1"
            assert member in names
            assert archive.read(member) == (REPO / "ps_templates" / f"{name}.ps1").read_bytes()
        regions = sorted((REPO / "ps_templates" / "_regions").glob("*.ps1"))
        assert regions
        for region in regions:
            member = f"sectigo_chain/ps_templates/_regions/{region.name}"
            assert archive.read(member) == region.read_bytes()
        shipped = {n for n in names if n.startswith("sectigo_chain/ps_templates/")}
        assert len(shipped) == len(templates.TEMPLATE_NAMES) + len(regions)


def test_installed_wheel_finds_its_own_templates(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    found = _probe(f"sys.path.insert(0, {str(site)!r})", tmp_path)
    assert Path(str(found["package"])).resolve() == (site / "sectigo_chain").resolve()
    assert (
        Path(str(found["template_dir"])).resolve()
        == (site / "sectigo_chain" / "ps_templates").resolve()
    )
    assert found["names"] == list(templates.TEMPLATE_NAMES)
    assert found["texts"] == {n: templates.template_text(n) for n in templates.TEMPLATE_NAMES}
    assert found["observe_payload"] == templates.render("observe", {}).payload


def test_editable_install_finds_the_repository_templates(tmp_path: Path) -> None:
    _require("hatchling", "editables")
    out = tmp_path / "editable"
    out.mkdir()
    build = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from hatchling.build import build_editable; "
            "print(build_editable(sys.argv[1]))",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    site = tmp_path / "site"
    with zipfile.ZipFile(out / build.stdout.strip()) as archive:
        archive.extractall(site)
        # hatchling also copies the force-included templates into site-packages
        # (sectigo_chain/ps_templates/, no __init__.py): a stale copy that must NOT win.
        stale = any(n.startswith("sectigo_chain/ps_templates/") for n in archive.namelist())
    assert list(site.glob("*.pth")), "an editable wheel adds the repository with a .pth file"
    found = _probe(f"import site; site.addsitedir({str(site)!r})", tmp_path)
    assert Path(str(found["package"])).resolve() == (REPO / "sectigo_chain").resolve()
    assert Path(str(found["template_dir"])).resolve() == (REPO / "ps_templates").resolve()
    assert found["texts"] == {n: templates.template_text(n) for n in templates.TEMPLATE_NAMES}
    if stale:
        assert not Path(str(found["template_dir"])).resolve().is_relative_to(site.resolve())
