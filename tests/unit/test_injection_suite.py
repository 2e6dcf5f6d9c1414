"""Suite 4 of issue 13: hostile values for EVERY template parameter (hypothesis), checked on the
rendered script's parse tree (tree-sitter-pwsh) and on arrival at the simulated host.

For each template and each of its parameters, hypothesis draws hostile text (PowerShell quote
characters, here-string ends, subexpressions, comments, control characters, non-ASCII, long
runs) or a hostile value of another type. A value is either refused with a typed
``TemplateError`` (validation) or rendered; a rendered script must have exactly the syntax
tree of the ordinary render (no statement, string or comment added or split), its payload must
be one base64 literal, and the simulated host's handler must receive exactly the value given.
The figure (renders tried, refused, rendered safely) is printed.

Limits: tree-sitter-pwsh is not PowerShell's own parser (see test_ps_syntax.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ps_lint import parse
from test_ps_syntax import HOSTILE, _baseline_shape, _payload_literal, ordinary_params

from sectigo_chain.errors import ExecutionError, TemplateError
from sectigo_chain.hosts.sim import handlers as sim_handlers
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.templates import render as templates
from sectigo_chain.templates.params import TEMPLATE_SPECS
from sectigo_chain.templates.standalone import to_standalone

COUNTS = {"tried": 0, "refused": 0, "rendered": 0}
PIECES = [
    *HOSTILE[:-1],
    "'", '"', "`", "$", "@", "#", "<#", "#>", "$(", ")", "{", "}", ";", "|", "&", "\n", "\r",
    "\x00", "\x1b[2J", "\u2028", "\u0085", "\ufeff", "'@", '"@', "@'", '@"', "-Password x",
    "Remove-Item C:\\ -Recurse", "${env:X}", "[char]39", "%", "\\", "..\\..\\",
]  # fmt: skip
TEXT = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    st.text(min_size=0, max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=300),
)
VALUE = st.one_of(  # text most often: it is what a hostile inventory or plan file carries
    TEXT,
    TEXT,
    TEXT,
    TEXT.map(lambda t: [t, t]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.dictionaries(st.text(max_size=5), TEXT, max_size=2),
)
# Composite templates carry the other templates' payloads (their values are drawn here, per
# template); test_compose.py checks that apply_plan carries them unchanged.
CASES = [
    (name, field)
    for name, spec in TEMPLATE_SPECS.items()
    if not spec.composite
    for field in spec.model.model_fields
]


@pytest.mark.parametrize(("name", "field"), CASES, ids=[f"{n}.{f}" for n, f in CASES])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUE)
def test_hostile_value_for_every_parameter(name: str, field: str, value: Any) -> None:
    COUNTS["tried"] += 1
    params = dict(ordinary_params()[name])
    params[field] = value
    try:
        script = templates.render(name, params)
    except TemplateError:
        COUNTS["refused"] += 1
        return
    COUNTS["rendered"] += 1
    sent = script.decoded_params()
    # 1. The parse tree: the same shape as the ordinary render, the payload one literal.
    for embed in (False, True) if script.secret_fields else (False,):
        text = to_standalone(script, embed_secrets=embed)
        assert text.isascii()
        tree = parse(text)
        assert not tree.root_node.has_error
        assert str(tree.root_node) == _baseline_shape(name, embed)
        literal = _payload_literal(tree)
        decoded = templates.decode_payload(literal)
        if embed or field not in script.secret_fields:
            assert decoded.get(field) == sent.get(field)
    # 2. On arrival: the simulated host's handler receives exactly what was rendered.
    received: list[dict[str, Any]] = []
    original = sim_handlers.HANDLERS[name]

    def recording(host: Any, got: dict[str, Any]) -> Any:
        received.append(dict(got))
        return original(host, got)

    sim_handlers.HANDLERS[name] = recording
    try:
        SimulatedHost("broken-r46").run(script, timeout=5)
    except ExecutionError:
        pass  # the host refusing the value is a typed failure, not an injection
    finally:
        sim_handlers.HANDLERS[name] = original
    assert received == [dict(sent)]


def test_zz_print_figure() -> None:
    print(
        f"\nSUITE injection: {COUNTS['tried']} hostile renders over {len(CASES)} parameters of "
        f"{len(TEMPLATE_SPECS)} templates: {COUNTS['refused']} refused (TemplateError), "
        f"{COUNTS['rendered']} rendered with an unchanged parse tree and delivered intact"
    )
    assert COUNTS["tried"] > 0
