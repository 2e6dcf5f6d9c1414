"""``apply(plan, executor) -> ApplyResult``: run a plan's actions in order, safely.

Before each step the journal (see :mod:`sectigo_chain.run.journal`) records the step with the
backup the plan took from the observed state (a removal's DER, store, physical store and
properties; the previous binding; the previous policy value). The journal is written with mode
0600 and fsync'd before the step runs (``n + 1`` writes for ``n`` steps: see the journal). When
a step fails (the script reports an error, or the connection or deadline is lost after
retries), apply rolls back every step that ran or may have run, in reverse, and raises
:class:`~sectigo_chain.errors.ApplyError` saying what failed, what was rolled back and where
the journal is. Before the first step the journal also records the state observed then
(``before``, passed in or observed here), which rollback checks the host against at its end.
After a successful run it observes the host again and re-plans:
``ApplyResult.after_plan_empty`` says whether the host now matches the desired state.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from pydantic import SecretStr

from sectigo_chain.errors import ApplyError, ExecutionError, PlanRefused, TemplateError
from sectigo_chain.hosts.base import Executor
from sectigo_chain.hosts.retry import RetryPolicy, run_script
from sectigo_chain.run.journal import Journal, RollbackResult, rollback
from sectigo_chain.run.outbound import (
    DISTRUST_KINDS,
    OutboundCheck,
    OutboundResult,
    judge,
    outbound_self_test,
)
from sectigo_chain.state.lifecycle import EXPIRING_WITHIN_DAYS
from sectigo_chain.state.models import DesiredState, ObservedState
from sectigo_chain.state.plan_models import Action, ApplyResult, Plan, StepResult
from sectigo_chain.state.planner import plan as make_plan
from sectigo_chain.x509.catalog import Catalog

__all__ = ["apply", "default_journal_path", "observe"]

Progress = Callable[[int, int, Action], None]
_log = logging.getLogger(__name__)


def observe(
    executor: Executor,
    *,
    timeout: float = 120.0,
    retry: RetryPolicy | None = None,
    ccs_password: SecretStr | None = None,
) -> ObservedState:
    """Run the read-only ``observe`` template and parse its document; a host with a Central
    Certificate Store binding also gets ``inspect_ccs`` (what its PFX files hold, opened with
    ``ccs_password``; see :mod:`sectigo_chain.run.ccs`)."""
    from sectigo_chain.run.ccs import observe_ccs
    from sectigo_chain.templates.render import render

    result = run_script(executor, render("observe", {}), timeout=timeout, policy=retry)
    if not result.ok or not isinstance(result.data, dict):
        message = (result.error or {}).get("message") or "; ".join(result.errors) or "no data"
        raise ExecutionError(
            f"{executor.target}: observe failed: {message}", host=executor.target, script="observe"
        )
    observed = ObservedState.model_validate(result.data)
    return observe_ccs(executor, observed, password=ccs_password, timeout=timeout, retry=retry)


def default_journal_path(target: str, directory: Path | None = None) -> Path:
    """``<dir>/sectigo-chain-journal-<target>-<UTC timestamp>.json`` (dir: the current one)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("_") or "target"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return (directory or Path.cwd()) / f"sectigo-chain-journal-{safe}-{stamp}.json"


def _unfinished_removal(action: Action, data: Any) -> str | None:
    """A machine-store removal that removed nothing while the store still shows the
    certificate did not do its job, whatever ``ok`` says (a copy in a physical store the
    template does not change): the step fails and the apply rolls back."""
    if action.template != "remove_certificate" or not isinstance(data, dict):
        return None
    params = action.params
    if params.get("store_location") != "LocalMachine":
        return None  # a CurrentUser store also shows the machine's copies: not the user's own
    if data.get("removed") is False and data.get("still_present") is True:
        where = f"LocalMachine\\{params.get('store_name')}"
        return f"{action.params.get('thumbprint')} is still in {where} after the removal"
    return None


