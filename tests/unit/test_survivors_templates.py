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


# --- each parameter check says what it expects (the message is all the caller gets) ----------


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("set_binding", {"site": "", "thumbprint": THUMB}, "site: Value error, must not be empty"),
        (
            "outbound_tls_test",
            {"url": "http://example.com/"},
            "url: Value error, an https:// URL (host name, optional port and path, ASCII)",
        ),
        (
            "inspect_ccs",
            {"files": ["../web01.pfx"]},
            "files.0: Value error, a CCS file name is <host>.pfx (letters, digits, '.', '-', '_')",
        ),
        (
            "import_certificate",
            {"der_b64": base64.b64encode(b"junk").decode(), "thumbprint": THUMB,
             "store_name": "CA"},
            "der_b64: Value error, not a DER-encoded X.509 certificate",
        ),
    ],
)  # fmt: skip
def test_each_parameter_check_names_what_it_expects(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(TemplateError) as info:
        templates.render(name, params)
    assert str(info.value) == f"invalid parameters for template {name!r}: {message}"


def test_render_plan_observes_after_only_when_asked() -> None:
    step = templates.render("restart", {"mode": "iisreset"})
    plain = templates.render_plan([step])
    assert plain.decoded_params()["observe"] is None
    observed = templates.render_plan([step], observe_after=True)
    assert observed.decoded_params()["observe"] == templates.render("observe").payload
    assert not plain.idempotent  # restart is not, so neither is the plan that runs it


def test_repr_is_ascii_whatever_the_parameters() -> None:
    # The repr goes to logs (a Windows console or a cp1252 file): non-ASCII text is escaped.
    script = templates.render("set_binding", {"site": "Café – Süd", "thumbprint": THUMB})
    text = repr(script)
    assert text.isascii()
    assert "Caf\\u00e9 \\u2013 S\\u00fcd" in text


def test_missing_templates_name_both_places_looked_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from importlib.resources import files
    from pathlib import Path

    # A source checkout (no ps_templates inside the package), moved so that the folder next
    # to the package is gone too.
    assert not (files("sectigo_chain") / "ps_templates").is_dir()
    fake = Path(str(tmp_path)) / "site" / "sectigo_chain" / "templates" / "render.py"
    monkeypatch.setattr(templates, "__file__", str(fake))
    with pytest.raises(TemplateError) as info:
        templates.template_dir()
    looked = Path(str(tmp_path)).resolve() / "site" / "ps_templates"
    assert str(info.value) == (
        "the PowerShell templates are missing: looked in the installed package "
        f"(sectigo_chain/ps_templates) and in {looked}; reinstall sectigo-chain"
    )


def test_a_standalone_plan_embeds_secrets_only_when_told() -> None:
    from sectigo_chain.templates.standalone import to_standalone_plan

    pfx = base64.b64encode(b"pfx-bytes").decode()
    script = templates.render(
        "import_pfx", {"pfx_b64": pfx, "password": "pw-secret", "thumbprint": THUMB}
    )

    def payload(text: str) -> dict[str, object]:
        (line,) = [x for x in text.splitlines() if x.startswith("$SectigoPayload = '")]
        return templates.decode_payload(line.split("'")[1])

    embedded = to_standalone_plan([script], embed_secrets=True)
    assert payload(embedded)["password"] == "pw-secret"
    assert payload(embedded)["pfx_b64"] == pfx
    asked = to_standalone_plan([script])
    assert payload(asked)["password"] is None
    assert "pw-secret" not in asked


# --- round 2 (seed-7 sample) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"site": "s", "thumbprint": THUMB, "host": "bad host"},
            "host: Value error, a host header is empty or a DNS name (letters, digits, '.', "
            "'-', '*')",
        ),
        (
            {"site": "s", "thumbprint": 12345},
            "thumbprint: Value error, a thumbprint is a string of 40 hex digits (SHA-1 of the DER)",
        ),
    ],
)
def test_binding_parameter_checks_name_what_they_expect(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(TemplateError) as info:
        templates.render("set_binding", params)
    assert str(info.value) == f"invalid parameters for template 'set_binding': {message}"


def test_an_empty_secret_is_refused_with_its_own_message() -> None:
    with pytest.raises(TemplateError) as info:
        templates.render("import_pfx", {"pfx_b64": "", "password": "p", "thumbprint": THUMB})
    assert str(info.value) == (
        "invalid parameters for template 'import_pfx': pfx_b64: Value error, must not be empty"
    )


def test_a_ccs_file_name_may_be_255_characters_and_no_more() -> None:
    longest = "a" * 251 + ".pfx"
    assert len(longest) == 255
    assert templates.render("inspect_ccs", {"files": [longest]})
    with pytest.raises(TemplateError, match="a CCS file name is"):
        templates.render("inspect_ccs", {"files": ["a" + longest]})


def test_the_surrogate_refusal_says_where_such_text_comes_from() -> None:
    from sectigo_chain.errors import InputError

    with pytest.raises(InputError) as info:
        templates.encode_payload({"v": "\ud800"})
    assert str(info.value) == (
        "parameter 'v' contains a UTF-16 surrogate code point (U+D800..U+DFFF), which is not a "
        "Unicode character and cannot be sent to the host unchanged; this usually comes from "
        "bytes decoded with errors='surrogateescape' or from a broken UTF-16 source: give the "
        "value as proper Unicode text"
    )


def test_a_standalone_script_with_secrets_lists_them_in_its_warning() -> None:
    from sectigo_chain.templates.standalone import to_standalone

    pfx = base64.b64encode(b"pfx-bytes").decode()
    script = templates.render("import_pfx", {"pfx_b64": pfx, "password": "p", "thumbprint": THUMB})
    text = to_standalone(script, embed_secrets=True)
    assert (
        "# WARNING: this file CONTAINS SECRETS (password, pfx_b64). Keep it private and delete "
        "it after use."
    ) in text.splitlines()


# --- round 3 (seed-11 sample) -----------------------------------------------------------------


def test_a_whole_model_problem_is_reported_under_parameters() -> None:
    with pytest.raises(TemplateError) as info:
        templates.render("restore_ccs_pfx", {"path": "a.pfx", "backup_path": "a.pfx"})
    assert str(info.value) == (
        "invalid parameters for template 'restore_ccs_pfx': parameters: Value error, path must "
        "name a .pfx file and backup_path another file"
    )


def test_every_problem_is_listed_separated_by_semicolons() -> None:
    with pytest.raises(TemplateError) as info:
        templates.render("set_binding", {"site": "", "thumbprint": "zz"})
    assert str(info.value) == (
        "invalid parameters for template 'set_binding': site: Value error, must not be empty; "
        "thumbprint: Value error, a thumbprint is 40 hex digits (SHA-1 of the DER); check for "
        "typos"
    )


def test_an_ip_with_stray_characters_is_refused() -> None:
    assert templates.render("set_binding", {"site": "s", "thumbprint": THUMB, "ip": "[::1]"})
    for bad in ("X10.0.0.1", "10.0.0.1X"):
        with pytest.raises(TemplateError, match="an IP address"):
            templates.render("set_binding", {"site": "s", "thumbprint": THUMB, "ip": bad})


def test_a_url_may_be_2048_characters_and_no_more() -> None:
    base = "https://example.com/"
    longest = base + "a" * (2048 - len(base))
    assert templates.render("outbound_tls_test", {"url": longest})
    with pytest.raises(TemplateError, match="an https:// URL"):
        templates.render("outbound_tls_test", {"url": longest + "a"})


def test_base64_may_be_wrapped_across_lines() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from sectigo_chain.x509.catalog import default_catalog

    der = default_catalog().certificate("r46-root-selfsigned").public_bytes(Encoding.DER)
    flat = base64.b64encode(der).decode()
    wrapped = "\n".join(flat[i : i + 64] for i in range(0, len(flat), 64)) + "\n"
    params = {"der_b64": wrapped, "thumbprint": THUMB, "store_name": "CA"}
    script = templates.render("import_certificate", params)
    assert script.decoded_params()["der_b64"] == flat


def test_a_plan_with_secrets_inside_says_how_to_render_it() -> None:
    from sectigo_chain.templates.standalone import to_standalone

    pfx = base64.b64encode(b"x").decode()
    step = templates.render("import_pfx", {"pfx_b64": pfx, "password": "p", "thumbprint": THUMB})
    with pytest.raises(TemplateError) as info:
        to_standalone(templates.render_plan([step]))
    assert str(info.value) == (
        "apply_plan carries secrets inside its actions' payloads: render the actions one by one "
        "(each asks for its secrets on the host), or embed the secrets"
    )


def test_comment_values_are_cut_only_past_120_characters() -> None:
    from sectigo_chain.templates.standalone import _comment_value

    exact = "a" * 118  # json.dumps adds the two quotes: 120 characters
    assert _comment_value(exact) == f'"{exact}"'
    longer = "a" * 119
    assert _comment_value(longer) == f'"{longer[:79]}... (121 characters)'


def test_a_standalone_plan_separates_its_steps_with_a_blank_line() -> None:
    from sectigo_chain.templates.standalone import to_standalone_plan

    steps = [templates.render("restart", {"mode": "iisreset"}), templates.render("observe")]
    lines = to_standalone_plan(steps).splitlines()
    heads = [i for i, line in enumerate(lines) if "(step " in line and " of 2)" in line]
    assert len(heads) == 2
    for i in heads:
        assert lines[i - 1] == ""


def test_a_plan_reports_the_secrets_of_every_action() -> None:
    pfx = base64.b64encode(b"x").decode()
    one = templates.render(
        "import_pfx", {"pfx_b64": pfx, "password": "pw-one", "thumbprint": THUMB}
    )
    two = templates.render(
        "import_pfx", {"pfx_b64": pfx, "password": "pw-two", "thumbprint": THUMB}
    )
    secrets = templates.render_plan([one, two]).secret_values()
    assert "pw-one" in secrets
    assert "pw-two" in secrets


# --- round 5 (seed-5 sample) ------------------------------------------------------------------


def test_an_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(TemplateError) as info:
        templates.render("no_such_template")
    assert str(info.value) == (
        "unknown template 'no_such_template'; known templates: "
        + ", ".join(templates.TEMPLATE_NAMES)
    )


def test_a_payload_that_is_not_an_object_says_so_exactly() -> None:
    payload = base64.b64encode(b"[1]").decode()
    with pytest.raises(TemplateError) as info:
        templates.decode_payload(payload)
    assert str(info.value) == "a payload must decode to a JSON object"


def test_plan_secrets_are_found_after_an_action_without_any() -> None:
    pfx = base64.b64encode(b"x").decode()
    restart = templates.render("restart", {"mode": "iisreset"})
    imp = templates.render(
        "import_pfx", {"pfx_b64": pfx, "password": "pw-late", "thumbprint": THUMB}
    )
    assert "pw-late" in templates.render_plan([restart, imp]).secret_values()


def test_non_ascii_parameters_are_escaped_in_the_standalone_comments() -> None:
    from sectigo_chain.templates.standalone import to_standalone

    script = templates.render("set_binding", {"site": "Café", "thumbprint": THUMB})
    text = to_standalone(script)
    assert text.isascii()
    assert '"Caf\\u00e9"' in text
