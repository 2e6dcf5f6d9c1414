"""``apply(plan, executor) -> ApplyResult``: run a plan's actions in order, safely.

The actions of a plan run in ONE invocation on the host (the ``apply_plan`` template: one WinRM
pipeline), which runs them in order, stops at the first that fails and returns a result per
action (issue 12). Before it starts, the journal (see :mod:`sectigo_chain.run.journal`) records
every step with the backup the plan took from the observed state (a removal's DER, store,
physical store and properties; the previous binding; the previous policy value), each step
``running`` (it may run), and the state observed then (``before``, passed in or observed here).
The journal is written with mode 0600 and fsync'd before the pipeline starts, so a connection
lost in the middle of it never loses a backup. The second write records each action's outcome
(``done`` with its result, ``failed`` with its error, ``not_run``). When an action fails (or
the result is lost: a dropped connection, a deadline), apply rolls back every step that ran or
may have run, in reverse (every inverse is idempotent: undoing a step that did not run changes
nothing; rollback then observes the host and compares it with ``before``), and raises
:class:`~sectigo_chain.errors.ApplyError` saying what failed, what was rolled back and where
the journal is. The same pipeline observes the host right after the last action (when asked);
apply re-plans from that: ``ApplyResult.after_plan_empty`` says whether the host now matches
the desired state.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from pydantic import SecretStr

from sectigo_chain.errors import (
    ApplyError,
    ExecutionError,
    InputError,
    PlanRefused,
    ScriptFailed,
    TemplateError,
)
from sectigo_chain.hosts.base import Executor, entry_result
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
    after: ObservedState | None = None
    if plan.actions:
        # One journal write before the pipeline: the plan, every step's backup, every step
        # "running" (the pipeline may run any of them), the state before. One after it: each
        # step's outcome. (Rollback undoes "running" steps too.)
        records = [_step_record(i, a) for i, a in enumerate(plan.actions)]
        for record in records:
            record["status"] = "running"
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
            # The same pipeline observes the host after the last action: the re-plan and the
            # restore script read that state (no further pipeline).
            steps, after = _run_steps(plan, executor, journal, progress, timeout, retry, True)
            if plan.outbound_url:
                outbound = _self_test(plan, executor, journal, baseline, steps, timeout, retry)
        finally:
            journal.close()
        restore = _write_restore(journal, executor, timeout, retry, after)
    after_plan: Plan | None = None
    after_empty = True
    if desired is not None:
        from sectigo_chain.run.ccs import observe_ccs

        # apply_plan's own observe has no CCS file content: a host with a CCS binding gets
        # inspect_ccs (one pipeline; none for the others).
        observed = (
            observe_ccs(
                executor, after, password=desired.ccs_password, timeout=timeout, retry=retry
            )
            if after is not None
            else observe(executor, timeout=timeout, retry=retry, ccs_password=desired.ccs_password)
        )
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
    changed = any(s.changed for s in steps)
    if not changed and steps and before is not None and after is not None:
        # A plan sent again whole after its reply was lost: the second run found every action
        # done already (changed: false), yet the first one changed the host.
        from sectigo_chain.run.journal_schema import state_differences

        changed = bool(state_differences(before, after))
    return ApplyResult(
        target=target,
        plan=plan,
        steps=tuple(steps),
        changed=changed,
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
        _fail(plan, executor, journal, _what(plan, index), failure, steps, timeout, retry)
    journal.write()
    return result


def _write_restore(
    journal: Journal,
    executor: Executor,
    timeout: float,
    retry: RetryPolicy | None,
    after: ObservedState | None = None,
) -> Path | None:
    """Write the restore ``.ps1`` beside the journal (issue 17; see run/restore.py). The apply
    has succeeded: a failure here is logged and leaves the journal as the way back. ``after``:
    the state observed right after the actions (by the same pipeline), when there is one."""
    from sectigo_chain.run.restore import needs_store_lookup, write_restore

    holding = None
    try:
        if needs_store_lookup(journal.doc):
            observed = after or observe(executor, timeout=timeout, retry=retry)

            def holding(thumb: str) -> set[str]:
                return {c.store_name for c in observed.find(thumb, "LocalMachine")}

        return write_restore(journal.path, journal.doc, holding)
    except (OSError, ExecutionError, TemplateError) as exc:
        _log.warning("restore script not written (the journal still rolls back): %s", exc)
        return None


def _document(text: Any) -> dict[str, Any] | None:
    """An entry's JSON document (apply_plan passes them on as text), or None."""
    if not isinstance(text, str):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "ok" in doc else None


def _entry_failure(item: dict[str, Any], doc: dict[str, Any] | None) -> str:
    """Why one apply_plan entry failed: its error record, its document's error, or both."""
    parts = []
    if doc is not None and isinstance(doc.get("error"), dict):
        parts.append(str(doc["error"].get("message") or "the script reported failure"))
    if isinstance(item.get("error"), dict):
        parts.append(str(item["error"].get("message") or "a terminating error"))
    parts += [str(e) for e in item.get("errors") or ()]
    if doc is None and not parts:
        parts.append("no result document")
    return "; ".join(parts) or "the script reported failure"


