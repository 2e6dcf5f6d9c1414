"""DesiredState / ObservedState / Plan models: frozen, strict, schema-exportable, secrets masked."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretBytes, SecretStr, ValidationError

from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.state.models import (
    BindingSpec,
    CertificateSpec,
    DesiredState,
    ObservedState,
    parse_der_b64,
)
from sectigo_chain.state.plan_models import Action, Plan


def test_observed_state_parses_the_observe_document_and_finds_certificates() -> None:
    host = SimulatedHost("misplaced")
    doc = host.model.observe_document()
    obs = ObservedState.model_validate(doc)
    cross_tp = doc["certificates"][0]["thumbprint"]
    assert obs.find(cross_tp)
    lab = host.lab
    from sectigo_chain.x509.certs import thumbprint

    tp = thumbprint(lab.r46_cross)
    places = sorted((c.store, c.physical_store) for c in obs.find(tp))
    # CurrentUser\Root shows LocalMachine\Root's copy (no physical store: an inherited view)
    assert places == [
        ("CurrentUser\\CA", ".Default"),
        ("CurrentUser\\Root", None),
        ("LocalMachine\\Root", ".Default"),
    ]
    assert obs.find(tp.lower())  # thumbprints normalized
    assert obs.site("default web site") is not None
    assert obs.auto_root_update_on


def test_models_are_frozen_and_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        DesiredState.model_validate({"certificates": [], "surprise": 1})
    state = DesiredState()
    with pytest.raises(ValidationError):
        state.restart = "none"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CertificateSpec(role="cross_sign", thumbprint="not hex", ensure="present", store_name="CA")


def test_json_schemas_export() -> None:
    for model in (DesiredState, ObservedState, Plan):
        schema = model.model_json_schema()
        assert schema["type"] == "object"
        json.dumps(schema)
    assert "certificates" in DesiredState.model_json_schema()["properties"]


def test_secrets_are_masked_in_dumps_and_reprs() -> None:
    spec = BindingSpec(
        site="s", pfx=SecretBytes(b"PFXBYTES-123"), pfx_password=SecretStr("pw-XYZ-987")
    )
    state = DesiredState(bindings=(spec,))
    for text in (repr(state), str(state), state.model_dump_json()):
        assert "PFXBYTES-123" not in text
        assert "pw-XYZ-987" not in text
    action = Action(
        kind="import_pfx",
        reason="r",
        template="import_pfx",
        params={"thumbprint": "A" * 40},
        secret_params={"password": SecretStr("pw-XYZ-987")},
    )
    plan = Plan(actions=(action,))
    for text in (repr(plan), str(plan), plan.model_dump_json(), repr(action)):
        assert "pw-XYZ-987" not in text
    assert action.render_params()["password"] == "pw-XYZ-987"
    assert "secret_params" not in plan.model_dump()["actions"][0]


def test_parse_der_b64_is_cached() -> None:
    host = SimulatedHost("fixed")
    obs = ObservedState.model_validate(host.model.observe_document())
    c = obs.certificates[0]
    assert c.certificate is c.certificate
    assert parse_der_b64(c.der_b64) is c.certificate
