"""Rollback puts a removed CurrentUser copy back into the user's own store, not only into the
view of LocalMachine's store that CurrentUser's CA/Root/Disallowed also show."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.errors import ApplyError
from sectigo_chain.hosts.base import ScriptResult
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.render import decode_payload, render
from sectigo_chain.x509.certs import thumbprint


def _user_copies(host: SimulatedHost, tp: str) -> list[tuple[str, str | None]]:
    return sorted(
        (c.store_name, c.physical_store)
        for c in observe(host).find(tp, "CurrentUser")
        if c.physical_store is not None  # the user's own copies, not the machine's seen through
    )


def test_a_misplaced_user_copy_comes_back_after_a_failed_apply(tmp_path: Path) -> None:
    at = dt.datetime.now(dt.timezone.utc)
    probe = SimulatedHost("misplaced")
    cross = thumbprint(probe.lab.r46_cross)
    desired = sectigo_fix(site="Default Web Site", catalog=probe.catalog)
    steps = len(plan(desired, observe(probe), at=at, catalog=probe.catalog).actions)
    assert steps >= 3
    host = SimulatedHost("misplaced", faults=Faults(fail_action=steps - 1))
    before = _user_copies(host, cross)
    assert before == [("CA", ".Default")]
    the_plan = plan(desired, observe(host), at=at, catalog=host.catalog)
    assert "remove_misplaced" in [a.kind for a in the_plan.actions]
    with pytest.raises(ApplyError) as failed:
        apply(the_plan, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
              retry=RetryPolicy(attempts=1, wait_initial=0), at=at)  # fmt: skip
    assert failed.value.rollback_complete
    assert _user_copies(host, cross) == before
    # and the machine's own stores are as they were: the staging copy is gone again
    assert sorted(c.store_name for c in observe(host).find(cross, "LocalMachine")) == ["Root"]


class _RemovesNothing:
    """A host whose remove_certificate answers ok but removes nothing while the store still
    shows the certificate (what the template reported before it refused such copies: one in
    a physical store it does not know). Stands at the executor boundary: the document is
    what the host would send."""

    def __init__(self, inner: SimulatedHost) -> None:
        self.inner = inner
        self.catalog = inner.catalog
        self.answered = 0

    @property
    def target(self) -> str:
        return self.inner.target

    def run(self, script: Any, *, timeout: float) -> ScriptResult:
        if script.name == "apply_plan" and not self.answered:  # the apply's, not undo's
            # What apply_plan.ps1 returns: each entry's document as text; the removal answers
            # ok and removes nothing (the host's copy stays), the other entries really run.
            params = script.decoded_params()
            results = []
            for index, entry in enumerate(params["actions"]):
                template = entry["template"]
                if template == "remove_certificate" and not self.answered:
                    self.answered += 1
                    data = {"removed": False, "still_present": True, "backup": None}
                    doc = {"ok": True, "changed": False, "data": data, "error": None}
                else:
                    inner = render(template, decode_payload(entry["payload"]))
                    r = self.inner.run(inner, timeout=timeout)
                    doc = {"ok": r.ok, "changed": r.changed, "data": r.data, "error": r.error}
                item = {"index": index, "template": template, "status": "done"}
                results.append({**item, "document": json.dumps(doc), "error": None, "errors": []})
            observed = self.inner.run(render("observe", {}), timeout=timeout)
            after = {"ok": True, "changed": False, "data": observed.data, "error": None}
            data = {"results": results, "observed": json.dumps(after)}
            return ScriptResult(ok=True, changed=True, data=data)
        return self.inner.run(script, timeout=timeout)

    def close(self) -> None:
        self.inner.close()


def test_a_machine_removal_that_removed_nothing_fails_the_step(tmp_path: Path) -> None:
    at = dt.datetime.now(dt.timezone.utc)
    sim = SimulatedHost("broken-r46")
    host = _RemovesNothing(sim)
    desired = sectigo_fix(site="Default Web Site", catalog=sim.catalog)
    the_plan = plan(desired, observe(sim), at=at, catalog=sim.catalog)
    root = thumbprint(sim.lab.r46_root.cert)
    with pytest.raises(ApplyError, match="still in LocalMachine") as failed:
        apply(the_plan, host, desired=desired, catalog=sim.catalog, journal_dir=tmp_path,  # type: ignore[arg-type]
              retry=RetryPolicy(attempts=1, wait_initial=0), at=at)  # fmt: skip
    assert failed.value.rollback_complete
    assert observe(sim).find(root, "LocalMachine", "Root")  # untouched
    assert not observe(sim).find(thumbprint(sim.lab.r46_cross), "LocalMachine", "CA")  # undone
