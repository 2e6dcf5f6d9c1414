"""Golden renders: every template rendered with fixed parameters must match the files in
tests/golden/templates/ exactly.

``<name>.json`` holds the input parameters, the payload, its decoded JSON, the masked
parameters, the flags and the SHA-256 of the template text; ``<name>.ps1`` is the standalone
script (secrets prompted, not embedded). A change to a template or to rendering shows up here
as a diff to review. After an intended change, regenerate with
``SECTIGO_UPDATE_GOLDEN=1 pytest tests/unit/test_templates_golden.py`` (every golden test then
fails on purpose, after writing), review the diff, and run again without the variable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.templates import render as templates
from sectigo_chain.templates.standalone import to_standalone

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "templates"
# Where update mode writes (the test of update mode points it at a copy).
GOLDEN = Path(os.environ.get("SECTIGO_GOLDEN_TEMPLATES_DIR") or GOLDEN)
UPDATE = os.environ.get("SECTIGO_UPDATE_GOLDEN") == "1"

THUMB = "AD98F9F3E47D753B65D482B3A45217BB6EF5E438"  # SHA-1 of the R46 self-signed root


def _r46_der_b64() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (REPO / "sectigo_chain/data/sectigo/r46-root-selfsigned.pem").read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return base64.b64encode(der).decode("ascii")


def golden_params() -> dict[str, dict[str, Any]]:
    der = _r46_der_b64()
    base: dict[str, dict[str, Any]] = {
        "observe": {"include_current_user": True, "include_system_user": True},
        "import_certificate": {"der_b64": der, "store_name": "CA", "friendly_name": "R46 cross"},
        "remove_certificate": {
            "thumbprint": THUMB,
            "store_location": "LocalMachine",
            "store_name": "Root",
            "physical_store": ".AuthRoot",
        },
        "disallow_certificate": {"der_b64": der},
        "import_pfx": {
            "pfx_b64": base64.b64encode(b"golden fixture, not a real PFX").decode("ascii"),
            "password": "golden-fixture-password",
            "thumbprint": THUMB,
            "store_name": "WebHosting",
            "exportable": False,
            "friendly_name": "www.example.com 2025",
        },
        "move_certificate": {
            "thumbprint": THUMB,
            "from_location": "LocalMachine",
            "from_store": "Root",
            "to_location": "LocalMachine",
            "to_store": "Disallowed",
            "remove_source": True,
        },
        "set_binding": {
            "site": 'O\'Brien \u2019s "shop"',
            "ip": "*",
            "port": 443,
            "host": "www.example.com",
            "thumbprint": THUMB,
            "store_name": "My",
            "ssl_flags_set": 1,
            "ssl_flags_clear": 4,
        },
        "remove_binding": {"site": "Default Web Site", "ip": "::1", "port": 8443, "host": ""},
        "set_root_auto_update": {"disabled": True},
        "restart": {"mode": "recycle", "app_pools": ["DefaultAppPool", "shop$(pool)"]},
        "verify_chain": {"thumbprint": THUMB, "store_location": "LocalMachine", "store_name": "My"},
        "inspect_ccs": {"files": ["www.example.com.pfx", "_.example.com.pfx"]},
        "rebuild_ccs_pfx": {
            "path": "\\\\files01\\ccs\\www.example.com.pfx",
            "backup_path": "\\\\files01\\ccs\\www.example.com.pfx.sectigo-backup-20261207T000000Z",
            "expected_sha256": "0123456789ABCDEF" * 4,
            "add_der_b64": [der],
            "password": "golden-fixture-password",
        },
        "restore_ccs_pfx": {
            "path": "\\\\files01\\ccs\\www.example.com.pfx",
            "backup_path": "\\\\files01\\ccs\\www.example.com.pfx.sectigo-backup-20261207T000000Z",
        },
        "outbound_tls_test": {"url": "https://acme.example.com/directory", "timeout_ms": 15000},
    }

    def payload(name: str) -> str:
        return templates.render(name, base[name]).payload

    # Composites carry other templates' payloads (the fixed renders above).
    steps = ("import_certificate", "remove_certificate", "restart")
    base["apply_plan"] = {
        "actions": [{"template": name, "payload": payload(name)} for name in steps],
        "observe": payload("observe"),
    }
    base["verify_host"] = {"include_current_user": True, "include_system_user": True}
    return base


def _record(name: str, params: dict[str, Any]) -> tuple[str, str]:
    script = templates.render(name, params)
    record = {
        "template": name,
        "params": params,
        "payload": script.payload,
        "decoded": script.decoded_params(),
        "masked_params": script.masked_params(),
        "secret_fields": sorted(script.secret_fields),
        "read_only": script.read_only,
        "idempotent": script.idempotent,
        "template_sha256": hashlib.sha256(script.text.encode("ascii")).hexdigest(),
    }
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    return text, to_standalone(script)


def test_every_template_has_golden_params() -> None:
    assert sorted(golden_params()) == sorted(templates.TEMPLATE_NAMES)


@pytest.mark.parametrize("name", templates.TEMPLATE_NAMES)
def test_golden_render(name: str) -> None:
    record, standalone = _record(name, golden_params()[name])
    json_path = GOLDEN / f"{name}.json"
    ps1_path = GOLDEN / f"{name}.ps1"
    if UPDATE:
        # Update mode writes the files and then fails: a run that rewrote its own expectations
        # has compared nothing. Review the diff and run again without the variable.
        GOLDEN.mkdir(parents=True, exist_ok=True)
        json_path.write_text(record, encoding="ascii", newline="\n")
        ps1_path.write_text(standalone, encoding="ascii", newline="\n")
        pytest.fail(
            f"SECTIGO_UPDATE_GOLDEN=1: wrote {json_path.name} and {ps1_path.name}; review the "
            "diff (git diff tests/golden/templates) and run again without the variable"
        )
    assert json_path.is_file(), f"missing {json_path}; see this module's docstring"
    assert record == json_path.read_text(encoding="ascii")
    assert standalone == ps1_path.read_text(encoding="ascii")
    # The golden standalone never holds the import_pfx secrets.
    assert "golden-fixture-password" not in standalone


def test_golden_files_are_all_used() -> None:
    names = set(templates.TEMPLATE_NAMES)
    for path in GOLDEN.iterdir():
        assert path.suffix in (".json", ".ps1")
        assert path.stem in names, f"stale golden file {path.name}"


def test_update_mode_writes_then_fails(tmp_path: Path) -> None:
    """SECTIGO_UPDATE_GOLDEN=1 rewrites the files and fails the run (it compared nothing)."""
    copy = tmp_path / "templates"
    shutil.copytree(REPO / "tests" / "golden" / "templates", copy)
    (copy / "observe.json").write_text("stale\n", encoding="ascii")
    env = {**os.environ, "SECTIGO_UPDATE_GOLDEN": "1", "SECTIGO_GOLDEN_TEMPLATES_DIR": str(copy)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "test_golden_render and observe"],
        env=env, capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout
    assert "SECTIGO_UPDATE_GOLDEN=1: wrote observe.json and observe.ps1" in run.stdout
    assert "1 failed" in run.stdout
    assert (copy / "observe.json").read_bytes() == (
        REPO / "tests" / "golden" / "templates" / "observe.json"
    ).read_bytes()
