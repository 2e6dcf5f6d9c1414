"""Tests that kill mutants of state/planner.py that the rest of the suite let live (issue 20):
Plan.root, a PFX without password, which PFX bytes an old build gets."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from pydantic import SecretBytes, SecretStr

from sectigo_chain.state.models import DesiredState, ObservedState
from sectigo_chain.state.plan_models import Plan
from sectigo_chain.state.planner import plan
from sectigo_chain.x509.load import to_legacy_pfx

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "plans"
PASSWORD = "golden"


def _case(name: str) -> tuple[DesiredState, ObservedState, dt.datetime, dict[str, Any]]:
    case = json.loads((GOLDEN / f"{name}.json").read_text())
    desired = DesiredState.model_validate(case["desired"])
    observed = ObservedState.model_validate(case["observed"])
    return desired, observed, dt.datetime.fromisoformat(case["at"]), case


def _plan(name: str, **kw: Any) -> Plan:
    desired, observed, at, _ = _case(name)
    return plan(desired, observed, at=at, **kw)


def test_plan_root_names_the_root_the_leaf_chains_to() -> None:
    assert _plan("broken-r46").root == "R46"
    assert _plan("broken-e46").root == "E46"
    assert _plan("fixed").root == "R46"


def test_plan_root_is_none_when_no_leaf_is_known() -> None:
    desired, observed, at, _ = _case("broken-r46")
    bindings = tuple(b.model_copy(update={"leaf_der_b64": None}) for b in desired.bindings)
    desired = desired.model_copy(update={"bindings": bindings})
    # The site's binding names a certificate the host does not have.
    sites = []
    for site in observed.sites:
        rebound = tuple(
            b.model_copy(update={"certificate_hash": "00" * 20}) if b.certificate_hash else b
            for b in site.bindings
        )
        sites.append(site.model_copy(update={"bindings": rebound}))
    observed = observed.model_copy(update={"sites": tuple(sites)})
    result = plan(desired, observed, at=at)
    assert result.root is None
    assert "could not tell which root the bound certificate chains to" in result.warnings


def _pfx_desired(
    name: str, *, password: str | None, aes: bool
) -> tuple[DesiredState, bytes, bytes]:
    desired, _, _, case = _case(name)
    (binding,) = desired.bindings
    assert binding.leaf_der_b64 is not None
    cert = x509.load_der_x509_certificate(base64.b64decode(binding.leaf_der_b64))
    key = ec.derive_private_key(case["pfx"]["seed"], ec.SECP256R1())
    legacy = to_legacy_pfx(key, cert, PASSWORD)
    modern = pkcs12.serialize_key_and_certificates(
        None, key, cert, None, BestAvailableEncryption(PASSWORD.encode())
    )
    update: dict[str, Any] = {
        "pfx_password": SecretStr(password) if password is not None else None,
        "pfx": SecretBytes(modern if aes else legacy),
        "pfx_protection": "aes" if aes else "legacy",
        "legacy_pfx": SecretBytes(legacy) if aes else None,
    }
    binding = binding.model_copy(update=update)
    return desired.model_copy(update={"bindings": (binding,)}), legacy, modern


def _imported_pfx(result: Plan) -> bytes:
    (action,) = [a for a in result.actions if a.kind == "import_pfx"]
    return base64.b64decode(action.render_params()["pfx_b64"])


def test_a_pfx_without_password_is_not_imported() -> None:
    desired, _, _ = _pfx_desired("pfx-new-sni-binding", password=None, aes=False)
    _, observed, at, _ = _case("pfx-new-sni-binding")
    result = plan(desired, observed, at=at)
    assert "import_pfx" not in [a.kind for a in result.actions]
    with_password, _, _ = _pfx_desired("pfx-new-sni-binding", password=PASSWORD, aes=False)
    result = plan(with_password, observed, at=at)
    assert "import_pfx" in [a.kind for a in result.actions]
    (action,) = [a for a in result.actions if a.kind == "import_pfx"]
    assert action.render_params()["password"] == PASSWORD
    assert action.params["exportable"] is False


def test_an_old_build_gets_the_legacy_pfx_and_a_new_one_the_aes_pfx() -> None:
    desired, legacy, modern = _pfx_desired("pfx-aes-old-build", password=PASSWORD, aes=True)
    _, observed, at, _ = _case("pfx-aes-old-build")
    assert observed.os.build == 14393
    old = plan(desired, observed, at=at)
    assert _imported_pfx(old) == legacy
    assert "re-encoded with 3DES/SHA-1: build 14393" in old.actions[0].reason
    new_os = observed.os.model_copy(update={"build": 17763})
    new = plan(desired, observed.model_copy(update={"os": new_os}), at=at)
    assert _imported_pfx(new) == modern
    assert "re-encoded" not in new.actions[0].reason
    # A legacy-protected PFX is sent as it is, whatever the build.
    legacy_desired, legacy_bytes, _ = _pfx_desired(
        "pfx-aes-old-build", password=PASSWORD, aes=False
    )
    assert _imported_pfx(plan(legacy_desired, observed, at=at)) == legacy_bytes


def test_refusal_message_says_why_and_how_to_go_on() -> None:
    import pytest

    from sectigo_chain.errors import PlanRefused

    desired, observed, at, _ = _case("gpo-root")
    with pytest.raises(PlanRefused) as info:
        plan(desired, observed, at=at)
    assert str(info.value).startswith(
        "refusing to plan: a root pushed by Group Policy or Active Directory cannot be "
        "removed locally"
    )
    assert any("--allow-group-policy" in line for line in info.value.guidance)
    assert plan(desired, observed, at=at, allow_group_policy_override=True).actions
