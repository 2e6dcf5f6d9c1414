"""templates/params.py, render.py and standalone.py: the decisions and texts that the full
mutation run of each module showed unpinned (issue 20; each test names the decision it pins)."""

from __future__ import annotations

import base64

import pytest

from sectigo_chain.errors import TemplateError
from sectigo_chain.templates import render as templates

THUMB = "AD98F9F3E47D753B65D482B3A45217BB6EF5E438"


def test_a_host_header_may_be_255_characters_and_no_more() -> None:
    longest = "a" * 255
    script = templates.render("set_binding", {"site": "s", "host": longest, "thumbprint": THUMB})
    assert script.decoded_params()["host"] == longest
    with pytest.raises(TemplateError, match=r"host: .*a host header is empty or a DNS name"):
        templates.render("set_binding", {"site": "s", "host": "a" + longest, "thumbprint": THUMB})


def test_base64_with_a_character_outside_its_alphabet_is_refused() -> None:
    """Decoded leniently, "QUJD!RA==" would drop the "!" and give b"ABCD": the payload would
    carry other bytes than the caller meant. It is refused, and the message says why."""
    for bad in ("QUJD!RA==", "QUJDRA==?", "QU_JDRA=="):
        with pytest.raises(TemplateError) as info:
            templates.render("import_pfx", {"pfx_b64": bad, "password": "pw", "thumbprint": THUMB})
        assert "pfx_b64: Value error, not valid base64" in str(info.value)
        assert bad not in str(info.value)


def test_a_plans_secret_values_include_each_secret_actions_own_payload() -> None:
    """The payload of an action with a secret is itself secret (it carries the password):
    log masking gets it along with the values."""
    pfx = base64.b64encode(b"x").decode()
    action = templates.render(
        "import_pfx", {"pfx_b64": pfx, "password": "pw-inner", "thumbprint": THUMB}
    )
    secrets = templates.render_plan([action]).secret_values()
    assert action.payload in secrets
    assert "pw-inner" in secrets
    assert None not in secrets


def test_text_that_cannot_be_carried_is_named_by_its_place_in_a_nested_value() -> None:
    from sectigo_chain.errors import InputError

    with pytest.raises(InputError, match=r"^parameter 'outer'\.inner contains a UTF-16 "):
        templates.encode_payload({"outer": {"inner": "\ud800"}})
    with pytest.raises(InputError, match=r"^parameter 'top' contains a UTF-16 "):
        templates.encode_payload({"top": "\udfff"})


def test_the_debug_log_of_a_rendered_script_shows_it_with_its_secrets_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pfx = base64.b64encode(b"x").decode()
    with caplog.at_level("DEBUG", logger=templates.__name__):
        script = templates.render(
            "import_pfx", {"pfx_b64": pfx, "password": "pw-logged?", "thumbprint": THUMB}
        )
    (record,) = [r for r in caplog.records if r.name == templates.__name__]
    assert record.getMessage() == f"rendered {script!r}"
    assert record.getMessage().startswith("rendered RenderedScript(name='import_pfx', ")
    assert "pw-logged?" not in caplog.text
