"""The composite templates (issue 12, point 3): ``apply_plan`` and ``verify_host``.

* The checked-in ``ps_templates/apply_plan.ps1`` and ``verify_host.ps1`` are exactly what
  ``python -m sectigo_chain.templates.compose`` generates (fails when an action template
  changed or was added and the generator was not run again).
* Each entry is its template's own code, verbatim; every action template is an entry.
* ``render_plan``: the actions' payloads travel unchanged inside the one payload; secrets are
  masked; the plan is retried only when every action is safe to repeat.
* The simulated host runs ``apply_plan`` by the contract: in order, stop at the first failure,
  a result per action (done / failed with its error / not_run).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from test_ps_lint import parse, ps_lint, walk
from test_ps_syntax import HOSTILE, ordinary_params

from sectigo_chain.errors import TemplateError
from sectigo_chain.hosts.base import entry_result, mask_secrets
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.templates import compose
from sectigo_chain.templates.params import TEMPLATE_SPECS
from sectigo_chain.templates.render import decode_payload, render, render_plan, template_text
from sectigo_chain.templates.standalone import to_standalone

REPO = Path(__file__).resolve().parents[2]
PS_DIR = REPO / "ps_templates"


@pytest.mark.parametrize("composite", compose.COMPOSITES)
def test_the_checked_in_composite_is_what_the_generator_writes(composite: str) -> None:
    written = (PS_DIR / f"{composite}.ps1").read_text(encoding="ascii")
    assert written == compose.generate(composite), (
        f"ps_templates/{composite}.ps1 is stale: run python -m sectigo_chain.templates.compose"
    )
    assert compose.main(["--check"]) == 0


def test_every_action_template_is_an_entry_of_apply_plan() -> None:
    actions = {n for n, s in TEMPLATE_SPECS.items() if not s.read_only and not s.composite}
    assert set(compose.entry_names("apply_plan")) == actions | {"observe"}
    assert compose.entry_names("verify_host") == ("observe", "verify_chain")
    # and the payload model accepts exactly those actions
    field = TEMPLATE_SPECS["apply_plan"].model.model_fields["actions"]
    entry_model = field.annotation.__args__[0]  # type: ignore[union-attr]
    assert set(entry_model.model_fields["template"].annotation.__args__) == actions


@pytest.mark.parametrize("composite", compose.COMPOSITES)
def test_each_entry_is_its_template_code_verbatim(composite: str) -> None:
    text = template_text(composite)
    for name in compose.entry_names(composite):
        source = (PS_DIR / f"{name}.ps1").read_text(encoding="ascii")
        own = source[source.rindex("#endregion sectigo_chain") :].split("\n", 1)[1].lstrip("\n")
        own = own.replace("# ---- template body", "# ---- entry body").rstrip()
        block = f"$SectigoEntries['{name}'] = {{\nparam([Parameter(Mandatory = $true)]"
        assert block in text, name
        start = text.index(block)
        assert own in text[start:], f"{name}: the entry is not the template's own code"
    # the whole file parses, passes the 5.1 lint, and holds one top-level param block
    assert ps_lint(text) == []
    tree = parse(text)
    assert [n.type for n in tree.root_node.children].count("param_block") == 1


def test_each_entry_runs_with_its_error_stream_merged_and_its_own_payload() -> None:
    text = template_text("apply_plan")
    assert "$sectigoItems = & $sectigoBlock -Payload $Encoded 2>&1" in text
    # ok/changed are read from the head Write-SectigoResult writes, never by parsing a
    # document on the host (ConvertFrom-Json in 5.1 refuses text over 2 MB)
    for composite in compose.COMPOSITES:
        driver = template_text(composite).split("\nfunction Invoke-SectigoEntry", 1)[1]
        assert "ConvertFrom-Json -" not in driver, composite
    assert "-is [System.Management.Automation.ErrorRecord]" in text
    assert "$SectigoKeyCache.Clear()" in text  # an earlier entry may have changed the stores
    # No value is pasted: the only string literals naming templates are fixed names.
    names = {n for n in compose.entry_names("apply_plan")}
    for node in walk(parse(text).root_node):
        if node.type == "string_literal" and node.text is not None:
            literal = node.text.decode()
            if literal.startswith("'") and literal.strip("'") in names:
                assert literal.strip("'") in names


def test_the_generator_refuses_what_it_cannot_compose(tmp_path: Path) -> None:
    for name in compose.entry_names("verify_host"):
        (tmp_path / f"{name}.ps1").write_text((PS_DIR / f"{name}.ps1").read_text())
    text = (tmp_path / "verify_chain.ps1").read_text()
    (tmp_path / "verify_chain.ps1").write_text(text.replace("$p = $null", "exit 1\n$p = $null"))
    with pytest.raises(ValueError, match="exit"):
        compose.generate("verify_host", tmp_path)
    (tmp_path / "verify_chain.ps1").write_text(text.replace("# ---- template body", "# body"))
    with pytest.raises(ValueError, match="template body"):
        compose.generate("verify_host", tmp_path)
    with pytest.raises(ValueError, match="not a composite"):
        compose.entry_names("observe")


# ------------------------------------------------------------------------------ render_plan


def test_render_plan_carries_each_payload_unchanged_and_hostile_values_too() -> None:
    site = "".join(HOSTILE[:12])
    scripts = [
        render("import_certificate", ordinary_params()["import_certificate"]),
        render("remove_binding", {"site": site, "port": 8443}),
    ]
    plan = render_plan(scripts, observe_after=True)
    sent = plan.decoded_params()
    assert [a["template"] for a in sent["actions"]] == ["import_certificate", "remove_binding"]
    assert [a["payload"] for a in sent["actions"]] == [s.payload for s in scripts]
    assert decode_payload(sent["actions"][1]["payload"])["site"] == site
    assert sent["observe"] == render("observe", {}).payload
    assert plan.text == template_text("apply_plan")
    assert plan.payload.isascii()
    assert "'" not in plan.payload
    # on arrival: the simulated host's handlers receive exactly each action's parameters
    host = SimulatedHost("broken-r46")
    result = host.run(plan, timeout=30)
    items = result.data["results"]
    assert items[0]["status"] == "done"
    assert items[1]["status"] == "failed"  # no such site: the host's own error, verbatim
    assert "Cannot find site" in entry_result(items[1]).error["message"]  # type: ignore[index]
    assert site in entry_result(items[1]).error["message"]  # type: ignore[index]


def test_a_plan_is_retried_only_when_every_action_is_safe_to_repeat() -> None:
    safe = [render("import_certificate", ordinary_params()["import_certificate"])]
    assert render_plan(safe).idempotent is True
    restart = render("restart", {"mode": "iisreset"})
    assert render_plan([*safe, restart]).idempotent is False
    assert render_plan(safe).read_only is False


def test_secrets_inside_a_plan_are_masked_and_never_embedded_unasked() -> None:
    pfx = render("import_pfx", ordinary_params()["import_pfx"])
    plan = render_plan([pfx])
    assert "correct horse" not in repr(plan)
    assert pfx.payload not in repr(plan)
    assert plan.holds_secrets
    pfx_b64 = pfx.decoded_params()["pfx_b64"]
    message = f"failed with correct horse and {pfx_b64} in {plan.payload}"
    masked = mask_secrets(message, plan)
    assert "correct horse" not in masked
    assert pfx_b64 not in masked
    assert plan.payload not in masked
    with pytest.raises(TemplateError, match="secrets"):
        to_standalone(plan)
    assert (
        "correct horse"
        in base64.b64decode(
            json.loads(base64.b64decode(plan.payload))["actions"][0]["payload"]
        ).decode()
    )  # the host does get it
    assert not render_plan([render("restart", {"mode": "iisreset"})]).holds_secrets


def test_an_empty_plan_does_not_render() -> None:
    with pytest.raises(TemplateError, match="actions"):
        render("apply_plan", {"actions": []})
    with pytest.raises(TemplateError, match="template"):
        render("apply_plan", {"actions": [{"template": "observe", "payload": "e30="}]})


# ------------------------------------------------------------------ the simulated host's contract


def test_apply_plan_stops_at_the_first_failure_and_reports_every_action() -> None:
    host = SimulatedHost("broken-r46", faults=Faults(fail_action=1))
    scripts = [
        render("set_root_auto_update", {"disabled": True}),
        render("set_root_auto_update", {"disabled": False}),
        render("set_root_auto_update", {"disabled": None}),
    ]
    result = host.run(render_plan(scripts, observe_after=True), timeout=30)
    assert result.ok is False
    assert result.changed is True  # the first action changed the policy
    items = result.data["results"]
    assert [i["status"] for i in items] == ["done", "failed", "not_run"]
    assert [i["index"] for i in items] == [0, 1, 2]
    assert entry_result(items[0]).ok
    assert entry_result(items[0]).changed
    failed = entry_result(items[1])
    assert not failed.ok
    assert "injected" in failed.error["message"]
    assert items[2]["document"] is None
    assert result.data["observed"] is None  # not after a failure
    assert host.calls == ["set_root_auto_update", "set_root_auto_update"]
    assert host.invocations == ["apply_plan"]
    assert host.model.disable_root_auto_update is True  # the third never ran
    assert "action 2 of 3 failed" in result.error["message"]  # type: ignore[index]


def test_apply_plan_observes_after_the_last_action_when_asked() -> None:
    host = SimulatedHost("broken-r46")
    script = render_plan([render("set_root_auto_update", {"disabled": True})], observe_after=True)
    result = host.run(script, timeout=30)
    assert result.ok
    after = json.loads(result.data["observed"])
    assert after["ok"] is True
    assert after["data"]["disable_root_auto_update"] is True
    assert host.calls == ["set_root_auto_update", "observe"]


def test_an_entry_that_wrote_an_error_record_failed_even_if_its_document_says_ok() -> None:
    """A non-terminating error (an error record in the entry's merged stream) fails the
    action: apply_plan.ps1 and entry_result decide the same."""
    doc = json.dumps({"ok": True, "changed": True, "data": {}, "error": None})
    assert entry_result({"document": doc, "errors": []}).ok
    dirty = entry_result({"document": doc, "errors": ["Access is denied"]})
    assert not dirty.ok
    assert dirty.changed
    assert dirty.errors == ["Access is denied"]
    escaped = entry_result({"document": None, "error": {"message": "boom"}, "errors": []})
    assert not escaped.ok
    assert escaped.error == {"message": "boom"}
    assert not entry_result({"document": "not json"}).ok
    assert not entry_result(None).ok


def test_verify_host_builds_the_chain_of_every_bound_certificate() -> None:
    host = SimulatedHost("broken-r46")
    result = host.run(render("verify_host", {}), timeout=30)
    assert result.ok
    assert result.changed is False
    observed = json.loads(result.data["observed"])["data"]
    bound = {
        (b["certificate_hash"].upper(), "My")
        for s in observed["sites"]
        for b in s["bindings"]
        if b["protocol"] == "https" and b["certificate_hash"]
    }
    assert bound
    assert {(c["thumbprint"], c["store_name"]) for c in result.data["chains"]} == bound
    for chain in result.data["chains"]:
        assert entry_result(chain).ok
        assert entry_result(chain).data["elements"]  # type: ignore[index]
    assert host.calls == ["observe", *["verify_chain"] * len(bound)]
    assert host.invocations == ["verify_host"]
