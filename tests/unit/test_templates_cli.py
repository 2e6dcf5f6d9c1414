"""``sectigo-chain render``: in-process through ``cli.main`` and once as a real process."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sectigo_chain.cli import main as cli
from sectigo_chain.templates import render as templates
from sectigo_chain.templates.standalone import to_standalone

REPO = Path(__file__).resolve().parents[2]
THUMB = "AD98F9F3E47D753B65D482B3A45217BB6EF5E438"
PASSWORD = "cli-secret-'\u2019-password"
PFX = b"\x30\x82 fake pfx for the cli test"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(["render", *argv])
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _payload_of(text: str) -> dict[str, object]:
    line = next(ln for ln in text.splitlines() if ln.startswith("$SectigoPayload = '"))
    return templates.decode_payload(line.split("'")[1])


def test_render_template_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys,
        "set_binding",
        "--param", "site=Shop 'A' $(x)",
        "--param", f"thumbprint={THUMB.lower()}",
        "--param", "port=8443",
        "--param", "host=www.example.com",
        "--param", "ssl_flags_set=1",
    )  # fmt: skip
    assert (code, err) == (0, "")
    expected = templates.render(
        "set_binding",
        {
            "site": "Shop 'A' $(x)",
            "thumbprint": THUMB,
            "port": 8443,
            "host": "www.example.com",
            "ssl_flags_set": 1,
        },
    )
    assert out == to_standalone(expected)


def test_repeated_param_makes_a_list_and_params_json_merges(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"mode": "recycle"}))
    code, out, _ = _run(
        capsys, "restart", "--params-json", str(params), "--param", "app_pools=A",
        "--param", "app_pools=B",
    )  # fmt: skip
    assert code == 0
    assert _payload_of(out) == {"mode": "recycle", "app_pools": ["A", "B"]}
    code, out, _ = _run(capsys, "restart", "--param", "mode=recycle", "--param", "app_pools=A")
    assert _payload_of(out)["app_pools"] == ["A"]


def test_json_output_masks_secrets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "import_pfx", "--param", f"thumbprint={THUMB}", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["secrets_embedded"] is False
    assert document["scripts"][0]["params"]["password"] == "**********"
    assert "Read-Host -AsSecureString" in document["script"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["nope"], "neither a template"),
        (["observe", "--param", "x"], "KEY=VALUE"),
        (["observe", "--param", "bogus=1"], "bogus: Extra inputs"),
        (["verify_chain", "--param", "thumbprint=zz"], "thumbprint"),
        (["import_pfx", "--param", f"password={PASSWORD}"], "secret on the command line"),
        (["import_pfx", "--param", f"thumbprint={THUMB}", "--embed-secrets"], "needs --out"),
        (["import_pfx", "--param", f"thumbprint={THUMB}", "--pfx", "x.pfx"], "only matter"),
        (["observe", "--params-json", "/nonexistent/p.json"], "cannot read"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert PASSWORD not in err


def test_embedded_secrets_go_only_into_a_new_private_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pfx = tmp_path / "site.pfx"
    pfx.write_bytes(PFX)
    monkeypatch.setenv("SECTIGO_TEST_PFX_PASSWORD", PASSWORD)
    out_file = tmp_path / "import.ps1"
    argv = [
        "import_pfx", "--param", f"thumbprint={THUMB}", "--pfx", str(pfx),
        "--password-env", "SECTIGO_TEST_PFX_PASSWORD", "--embed-secrets", "--out", str(out_file),
    ]  # fmt: skip
    old_umask = os.umask(0o000)  # even a permissive umask must not widen the file
    try:
        code, out, err = _run(capsys, *argv)
    finally:
        os.umask(old_umask)
    assert code == 0, err
    assert out == ""
    assert PASSWORD not in err
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    payload = _payload_of(out_file.read_text(encoding="ascii"))
    assert payload["password"] == PASSWORD
    assert payload["pfx_b64"] == base64.b64encode(PFX).decode()
    # A second run refuses to overwrite without --force, and --force recreates it private.
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert "exists" in err
    out_file.chmod(0o644)
    code, _, _ = _run(capsys, *argv, "--force")
    assert code == 0
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600


def test_plan_file_renders_one_script_for_all_actions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    actions = [
        {"template": "remove_certificate", "params": {"thumbprint": THUMB, "store_name": "Root"},
         "reason": "R46 self-signed makes IIS serve the short chain"},
        {"template": "import_pfx", "params": {"thumbprint": THUMB}},
        {"template": "restart", "params": {"mode": "iisreset"}},
    ]  # fmt: skip
    plan.write_text(json.dumps({"actions": actions}))
    out_file = tmp_path / "plan.ps1"
    code, _, err = _run(capsys, str(plan), "--out", str(out_file))
    assert code == 0, err
    text = out_file.read_text(encoding="ascii")
    assert "(step 1 of 3)" in text
    assert "(step 3 of 3)" in text
    assert text.index("template remove_certificate") < text.index("template restart")
    assert "Read-Host -AsSecureString" in text
    # A script without secrets is simply rewritten.
    code, _, _ = _run(capsys, str(plan), "--out", str(out_file))
    assert code == 0
    assert out_file.read_text(encoding="ascii") == text
    code, _, err = _run(capsys, str(plan), "--param", "a=b")
    assert code == 2
    plan.write_text(json.dumps({"steps": []}))
    code, _, err = _run(capsys, str(plan))
    assert code == 2
    assert "actions" in err


def test_render_as_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "sectigo_chain", "render", "observe", "--param",
         "include_current_user=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == to_standalone(
        templates.render("observe", {"include_current_user": False})
    )
    bad = subprocess.run(
        [sys.executable, "-m", "sectigo_chain", "render", "observe", "--param", "x=1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_render_accepts_the_plan_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sectigo-chain plan --json` output feeds `render` directly."""
    from sectigo_chain.cli.main import main as cli_main

    assert cli_main(["plan", "--target", "sim://broken-r46", "--json"]) == 0
    doc = capsys.readouterr().out
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(doc)
    assert cli_main(["render", str(plan_file)]) == 0
    script = capsys.readouterr().out
    kinds = [a["template"] for a in json.loads(doc)["plan"]["actions"]]
    assert kinds
    for index, name in enumerate(kinds, 1):
        assert f"template {name} (step {index} of {len(kinds)})" in script
