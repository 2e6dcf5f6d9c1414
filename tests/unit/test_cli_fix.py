"""plan / apply / rollback subcommands, in-process via sectigo_chain.cli.main.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sectigo_chain.cli.main import APPLY_FAILED, CHAIN_PROBLEMS, OK, USAGE, main


def test_plan_text_and_detailed_exitcode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--target", "sim://broken-r46"]) == OK
    out = capsys.readouterr().out
    assert "import_cross_sign" in out
    assert "remove_self_signed_root" in out
    assert main(["plan", "--target", "sim://broken-r46", "--detailed-exitcode"]) == CHAIN_PROBLEMS
    assert main(["plan", "--target", "sim://fixed", "--detailed-exitcode"]) == OK


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--target", "sim://misplaced", "--json"]) == OK
    doc = json.loads(capsys.readouterr().out)
    kinds = [a["kind"] for a in doc["plan"]["actions"]]
    assert kinds[0] == "import_cross_sign"
    assert kinds[-1] == "restart"
    assert all(a["reason"] for a in doc["plan"]["actions"])


def test_apply_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["apply", "--target", "sim://broken-e46", "--yes", "--json",
                 "--journal-dir", str(tmp_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == OK, captured.err
    doc = json.loads(captured.out)
    assert doc["target"] == "sim://broken-e46"
    assert doc["changed"] is True
    assert doc["after"]["plan_empty"] is True
    assert {"kind", "reason"} <= set(doc["plan"]["actions"][0])
    assert isinstance(doc["plan"]["noop_reasons"], list)
    assert doc["plan"]["warnings"]
    assert Path(doc["journal"]).parent == tmp_path
    assert main(["rollback", doc["journal"], "--json"]) == OK
    assert json.loads(capsys.readouterr().out)["complete"] is True


def test_apply_without_yes_on_a_non_tty_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal: never asks
    assert main(["apply", "--target", "sim://broken-r46", "--journal-dir", str(tmp_path)]) == USAGE
    assert "not confirmed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_gpo_root_refusal_exits_2_with_guidance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "--target", "sim://gpo-root", "--yes"]) == USAGE
    err = capsys.readouterr().err
    assert "Group Policy" in err
    assert "--allow-group-policy" in err


def test_drift_after_apply_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["apply", "--target", "sim://drift", "--yes", "--journal-dir", str(tmp_path)])
    assert code == CHAIN_PROBLEMS
    assert "still finds work" in capsys.readouterr().err


def test_pfx_password_comes_from_env_never_argv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sectigo_chain.testing.lab import default_lab

    leaf = default_lab().issue_leaf(["cli.example.test"])
    pfx = tmp_path / "site.pfx"
    pfx.write_bytes(leaf.pfx("Very-Secret-1"))
    monkeypatch.setenv("PFXPW", "Very-Secret-1")
    code = main(["apply", "--target", "sim://broken-r46", "--pfx", str(pfx), "--pfx-password-env",
                 "PFXPW", "--yes", "--json", "--journal-dir", str(tmp_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == OK, captured.err
    doc = json.loads(captured.out)
    assert "import_pfx" in [a["kind"] for a in doc["plan"]["actions"]]
    for text in (captured.out, captured.err, Path(doc["journal"]).read_text()):
        assert "Very-Secret-1" not in text
    with pytest.raises(SystemExit):
        main(["plan", "--target", "sim://fixed", "--pfx-password", "x"])


def test_bad_target_and_bad_journal_are_usage_errors(tmp_path: Path) -> None:
    assert main(["plan", "--target", "nowhere"]) == USAGE
    assert main(["plan", "--target", "sim://no-such-scenario"]) == USAGE
    bad = tmp_path / "j.json"
    bad.write_text("{}")
    assert main(["rollback", str(bad)]) == USAGE
    assert APPLY_FAILED == 4
