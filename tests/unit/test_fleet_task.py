"""``fleet.task.run_task``: one host as one task (what the Ansible collection calls)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.fleet.task import run_task


def test_plan_changes_nothing_and_diff_shows_the_same_state(tmp_path: Path) -> None:
    out = run_task({"name": "w", "target": "sim://broken-r46"}, "plan", diff=True)
    assert out["changed"] is True
    assert out["failed"] is False
    assert out["status"] == "planned"
    assert [a["kind"] for a in out["row"]["actions"]] == [
        "import_cross_sign", "remove_self_signed_root", "restart",
    ]  # fmt: skip
    assert out["diff"]["before"] == out["diff"]["after"]
    assert "nothing changed" in out["diff"]["after_header"]


def test_apply_changes_the_host_and_the_diff_says_how(tmp_path: Path) -> None:
    out = run_task(
        {"name": "w", "target": "sim://broken-r46"}, "apply", diff=True, journal_dir=tmp_path
    )
    assert out["changed"] is True
    assert out["failed"] is False
    assert out["status"] == "applied"
    assert Path(out["row"]["journal"]).parent == tmp_path
    delta = [
        line
        for line in difflib.unified_diff(
            out["diff"]["before"].splitlines(), out["diff"]["after"].splitlines(), lineterm=""
        )
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert len(delta) == 2
    added = next(d for d in delta if d.startswith("+"))
    removed = next(d for d in delta if d.startswith("-"))
    assert added.startswith("+cert LocalMachine\\CA")
    assert "Root R46" in added
    assert removed.startswith("-cert LocalMachine\\Root")
    assert "Root R46" in removed


def test_a_fixed_host_is_not_changed(tmp_path: Path) -> None:
    out = run_task({"name": "w", "target": "sim://fixed"}, "apply", journal_dir=tmp_path)
    assert out["changed"] is False
    assert out["status"] == "unchanged"
    assert out["msg"] == "w: unchanged (no action)"


def test_a_failing_host_is_failed_not_raised(tmp_path: Path) -> None:
    out = run_task(
        {"name": "w", "target": "sim://broken-r46", "sim_faults": {"fail_action": 1}},
        "apply",
        journal_dir=tmp_path,
    )
    assert out["failed"] is True
    assert out["status"] == "rolled_back"
    assert out["msg"].startswith("w: rolled_back: ")


@pytest.mark.parametrize(
    ("host", "match"),
    [
        ({"name": "w", "target": "sim://broken-r46", "sitee": "x"}, "sitee"),
        ({"name": "w", "target": "ftp://x"}, "target"),
        ({"name": "w", "target": "sim://broken-r46", "port": 0}, "port"),
        ({"name": "w", "target": "sim://broken-r46", "pfx": "/nonexistent.pfx"}, "not found"),
    ],
)
def test_bad_settings_are_input_errors(host: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        run_task(host, "plan")


def test_unknown_mode_is_an_input_error() -> None:
    with pytest.raises(InputError, match="mode"):
        run_task({"target": "sim://fixed"}, "deploy")  # type: ignore[arg-type]


def test_an_unreachable_host_with_diff_is_a_failed_result_not_an_exception(
    tmp_path: Path,
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run_task(
        {"name": "w", "target": f"winrm://u@127.0.0.1:{port}", "winrm_cert_validation": False},
        "plan",
        winrm_password="Hunter2-secret",
        diff=True,
    )
    assert out["failed"] is True
    assert out["row"]["error"]["unreachable"] is True
    assert "diff" not in out or out["diff"]["before"] == out["diff"]["after"]
    assert "Hunter2" not in str(out)
