"""templates.render / RenderedScript / payloads / secrets / standalone scripts."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from sectigo_chain.errors import InputError, TemplateError
from sectigo_chain.templates import render as templates
from sectigo_chain.templates.params import (
    ImportCertificateParams,
    ImportPfxParams,
    RestartParams,
    SetBindingParams,
    normalize_thumbprint,
)
from sectigo_chain.templates.standalone import to_standalone

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Pa55'\u2019word"
PFX_BYTES = b"\x30\x82 pretend pfx bytes \xff\x00"
THUMB = "AD98F9F3E47D753B65D482B3A45217BB6EF5E438"


def _der(name: str = "r46-root-selfsigned.pem") -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (REPO / "sectigo_chain/data/sectigo" / name).read_bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def _pfx_params(**extra: Any) -> dict[str, Any]:
    return {
        "pfx_b64": base64.b64encode(PFX_BYTES).decode(),
        "password": PASSWORD,
        "thumbprint": THUMB,
        **extra,
    }


# --- the RenderedScript interface other modules rely on -------------------------------------


def test_rendered_script_interface() -> None:
    script = templates.render("verify_chain", {"thumbprint": THUMB.lower()})
    assert script.name == "verify_chain"
    assert script.text == templates.template_text("verify_chain")
    assert script.read_only is True
    assert script.idempotent is True
    assert script.secret_fields == frozenset()
    assert script.decoded_params() == {
        "thumbprint": THUMB,
        "store_location": "LocalMachine",
        "store_name": "My",
    }
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", script.payload)
    with pytest.raises(dataclasses.FrozenInstanceError):
        script.payload = "x"  # type: ignore[misc]
    assert set(templates.TEMPLATE_NAMES) == {
        "observe",
        "import_certificate",
        "remove_certificate",
        "disallow_certificate",
        "import_pfx",
        "move_certificate",
        "set_binding",
        "remove_binding",
        "set_root_auto_update",
        "restart",
        "verify_chain",
        "inspect_ccs",
        "rebuild_ccs_pfx",
        "restore_ccs_pfx",
        "outbound_tls_test",
        "apply_plan",
        "verify_host",
    }


def test_render_accepts_a_model_instance_and_revalidates() -> None:
    model = SetBindingParams(site="a", thumbprint=THUMB)
    script = templates.render("set_binding", model)
    assert script.params == model
    assert script.decoded_params()["site"] == "a"
    with pytest.raises(TemplateError, match="takes SetBindingParams"):
        templates.render("set_binding", RestartParams(mode="iisreset"))
    bypassed = SetBindingParams.model_construct(site="", thumbprint="nope")
    with pytest.raises(TemplateError, match="site"):
        templates.render("set_binding", bypassed)


def test_render_is_deterministic_and_payload_is_sorted_compact_ascii_json() -> None:
    first = templates.render("restart", {"mode": "recycle", "app_pools": ["b\u00e9", "a"]})
    second = templates.render("restart", {"app_pools": ("b\u00e9", "a"), "mode": "recycle"})
    assert first.payload == second.payload
    raw = base64.b64decode(first.payload).decode("ascii")
    assert raw == '{"app_pools":["b\\u00e9","a"],"mode":"recycle"}'


def test_unknown_template_and_bad_params() -> None:
    with pytest.raises(TemplateError, match="unknown template 'nope'; known templates: observe"):
        templates.render("nope", {})
    with pytest.raises(TemplateError, match="unknown template"):
        templates.template_text("../README")
    with pytest.raises(TemplateError, match="extra_field: Extra inputs are not permitted"):
        templates.render("observe", {"extra_field": 1})
    with pytest.raises(TemplateError, match="must be a mapping"):
        templates.render("observe", [("a", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("verify_chain", {"thumbprint": "'; Remove-Item x #"}, "thumbprint"),
        ("verify_chain", {"thumbprint": THUMB, "store_name": "My'; x"}, "store_name"),
        (
            "remove_certificate",
            {"thumbprint": THUMB, "store_name": "Root", "physical_store": ".GroupPolicy"},
            "Group Policy",
        ),
        (
            "remove_certificate",
            {"thumbprint": THUMB, "store_name": "CA", "physical_store": ".AuthRoot"},
            "LocalMachine\\\\Root",
        ),
        ("set_binding", {"site": "", "thumbprint": THUMB}, "site"),
        ("set_binding", {"site": "s", "thumbprint": THUMB, "port": 0}, "port"),
        ("set_binding", {"site": "s", "thumbprint": THUMB, "port": 65536}, "port"),
        ("set_binding", {"site": "s", "thumbprint": THUMB, "ip": "1.2.3"}, "ip"),
        ("set_binding", {"site": "s", "thumbprint": THUMB, "host": "a:b"}, "host"),
        ("set_binding", {"site": "s", "thumbprint": THUMB, "host": "x'y"}, "host"),
        ("set_binding", {"site": "s", "thumbprint": THUMB, "ssl_flags_set": 1}, "SNI"),
        (
            "set_binding",
            {"site": "s", "thumbprint": THUMB, "ssl_flags_set": 4, "ssl_flags_clear": 4},
            "share bits",
        ),
        ("restart", {"mode": "recycle"}, "at least one"),
        ("restart", {"mode": "iisreset", "app_pools": ["a"]}, "only go with"),
        ("restart", {"mode": "recycle", "app_pools": [""]}, "app_pools"),
        (
            "move_certificate",
            {
                "thumbprint": THUMB,
                "from_location": "LocalMachine",
                "from_store": "CA",
                "to_location": "LocalMachine",
                "to_store": "CA",
                "remove_source": False,
            },
            "same store",
        ),
        ("import_certificate", {"der_b64": "not base64!", "store_name": "CA"}, "base64"),
        ("import_certificate", {"der_b64": "AAAA", "store_name": "CA"}, "X.509"),
        (
            "import_certificate",
            {
                "der_b64": base64.b64encode(_der()).decode(),
                "thumbprint": "00" * 20,
                "store_name": "CA",
            },
            "SHA-1",
        ),
        ("set_root_auto_update", {}, "disabled"),
    ],
)
def test_invalid_values_are_rejected(name: str, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TemplateError, match=fragment):
        templates.render(name, params)


def test_thumbprint_normalisation() -> None:
    pasted = "\u200e" + " ".join(THUMB[i : i + 2].lower() for i in range(0, 40, 2))
    assert normalize_thumbprint(pasted) == THUMB
    assert normalize_thumbprint(":".join(THUMB[i : i + 2] for i in range(0, 40, 2))) == THUMB
    for bad in ["", THUMB[:-1], THUMB + "0", "G" * 40, 40]:
        with pytest.raises(ValueError, match="thumbprint"):
            normalize_thumbprint(bad)


def test_thumbprint_is_computed_from_der_when_missing() -> None:
    der = _der()
    script = templates.render(
        "import_certificate", {"der_b64": base64.b64encode(der).decode(), "store_name": "CA"}
    )
    assert script.decoded_params()["thumbprint"] == hashlib.sha1(der).hexdigest().upper()


def test_public_models_can_be_constructed() -> None:
    der_b64 = base64.b64encode(_der()).decode()
    model = ImportCertificateParams.model_validate({"der_b64": der_b64, "store_name": "Root"})
    assert model.thumbprint == THUMB
    pfx = ImportPfxParams(pfx_b64=SecretStr("AAAA"), password=SecretStr("x"), thumbprint=THUMB)
    assert templates.render("import_pfx", pfx).decoded_params()["password"] == "x"


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_are_masked_everywhere_but_the_payload(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sectigo_chain")
    script = templates.render("import_pfx", _pfx_params(friendly_name="www"))
    pfx_b64 = base64.b64encode(PFX_BYTES).decode()
    assert script.secret_fields == frozenset({"pfx_b64", "password"})
    decoded = script.decoded_params()
    assert decoded["password"] == PASSWORD
    assert decoded["pfx_b64"] == pfx_b64
    shown = [repr(script), str(script), f"{script}", caplog.text, repr(script.params)]
    shown.append(json.dumps(script.masked_params()))
    for text in shown:
        assert PASSWORD not in text
        assert pfx_b64 not in text
        assert script.payload not in text
    assert "**********" in repr(script)
    assert "rendered RenderedScript(name='import_pfx'" in caplog.text


def test_validation_errors_never_quote_secret_values() -> None:
    params = _pfx_params(thumbprint="bad", pfx_b64=PASSWORD, extra=PASSWORD)
    with pytest.raises(TemplateError) as info:
        templates.render("import_pfx", params)
    message = str(info.value)
    assert "thumbprint" in message
    assert "pfx_b64" in message
    assert PASSWORD not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ is True


def test_standalone_prompts_for_secrets_unless_embedding_is_asked() -> None:
    script = templates.render("import_pfx", _pfx_params())
    pfx_b64 = base64.b64encode(PFX_BYTES).decode()
    prompted = to_standalone(script)
    assert PASSWORD not in prompted
    assert pfx_b64 not in prompted
    assert script.payload not in prompted
    assert "Read-Host -AsSecureString -Prompt 'Password of the PFX file'" in prompted
    assert "Read-Host -Prompt 'Path of the PFX file to import'" in prompted
    literal = re.search(r"^\$SectigoPayload = '([^']*)'$", prompted, re.M)
    assert literal is not None
    decoded = templates.decode_payload(literal.group(1))
    assert decoded["password"] is None
    assert decoded["pfx_b64"] is None
    assert decoded["thumbprint"] == THUMB

    embedded = to_standalone(script, embed_secrets=True)
    assert f"$SectigoPayload = '{script.payload}'" in embedded
    assert "CONTAINS SECRETS" in embedded
    assert "Read-Host" not in embedded


def test_standalone_embeds_template_text_and_stops_on_failure() -> None:
    script = templates.render("observe", {"include_current_user": False})
    text = to_standalone(script)
    assert script.text in text
    assert text.isascii()
    assert f"$SectigoPayload = '{script.payload}'" in text
    assert "#   include_current_user = false" in text
    assert text.rstrip().endswith(
        "throw 'sectigo_chain: template observe reported ok=false; stopping.'\n}"
    )


# --- payload round trip ----------------------------------------------------------------------

# Every Unicode character: all code points except the surrogates U+D800..U+DFFF, which are
# not characters (a Python str may hold them; the payload refuses them, tested below).
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=("Cs",)), max_size=100)
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT_WITH_SURROGATE = st.builds(
    lambda head, bad, tail: head + bad + tail, ANY_TEXT, SURROGATE, ANY_TEXT
)


@settings(max_examples=2000, deadline=None)
@given(ANY_TEXT)
@example("\U00010000")  # the character the surrogate pair below would turn into
def test_any_string_survives_the_payload_round_trip(value: str) -> None:
    payload = templates.encode_payload({"value": value, "list": [value]})
    assert re.fullmatch(r"[A-Za-z0-9+/=]*", payload)
    # What the host does: base64 -> UTF-8 -> JSON.
    host_side = json.loads(base64.b64decode(payload).decode("utf-8"))
    assert host_side == {"value": value, "list": [value]}
    assert templates.decode_payload(payload) == host_side


@settings(max_examples=500, deadline=None)
@given(ANY_TEXT.filter(bool), ANY_TEXT)
def test_any_site_and_password_survive_render(site: str, password: str) -> None:
    binding = templates.render("set_binding", {"site": site, "thumbprint": THUMB})
    assert binding.decoded_params()["site"] == site
    pfx = templates.render("import_pfx", _pfx_params(password=password, friendly_name=site))
    decoded = pfx.decoded_params()
    assert decoded["password"] == password
    assert decoded["friendly_name"] == site


@pytest.mark.parametrize(
    "value",
    [
        "\ud800\udc00",  # found by hypothesis: a pair would come back as U+10000
        "\ud800",
        "abc\udfff",
        "caf\udce9",  # what errors="surrogateescape" makes of a stray Latin-1 byte
    ],
)
def test_surrogates_are_refused_with_an_input_error(value: str) -> None:
    with pytest.raises(InputError, match=r"'value'.*surrogate") as info:
        templates.encode_payload({"value": value})
    assert value not in str(info.value)
    with pytest.raises(InputError, match=r"'list'\[1\].*surrogate"):
        templates.encode_payload({"list": ["fine", value]})
    with pytest.raises(InputError, match=r"a key"):
        templates.encode_payload({value: 1})


@settings(max_examples=300, deadline=None)
@given(TEXT_WITH_SURROGATE)
def test_no_string_with_a_surrogate_is_sent(value: str) -> None:
    with pytest.raises(InputError, match="surrogate"):
        templates.encode_payload({"value": value})


def test_render_refuses_a_surrogate_without_showing_the_secret() -> None:
    secret = "pass\ud800word"
    with pytest.raises(InputError, match=r"'password'.*surrogate") as info:
        templates.render("import_pfx", _pfx_params(password=secret))
    assert "pass" not in str(info.value).replace("password", "")
    with pytest.raises(InputError, match=r"'site'"):
        templates.render("set_binding", {"site": "shop\udc80", "thumbprint": THUMB})


def test_decode_payload_rejects_non_objects() -> None:
    with pytest.raises(TemplateError, match="JSON object"):
        templates.decode_payload(base64.b64encode(b"[1]").decode())


# --- where the templates are -----------------------------------------------------------------


def test_template_dir_in_a_source_checkout_is_the_repo_folder() -> None:
    folder = templates.template_dir()
    assert Path(str(folder)).resolve() == (REPO / "ps_templates").resolve()
    for name in templates.TEMPLATE_NAMES:
        assert (folder / f"{name}.ps1").is_file()
