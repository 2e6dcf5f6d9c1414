"""Golden plan cases: tests/golden/plans/*.json (desired + observed -> expected plan).

The inputs use the real Sectigo certificates; see tests/golden/make_plan_cases.py for how they
were written and why each expectation follows from the manual procedure.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from pydantic import SecretBytes, SecretStr

from sectigo_chain.errors import PlanRefused
from sectigo_chain.state.models import DesiredState, ObservedState
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.x509.load import to_legacy_pfx

CASES = sorted((Path(__file__).parent.parent / "golden" / "plans").glob("*.json"))
PASSWORD = "golden"


def _with_pfx(desired: DesiredState, spec: dict[str, Any]) -> DesiredState:
    (binding,) = desired.bindings
    assert binding.leaf_der_b64 is not None
    cert = x509.load_der_x509_certificate(base64.b64decode(binding.leaf_der_b64))
    key = ec.derive_private_key(spec["seed"], ec.SECP256R1())
    legacy = to_legacy_pfx(key, cert, PASSWORD)
    update: dict[str, Any] = {"pfx_password": SecretStr(PASSWORD), "pfx": SecretBytes(legacy),
                              "pfx_protection": "legacy"}  # fmt: skip
    if spec["aes"]:
        aes = pkcs12.serialize_key_and_certificates(
            None, key, cert, None, BestAvailableEncryption(PASSWORD.encode())
        )
        update.update(pfx=SecretBytes(aes), pfx_protection="aes", legacy_pfx=SecretBytes(legacy))
    return desired.model_copy(update={"bindings": (binding.model_copy(update=update),)})


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 20


def test_regenerating_the_golden_cases_rewrites_nothing(tmp_path: Path) -> None:
    """The generator is deterministic (seeded keys, RFC 6979 signatures) and the committed
    files are its output: a regeneration after an unrelated change shows no diff."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "SECTIGO_PLAN_GOLDEN_OUT": str(tmp_path)}
    subprocess.run(
        [sys.executable, str(repo / "tests/golden/make_plan_cases.py")], env=env, check=True
    )
    made = sorted(p.name for p in tmp_path.glob("*.json"))
    assert made == sorted(p.name for p in CASES)
    for name in made:
        assert (tmp_path / name).read_bytes() == (CASES[0].parent / name).read_bytes(), name


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_plan(path: Path) -> None:
    case = json.loads(path.read_text())
    desired = DesiredState.model_validate(case["desired"])
    if case["pfx"]:
        desired = _with_pfx(desired, case["pfx"])
    observed = ObservedState.model_validate(case["observed"])
    expected = case["expected"]

    def run() -> Plan:
        return plan(
            desired,
            observed,
            at=dt.datetime.fromisoformat(case["at"]),
            allow_group_policy_override=case["allow_group_policy_override"],
        )

    if "refused" in expected:
        with pytest.raises(PlanRefused) as info:
            run()
        text = str(info.value) + " ".join(info.value.guidance)
        for needle in expected["refused"]:
            assert needle in text, (path.stem, needle)
        # What tells this refusal from its sibling (Group Policy vs Active Directory).
        for needle in expected.get("refused_absent", []):
            assert needle not in text, (path.stem, needle)
        return
    result = run()
    got = [(a.kind, a.template) for a in result.actions]
    assert got == [(e["kind"], e["template"]) for e in expected["actions"]], path.stem
    for action, want in zip(result.actions, expected["actions"], strict=False):
        for key, value in want["params"].items():
            assert action.params[key] == value, (path.stem, action.kind, key)
        assert action.reason
    for needle in expected.get("noops", []):
        assert any(needle in r for r in result.noop_reasons), (needle, result.noop_reasons)
    if expected.get("warnings") == []:
        assert result.warnings == ()
    for needle in expected.get("warnings", []):
        assert any(needle in w for w in result.warnings), (needle, result.warnings)
    for needle in expected.get("no_warnings", []):
        assert not any(needle in w for w in result.warnings), (needle, result.warnings)
    if "previous_binding" in expected:
        (binding,) = [a for a in result.actions if a.kind == "set_binding"]
        assert binding.previous_binding is not None
        assert binding.previous_binding.certificate_hash == expected["previous_binding"]
    for index, needle in expected.get("reason_contains", {}).items():
        assert needle in result.actions[int(index)].reason
    dumped = result.model_dump_json()
    assert "pfx_b64" not in dumped
    assert '"password"' not in dumped
