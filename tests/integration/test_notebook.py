"""docs/notebooks/incident.ipynb runs top to bottom in a real Jupyter kernel, without errors.

The test installs a ``python3`` kernel spec for this interpreter into a temporary
``JUPYTER_PATH`` (so CI needs no extra step), executes every cell with nbclient and checks what
the cells showed: the rich (HTML) reports, the failing legacy profile before the fix, the
passing verification after it, and the fleet with its progress bar.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipykernel.kernelspec import install
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "docs" / "notebooks" / "incident.ipynb"


def _read() -> Any:
    return nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]


def _outputs(cell: Any) -> str:
    """Every text/HTML/Markdown output of a cell, joined."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        for mime in ("text/plain", "text/html", "text/markdown"):
            value = out.get("data", {}).get(mime)
            if value:
                parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def _html(cell: Any) -> str:
    return "\n".join(
        str(out["data"]["text/html"])
        for out in cell.get("outputs", [])
        if "text/html" in out.get("data", {})
    )


def _cell(nb: Any, needle: str) -> Any:
    """The first code cell whose source contains ``needle``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and needle in cell.source:
            return cell
    raise AssertionError(f"no code cell contains {needle!r}")


def test_checked_in_notebook_has_no_outputs() -> None:
    nb = _read()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 8
    for cell in code:
        assert cell.outputs == []
        assert cell.execution_count is None


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("jupyter")
    install(kernel_name="python3", prefix=str(tmp))
    work = tmp / "work"
    work.mkdir()
    env = {
        "JUPYTER_PATH": str(tmp / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "IPYTHONDIR": str(tmp / "ipython"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        nb = _read()
        client = NotebookClient(
            nb,
            kernel_name="python3",
            timeout=120,
            startup_timeout=120,
            resources={"metadata": {"path": str(work)}},
        )
        client.execute()  # raises CellExecutionError if any cell fails
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def test_no_cell_errors(executed: Any) -> None:
    for cell in executed.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None
            assert all(o.get("output_type") != "error" for o in cell.outputs)


def test_check_shows_the_short_chain_as_a_failing_picture(executed: Any) -> None:
    cell = _cell(executed, "before = check_endpoint(")
    html = _html(cell)
    assert "SHORT_CHAIN_R46" in html
    assert 'class="sc-box sc-fail"' in html  # the legacy row: red boxes
    assert 'class="sc-box sc-pass"' in html  # the modern row: green boxes
    assert "<script" not in html
    assert "fail ['SHORT_CHAIN_R46']" in _outputs(_cell(executed, "sorted(before.codes)"))


def test_diagnosis_names_the_cross_sign(executed: Any) -> None:
    text = _outputs(_cell(executed, "sc.cross_sign_for("))
    assert "needs_cross_sign R46" in text
    assert "USERTrust RSA" in text


def test_plan_and_apply_render_as_html(executed: Any) -> None:
    plan_html = _html(_cell(executed, "the_plan = plan("))
    assert "import_cross_sign" in plan_html
    assert "remove_self_signed_root" in plan_html
    apply_html = _html(_cell(executed, "result = apply("))
    assert "The host now matches the desired state" in apply_html


def test_verify_passes(executed: Any) -> None:
    cell = _cell(executed, "verified = verify(")
    html = _html(cell)
    assert 'data-verdict="pass"' in html
    assert 'data-verdict="fail"' not in html
    assert ">PASS<" in html
    text = _outputs(_cell(executed, "print(verified)"))
    assert text.splitlines()[0].endswith(": PASS")
    assert "\x1b[" not in text  # no ANSI codes outside a terminal


def _layout(text: str) -> list[str]:
    """The lines with what differs between two hosts (target, ports, key sizes) blotted out."""
    text = re.sub(r"sim://[\w-]+", "sim://X", text)
    return [re.sub(r"\d+", "N", line) for line in text.strip().splitlines()]


def test_the_cell_that_says_so_shows_exactly_what_the_cli_prints(
    executed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The notebook's "what `sectigo-chain verify` prints" for its fixed host, and the CLI's
    output for a host in the same state (``sim://fixed``): the same text, line for line."""
    from sectigo_chain.cli.main import main

    assert main(["verify", "--target", "sim://fixed"]) == 0
    cli = capsys.readouterr().out
    cell = _cell(executed, "what `sectigo-chain verify` prints")
    assert _layout(_outputs(cell)) == _layout(cli)


def test_fleet_shows_progress_and_a_report(executed: Any) -> None:
    cell = _cell(executed, "fleet = run_fleet(")
    html = _html(cell)
    assert "sc-progress" in html
    assert "5/5" in html
    assert "web05" in html
    assert "PlanRefused" in html
    statuses = _outputs(_cell(executed, "fleet.summary_line()"))
    for name, status in (
        ("web01", "applied"),
        ("web02", "unchanged"),
        ("web03", "applied"),
        ("web04", "applied"),
        ("web05", "failed"),
    ):
        assert f"'{name}': '{status}'" in statuses
