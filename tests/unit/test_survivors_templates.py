"""Tests that kill mutants of templates/render.py that the rest of the suite let live
(issue 20; each test names the decision it pins)."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretBytes, SecretStr

from sectigo_chain.errors import TemplateError
from sectigo_chain.templates import render as templates

THUMB = "AD98F9F3E47D753B65D482B3A45217BB6EF5E438"


def test_decode_payload_rejects_characters_outside_base64() -> None:
    good = templates.encode_payload({"a": 1})
    assert templates.decode_payload(good) == {"a": 1}
    # Without strict validation the stray characters would be dropped and "{"a":1}" decoded.
    with pytest.raises(ValueError, match="base64"):
        templates.decode_payload(good[:4] + "!$" + good[4:])


def test_decode_payload_wants_an_object_not_any_json() -> None:
    for value in ([1], "text", 3, None):
        payload = base64.b64encode(json.dumps(value).encode()).decode()
        with pytest.raises(TemplateError, match="must decode to a JSON object"):
            templates.decode_payload(payload)


def test_validation_message_names_the_template_and_field_without_a_url() -> None:
    with pytest.raises(TemplateError) as info:
        templates.render("set_binding", {"site": "x", "thumbprint": "zz"})
    text = str(info.value)
    assert text.startswith("invalid parameters for template 'set_binding': thumbprint: ")
    assert "40 hex digits" in text
    assert "errors.pydantic.dev" not in text
    assert "zz" not in text  # the input value is never quoted
    with pytest.raises(TemplateError) as info:
        templates.render("set_binding", {"site": "x", "thumbprint": THUMB, "port": 0, "ip": 7})
    text = str(info.value)
    assert "port: " in text
    assert "ip: " in text
    assert "; " in text  # every problem is listed, separated


def test_masked_params_are_json_values() -> None:
    script = templates.render("restart", {"mode": "recycle", "app_pools": ["a", "b"]})
    masked = script.masked_params()
    assert masked == {"mode": "recycle", "app_pools": ["a", "b"]}  # a list, as JSON has it
    assert json.loads(json.dumps(masked)) == masked


def test_masked_params_hide_every_secret_field_and_only_those() -> None:
    params = {
        "pfx_b64": base64.b64encode(b"pfx").decode(),
        "password": "pw-secret",
        "thumbprint": THUMB,
        "store_name": "My",
    }
    script = templates.render("import_pfx", params)
    masked = script.masked_params()
    assert masked["password"] == "**********"
    assert masked["pfx_b64"] == "**********"
    assert masked["thumbprint"] == THUMB
    assert masked["store_name"] == "My"
    assert "pw-secret" not in repr(script)
    assert script.decoded_params()["password"] == "pw-secret"


def test_reveal_opens_secrets_inside_mappings_and_lists() -> None:
    value = {
        "s": SecretStr("a"),
        "b": SecretBytes(b"b"),
        "nested": {"deep": [SecretStr("c"), (SecretBytes(b"d"), 1)]},
        "plain": "e",
    }
    assert templates._reveal(value) == {
        "s": "a",
        "b": "b",
        "nested": {"deep": ["c", ["d", 1]]},
        "plain": "e",
    }


def test_abbreviate_cuts_only_past_the_limit() -> None:
    assert templates.abbreviate("a" * 80) == "a" * 80
    assert templates.abbreviate("a" * 81) == "a" * 50 + "... (81 characters)"
    assert templates.abbreviate("b" * 41, limit=40) == "b" * 10 + "... (41 characters)"
    assert templates.abbreviate(12345) == 12345


def test_render_refuses_a_model_of_another_template() -> None:
    other = templates.render("restart", {"mode": "iisreset"}).params
    with pytest.raises(TemplateError, match=r"template 'observe' takes ObserveParams, not Restart"):
        templates.render("observe", other)
    with pytest.raises(TemplateError, match="must be a mapping or ObserveParams"):
        templates.render("observe", ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_render_without_parameters_uses_the_defaults() -> None:
    script = templates.render("observe")
    assert script.params == templates.render("observe", {}).params
    assert script.read_only
    assert script.idempotent
    assert script.secret_fields == frozenset()


def test_repr_lists_parameters_in_sorted_order() -> None:
    script = templates.render(
        "set_binding", {"site": "s", "thumbprint": THUMB, "port": 8443, "host": "h"}
    )
    text = repr(script)
    params = json.loads(text.split("params=", 1)[1].split(", payload=", 1)[0])
    assert list(params) == sorted(params)
    assert text.startswith("RenderedScript(name='set_binding', params={")
    assert str(script) == text


def test_parameter_errors_say_what_is_expected() -> None:
    with pytest.raises(TemplateError, match=r"ip: Value error, an IP address or \"\*\""):
        templates.render("set_binding", {"site": "s", "thumbprint": THUMB, "ip": "10.0.0.300"})
    assert templates.render("set_binding", {"site": "s", "thumbprint": THUMB, "ip": "[::1]"})
    with pytest.raises(TemplateError, match="must not be empty"):
        templates.render("import_pfx", {"pfx_b64": "", "password": "p", "thumbprint": THUMB})
