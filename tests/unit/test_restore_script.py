"""Issue 17 (5): the restore artefact apply writes beside the journal.

A standalone ``.ps1`` that puts back the journal's "before" state without this library. Here it
must render, parse with tree-sitter-pwsh (no ERROR or MISSING node) and pass the 5.1 lint, and,
run by the simulated host's template contract (each block's template with the very payload the
file holds, through ``SimulatedHost``), restore the state before the apply exactly. Nothing here
runs PowerShell: that the file does the same on Windows is not shown.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from test_ps_lint import ps_lint, syntax_problems

from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.restore import restore_path, restore_runs, restore_script
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.render import render

FAST = RetryPolicy(attempts=3, wait_initial=0)
_BLOCK = re.compile(
    r"^# ---- sectigo_chain template (\w+) \(step (\d+) of (\d+)\)[^\n]*\n(?:#[^\n]*\n)*"
    r"\$SectigoPayload = '([A-Za-z0-9+/=]*)'$",
    re.MULTILINE,
)


def _runs(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(template, payload) of every block of a standalone plan script, in order."""
    found = _BLOCK.findall(text)
    assert found, "no template block"
    assert [int(i) for _, i, _, _ in found] == list(range(1, len(found) + 1))
    assert {int(n) for _, _, n, _ in found} == {len(found)}
    return [(name, json.loads(base64.b64decode(payload))) for name, _, _, payload in found]


CASES = [
    ("broken-r46", "remove_and_disallow"),  # removed .AuthRoot root (staged), Disallowed added
    ("misplaced", "remove"),  # copies removed from LocalMachine\Root and CurrentUser\CA
    ("user-key", "remove"),  # the leaf and its key moved out of CurrentUser\My
    ("drift", "disable_auto_update"),  # a policy value set
    ("expiring-intermediate", "remove"),  # intermediates removed from LocalMachine\CA
    ("shared-ip", "remove"),
]


@pytest.mark.parametrize(("name", "strategy"), CASES)
def test_restore_script_restores_the_before_state_through_the_template_contract(
    name: str, strategy: str, tmp_path: Path
) -> None:
    host = SimulatedHost(name)
    now = dt.datetime.now(dt.timezone.utc)
    host.served_chain("Default Web Site")  # the served-chain cache is part of the state
    before = host.snapshot()
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog, root_strategy=strategy)  # type: ignore[arg-type]
    p = plan(desired, observe(host), at=now, catalog=host.catalog)
    result = apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                   retry=FAST, at=now)  # fmt: skip
    assert result.journal is not None
    assert result.restore_script == str(restore_path(result.journal))
    path = Path(result.restore_script)
    assert path.parent == Path(result.journal).parent
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="ascii")
    assert syntax_problems(text) == []
    assert ps_lint(text) == []
    assert "pfx_b64" not in text
    assert text.startswith("# sectigo_chain RESTORE script")
    assert "written by `sectigo-chain apply`" in text
    assert host.snapshot() != before
    runs = _runs(text)
    assert runs[-1][0] == "restart"  # the apply restarted: so does the restore, last
    for template, params in runs:
        outcome = host.run(render(template, params))
        assert outcome.ok, (template, outcome.error)
    host.served_chain("Default Web Site")  # served again after the restore's restart
    assert host.snapshot() == before
    # run twice: every template re-checks first, so nothing changes and nothing fails
    for template, params in runs:
        assert host.run(render(template, params)).ok
    assert host.snapshot() == before


def test_a_staged_restore_uses_a_store_that_does_not_hold_the_certificate() -> None:
    step = {
        "index": 0, "kind": "remove_self_signed_root", "template": "remove_certificate",
        "params": {}, "status": "done",
        "backup": {"der_b64": "AAAA", "thumbprint": "AB" * 20, "store_location": "LocalMachine",
                   "store_name": "Root", "physical_store": ".AuthRoot"},
    }  # fmt: skip
    doc = {"steps": [step]}
    free = restore_runs(doc, lambda tp: set())
    assert [(t, q.get("store_name") or q.get("from_store")) for t, q in free] == [
        ("import_certificate", "CA"),
        ("move_certificate", "CA"),
    ]
    assert free[1][1]["remove_source"] is True
    busy = restore_runs(doc, lambda tp: {"CA"})
    assert busy[0] == ("import_certificate", {**busy[0][1], "store_name": "My"})
    assert busy[1][1]["from_store"] == "My"
    full = restore_runs(doc, lambda tp: {"CA", "My", "WebHosting"})
    assert [t for t, _ in full] == ["move_certificate"]
    assert full[0][1]["remove_source"] is False  # copies from a store that keeps its copy


def test_steps_that_never_ran_are_not_restored_and_an_empty_journal_says_so() -> None:
    step = {"index": 0, "kind": "import_cross_sign", "template": "import_certificate",
            "params": {"thumbprint": "AB" * 20}, "status": "not_run"}  # fmt: skip
    assert restore_runs({"steps": [step]}) == []
    text = restore_script({"steps": [step], "target": "sim://x\n$(evil)"}, journal="j.json")
    assert "Nothing to restore" in text
    assert syntax_problems(text) == []
    assert all(line == "" or line.startswith("#") for line in text.splitlines())