def _step_record(index: int, action: Action) -> dict[str, Any]:
    return {
        "index": index,
        "kind": action.kind,
        "reason": action.reason,
        "template": action.template,
        "params": dict(action.params),
        "backup": action.backup.model_dump(mode="json") if action.backup else None,
        "previous_binding": (
            action.previous_binding.model_dump(mode="json") if action.previous_binding else None
        ),
        "shared_binding": (
            action.shared_binding.model_dump(mode="json") if action.shared_binding else None
        ),
        "previous_value": action.previous_value,
        # A distrust action's review date (``sectigo-chain review`` reads it; issue 17).
        "revert_after": action.revert_after.isoformat() if action.revert_after else None,
        "revert_reason": action.revert_reason or None,
        "status": "pending",
    }


def apply(
    plan: Plan,
    executor: Executor,
    *,
    desired: DesiredState | None = None,
    catalog: Catalog | None = None,
    allow_group_policy_override: bool = False,
    expiring_within_days: int = EXPIRING_WITHIN_DAYS,
    journal_dir: Path | None = None,
    journal_path: Path | None = None,
    timeout: float = 120.0,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
    at: dt.datetime | None = None,
    before: ObservedState | None = None,
) -> ApplyResult:
    """Run ``plan`` on ``executor``; with ``desired``, re-observe and re-plan afterwards.

    ``before``: the state just observed (the one the plan was made from); without it, apply
    observes the host before its first step. It is journaled: rollback compares the host
    with it at its end."""
    target = executor.target
    steps: list[StepResult] = []
    journal: Journal | None = None
    restore: Path | None = None
    outbound: OutboundResult | None = None
    if plan.actions:
        # The journal is written (fsync'd) before each step runs. The first write creates it
        # with the plan, every step's backup and step 1 "running"; each later one also carries
        # the previous step's result ("done"), which rollback does not need (it undoes
        # "running" steps too), so it shares the write that precedes the next step.
        records = [_step_record(i, a) for i, a in enumerate(plan.actions)]
        records[0]["status"] = "running"
        path = journal_path or default_journal_path(target, journal_dir)
        if before is None:
            before = observe(executor, timeout=timeout, retry=retry)
        baseline = (
            outbound_self_test(executor, plan.outbound_url, timeout=timeout, retry=retry)
            if plan.outbound_url
            else None
        )  # the host's own outbound TLS before the distrust (read-only)
        journal = Journal.create(
            path, target, plan.model_dump(mode="json"), records,
            before=before.model_dump(mode="json"),
        )  # fmt: skip
        try:
            if baseline is not None:
                journal.doc["outbound"] = {"url": plan.outbound_url,
                                           "before": baseline.model_dump(mode="json")}  # fmt: skip
            steps = _run_steps(plan, executor, journal, progress, timeout, retry)
            if plan.outbound_url:
                outbound = _self_test(plan, executor, journal, baseline, steps, timeout, retry)
        finally:
            journal.close()
        restore = _write_restore(journal, executor, timeout, retry)
    after_plan: Plan | None = None
    after_empty = True
    if desired is not None:
        observed = observe(executor, timeout=timeout, retry=retry,
                           ccs_password=desired.ccs_password)  # fmt: skip
        try:
            after_plan = make_plan(
                desired,
                observed,
                at=at or dt.datetime.now(dt.timezone.utc),
                catalog=catalog,
                allow_group_policy_override=allow_group_policy_override,
                target=target,
                expiring_within_days=expiring_within_days,
            )
            after_empty = after_plan.empty
        except PlanRefused:
            after_empty = False
    return ApplyResult(
        target=target,
        plan=plan,
        steps=tuple(steps),
        changed=any(s.changed for s in steps),
        journal=str(journal.path) if journal else None,
        restore_script=str(restore) if restore else None,
        outbound=outbound,
        after_plan=after_plan,
        after_plan_empty=after_empty,
    )


def _self_test(
    plan: Plan,
    executor: Executor,
    journal: Journal,
    baseline: OutboundCheck | None,
    steps: list[StepResult],
    timeout: float,
    retry: RetryPolicy | None,
) -> OutboundResult:
    """The outbound-TLS self-test after the steps (issue 17; :mod:`sectigo_chain.run.outbound`):
    journaled; a URL trusted before and untrusted after fails the apply at the last distrust
    step, which rolls everything back."""
    assert plan.outbound_url is not None
    after = outbound_self_test(executor, plan.outbound_url, timeout=timeout, retry=retry)
    result = judge(plan.outbound_url, baseline, after)
    journal.doc["outbound"] = result.model_dump(mode="json")
    if result.verdict == "fail":
        index = max(i for i, a in enumerate(plan.actions) if a.kind in DISTRUST_KINDS)
        journal.doc["status"] = "failed"
        journal.write()
        failure = f"outbound self-test failed: {result.reason}"
        _fail(plan, executor, journal, index, plan.actions[index], failure, steps, timeout, retry)
    journal.write()
    return result