def _run_steps(
    plan: Plan,
    executor: Executor,
    journal: Journal,
    progress: Progress | None,
    timeout: float,
    retry: RetryPolicy | None,
    observe_after: bool = False,
) -> tuple[list[StepResult], ObservedState | None]:
    """Run every action in one ``apply_plan`` invocation, journaled; on a failure roll back
    and raise ApplyError. Returns the steps and the state observed right after them."""
    from sectigo_chain.templates.render import render, render_plan

    total = len(plan.actions)
    scripts = []
    for index, action in enumerate(plan.actions):
        try:
            scripts.append(render(action.template, action.render_params()))
        except (TemplateError, InputError) as exc:
            # A payload that does not render: nothing is sent (rollback skips "not_run").
            for record in journal.steps:
                record["status"] = "not_run"
            failure = f"{type(exc).__name__}: {exc}"
            journal.steps[index]["error"] = failure
            journal.doc["status"] = "failed"
            journal.write()
            _fail(plan, executor, journal, _what(plan, index), failure, [], timeout, retry)
    if progress is not None:
        for index, action in enumerate(plan.actions):
            progress(index, total, action)
    script = render_plan(scripts, observe_after=observe_after)
    try:
        # Each action keeps the deadline one script had: the pipeline gets their sum.
        result = run_script(executor, script, timeout=timeout * total, policy=retry)
    except ScriptFailed as exc:
        # An executor raises when the document says ok=false: an action failed, and the
        # document still holds every action's result. Without one, the outcome is unknown.
        if exc.result is None or not _has_results(exc.result.data, total):
            _lost(plan, executor, journal, exc, timeout, retry)
        result = exc.result
    except ExecutionError as exc:
        _lost(plan, executor, journal, exc, timeout, retry)
    data = result.data if isinstance(result.data, dict) else {}
    items: list[Any] = data.get("results") or []
    if not _has_results(data, total):
        message = (result.error or {}).get("message") or "; ".join(result.errors)
        failure = f"apply_plan returned no result per action ({message or 'no data'})"
        journal.doc["status"] = "failed"
        journal.doc["outcome_unknown"] = True
        journal.write()
        what = f"the pipeline running all {total} step(s)"
        _fail(plan, executor, journal, what, failure, [], timeout, retry)
    steps: list[StepResult] = []
    first: tuple[int, str] | None = None
    for index, (action, item) in enumerate(zip(plan.actions, items, strict=True)):
        record = journal.steps[index]
        item = item if isinstance(item, dict) else {}
        status = item.get("status")
        doc = _document(item.get("document"))
        if status == "not_run":
            record["status"] = "not_run"
            continue
        outcome = entry_result(item)  # the rule the host applies: ok and no error record
        if status == "done" and outcome.ok:
            changed, out = outcome.changed, outcome.data
            record["status"], record["changed"], record["data"] = "done", changed, out
            unfinished = _unfinished_removal(action, out)
            if unfinished is None:
                steps.append(
                    StepResult(
                        index=index,
                        kind=action.kind,
                        template=action.template,
                        changed=changed,
                        data=out,
                    )
                )
                continue
            failure = unfinished
        else:
            failure = _entry_failure(item, doc)
            if doc is not None:
                record["data"] = doc.get("data")
        record["status"] = "failed"
        record["error"] = failure
        if first is None:
            first = (index, failure)
    if first is not None:
        journal.doc["status"] = "failed"
        journal.write()
        _fail(plan, executor, journal, _what(plan, first[0]), first[1], steps, timeout, retry)
    journal.doc["status"] = "applied"
    journal.write()
    after = None
    observed = _document(data.get("observed"))
    if observed is not None and observed.get("ok") and isinstance(observed.get("data"), dict):
        try:
            after = ObservedState.model_validate(observed["data"])
        except ValueError as exc:  # observed again separately below
            _log.warning("the state observed after the actions is unreadable: %s", exc)
    return steps, after


def _has_results(data: Any, total: int) -> bool:
    """Whether an apply_plan document's data holds a result for each of ``total`` actions."""
    items = data.get("results") if isinstance(data, dict) else None
    return isinstance(items, list) and len(items) == total


def _lost(
    plan: Plan,
    executor: Executor,
    journal: Journal,
    exc: ExecutionError,
    timeout: float,
    retry: RetryPolicy | None,
) -> NoReturn:
    """The result is lost: any action may have run. Every step stays "running": rollback
    undoes them all (idempotent inverses) and checks the host against "before"."""
    failure = f"{type(exc).__name__}: {exc}"
    journal.doc["status"] = "failed"
    journal.doc["outcome_unknown"] = True
    journal.write()
    what = f"the pipeline running all {len(plan.actions)} step(s) (its result was lost)"
    _fail(plan, executor, journal, what, failure, [], timeout, retry)


def _what(plan: Plan, index: int) -> str:
    action = plan.actions[index]
    return f"step {index + 1}/{len(plan.actions)} ({action.kind}: {action.reason})"


def _fail(
    plan: Plan,
    executor: Executor,
    journal: Journal,
    what: str,
    failure: str,
    steps: list[StepResult],
    timeout: float,
    retry: RetryPolicy | None,
) -> NoReturn:
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
