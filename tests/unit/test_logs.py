"""SecretMaskFilter: secrets never reach a log line, other text is left alone."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from sectigo_chain.hosts.sim.scenarios import scenario_leaf
from sectigo_chain.logs import (
    MASK,
    SecretMaskFilter,
    clear_secrets,
    mask_text,
    register_secret,
    registered_secrets,
    unregister_secret,
)
from sectigo_chain.templates.render import render
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.x509.certs import thumbprint

SECRET = "Tr0ub4dor&3-correct-horse"


@pytest.fixture(autouse=True)
def _no_leftover_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """The ``sectigo_chain`` logger with a filtered handler writing to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMaskFilter())
    logger = logging.getLogger("sectigo_chain")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers[:], logger.level, logger.propagate = saved


def test_registered_secret_is_masked_in_message_and_args(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    register_secret(SecretStr(SECRET))
    logging.getLogger("sectigo_chain.hosts.winrm").info("connecting with %s now", SECRET)
    logger.warning(f"inline {SECRET}")
    out = stream.getvalue()
    assert SECRET not in out
    assert out.count(MASK) == 2
    assert "sectigo_chain.hosts.winrm: connecting with ******** now" in out


def test_secret_in_a_traceback_is_masked(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    register_secret(SECRET.encode())
    try:
        raise RuntimeError(f"bad password {SECRET}")
    except RuntimeError:
        logger.exception("import failed")
    out = stream.getvalue()
    assert "Traceback" in out
    assert "RuntimeError: bad password ********" in out
    assert SECRET not in out


def test_password_pairs_lose_their_values_but_keep_their_keys() -> None:
    text = (
        'user=bob password=hunter22 {"pfx_password": "s3cret value", "site": "x"} '
        "winrm_password: abc123; Import-PfxCertificate -Password 'p w' -FilePath c:\\a.pfx"
    )
    masked = mask_text(text)
    for value in ("hunter22", "s3cret value", "abc123", "'p w'"):
        assert value not in masked
    assert "user=bob" in masked
    assert '"site": "x"' in masked
    assert "-FilePath c:\\a.pfx" in masked
    assert "password=********" in masked
    assert '"pfx_password": "********"' in masked
    assert "-Password '********'" in masked


def test_payload_of_a_secret_script_is_masked_and_others_are_kept(lab: LabHierarchy) -> None:
    leaf = scenario_leaf(lab)
    pfx = leaf.pfx("pfx-pass-123")
    secret_script = render(
        "import_pfx",
        {
            "pfx_b64": base64.b64encode(pfx).decode(),
            "password": "pfx-pass-123",
            "thumbprint": thumbprint(leaf.cert),
        },
    )
    plain_script = render("observe", {})
    masked = mask_text(f"-Payload {secret_script.payload} then -Payload {plain_script.payload}")
    assert secret_script.payload not in masked
    assert plain_script.payload in masked  # no secret inside: left readable
    assert MASK in masked


def test_filter_extra_secrets_and_registry_lifecycle() -> None:
    record = logging.LogRecord(
        "sectigo_chain.x", logging.INFO, __file__, 1, "a %s b", ("k3y!",), None
    )
    assert SecretMaskFilter(secrets=["k3y!"]).filter(record) is True
    assert record.getMessage() == "a ******** b"
    register_secret("zz")  # too short to mask usefully: ignored
    assert registered_secrets() == 0
    register_secret("longer-one")
    assert mask_text("x longer-one y") == "x ******** y"
    unregister_secret("longer-one")
    assert mask_text("x longer-one y") == "x longer-one y"


def test_non_secret_text_is_unchanged() -> None:
    text = (
        "observe on sim://broken-r46 took 0.01 s; thumbprint "
        "CBA7C5E7DB34E276DE7FC550EBCD02E9BA8DD982; the password file is missing"
    )
    assert mask_text(text) == text


def test_payload_that_is_not_json_is_kept() -> None:
    blob = base64.b64encode(json.dumps(["not", "an", "object", "x" * 20]).encode()).decode()
    assert mask_text(blob) == blob