def _write_restore(
    journal: Journal, executor: Executor, timeout: float, retry: RetryPolicy | None
) -> Path | None:
    """Write the restore ``.ps1`` beside the journal (issue 17; see run/restore.py). The apply
    has succeeded: a failure here is logged and leaves the journal as the way back."""
    from sectigo_chain.run.restore import needs_store_lookup, write_restore

    holding = None
    try:
        if needs_store_lookup(journal.doc):
            observed = observe(executor, timeout=timeout, retry=retry)

            def holding(thumb: str) -> set[str]:
                return {c.store_name for c in observed.find(thumb, "LocalMachine")}

        return write_restore(journal.path, journal.doc, holding)
    except (OSError, ExecutionError, TemplateError) as exc:
        _log.warning("restore script not written (the journal still rolls back): %s", exc)
        return None


def _run_steps(
    plan: Plan,
    executor: Executor,
    journal: Journal,
    progress: Progress | None,
    timeout: float,
    retry: RetryPolicy | None,
) -> list[StepResult]:
    """Run every action in order, journaled; on a failure roll back and raise ApplyError."""
    from sectigo_chain.templates.render import render

    steps: list[StepResult] = []
    total = len(plan.actions)
    for index, action in enumerate(plan.actions):
        record = journal.steps[index]
        if progress is not None:
            progress(index, total, action)
        if index:
            record["status"] = "running"
            journal.write()
        failure: str | None = None
        ran = False
        try:
            script = render(action.template, action.render_params())
            ran = True
            result = run_script(executor, script, timeout=timeout, policy=retry)
            if not result.ok:
                failure = (result.error or {}).get("message") or "; ".join(result.errors)
                failure = failure or "the script reported failure"
            else:
                failure = _unfinished_removal(action, result.data)
        except (ExecutionError, TemplateError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        if failure is not None:
            # A payload that does not render never reached the host: rollback skips it.
            record["status"] = "failed" if ran else "not_run"
            record["error"] = failure
            journal.doc["status"] = "failed"
            journal.write()
            _fail(plan, executor, journal, index, action, failure, steps, timeout, retry)
        record["status"] = "done"
        record["changed"] = result.changed
        record["data"] = result.data
        steps.append(
            StepResult(
                index=index,
                kind=action.kind,
                template=action.template,
                changed=result.changed,
                data=result.data,
            )
        )
    journal.doc["status"] = "applied"
    journal.write()
    return steps


def _fail(
    plan: Plan,
    executor: Executor,
    journal: Journal,
    index: int,
    action: Action,
    failure: str,
    steps: list[StepResult],
    timeout: float,
    retry: RetryPolicy | None,
) -> NoReturn:
    total = len(plan.actions)
    what = f"step {index + 1}/{total} ({action.kind}: {action.reason})"
    try:
        rb: RollbackResult | None = rollback(journal, executor, timeout=timeout, retry=retry)
    except ExecutionError as exc:  # pragma: no cover - rollback catches per step
        rb = None
        rb_error = str(exc)
    else:
        rb_error = ""
    complete = rb is not None and rb.complete
    undone = list(rb.undone) if rb else []
    if complete:
        rolled = f"rolled back {len(undone)} step(s) ({', '.join(undone) or 'none'})"
    else:
        problems = "; ".join(rb.errors) if rb else rb_error
        rolled = (
            f"ROLLBACK INCOMPLETE ({problems}); undone: {', '.join(undone) or 'nothing'}; run "
            f"'sectigo-chain rollback {journal.path} --target {executor.target}' when the host "
            "is reachable"
        )
    partial = ApplyResult(
        target=executor.target, plan=plan, steps=tuple(steps), changed=bool(steps),
        journal=str(journal.path), after_plan_empty=False,
    )  # fmt: skip
    raise ApplyError(
        f"apply failed at {what}: {failure}. {rolled}. Journal: {journal.path}",
        failed_action=what,
        rolled_back=undone,
        rollback_complete=complete,
        journal=str(journal.path),
        result=partial,
    )
