"""Plans and their outcomes: :class:`Action`, :class:`Plan`, :class:`ApplyResult`.

An :class:`Action` is one run of one action template (``template`` + ``params``), with the human
reason, what was backed up from the observed state before it (``backup``, ``previous_binding``,
``previous_value``) and how to undo it (``rollback``). Secrets needed at apply time (the PFX
and its password) sit in ``secret_params``: excluded from every dump and repr, never in a
journal or a Plan JSON document.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from sectigo_chain.display.richrepr import RichRepr
from sectigo_chain.state.outbound import OutboundResult

__all__ = [
    "Action",
    "ActionKind",
    "ApplyResult",
    "BindingRecord",
    "CertBackup",
    "Plan",
    "StepResult",
]

ActionKind = Literal[
    "import_cross_sign",
    "remove_misplaced",
    "remove_duplicate",
    "remove_expired_intermediate",
    "disallow_root",
    "disable_root_auto_update",
    "remove_self_signed_root",
    "import_pfx",
    "move_leaf",
    "set_binding",
    "restart",
    "rebuild_ccs_pfx",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CertBackup(_Frozen):
    """Everything needed to put a removed certificate back where it was."""

    der_b64: str
    thumbprint: str
    store_location: str
    store_name: str
    physical_store: str | None = None
    friendly_name: str = ""
    has_private_key: bool = False


class BindingRecord(_Frozen):
    """An IIS binding as the templates report it (``Binding`` in the contract)."""

    site: str
    protocol: str = "https"
    ip: str = "*"
    port: int = 443
    host: str = ""
    ssl_flags: int = 0
    certificate_hash: str | None = None
    certificate_store: str | None = None


class Action(_Frozen):
    """One step of a plan: one action template run with one payload."""

    kind: ActionKind
    reason: str
    template: str
    params: dict[str, Any]
    secret_params: dict[str, SecretStr] = Field(default_factory=dict, exclude=True, repr=False)
    backup: CertBackup | None = None
    previous_binding: BindingRecord | None = None
    shared_binding: BindingRecord | None = Field(
        None,
        description="a new non-SNI binding's IP:port is already another binding's HTTP.sys "
        "entry: that binding (with its certificate), restored when the new one is rolled back",
    )
    previous_value: bool | None = None
    rollback: str = ""
    revert_after: dt.date | None = Field(
        None,
        description="a distrust action's review date: the earlier of the cross-sign's and the "
        "old clients' anchor's expiry (``sectigo-chain review`` lists it when due)",
    )
    revert_reason: str = ""

    def render_params(self) -> dict[str, Any]:
        """The full payload for the template (secrets included): for executors only."""
        merged = dict(self.params)
        merged.update({k: v.get_secret_value() for k, v in self.secret_params.items()})
        return merged

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


class Plan(RichRepr, _Frozen):
    """Ordered actions, the reasons nothing else needs doing, and warnings to read first."""

    target: str = ""
    actions: tuple[Action, ...] = ()
    noop_reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    root: Literal["R46", "E46"] | None = None
    affected_sites: tuple[str, ...] = ()
    outbound_url: str | None = Field(
        None,
        description="the plan distrusts a root: apply tests the host's own outbound TLS to "
        "this URL before and after (issue 17; None: no self-test)",
    )

    @property
    def empty(self) -> bool:
        """True when there is nothing to do."""
        return not self.actions

    def summary_lines(self) -> list[str]:
        """Human-readable lines: warnings, numbered actions, no-op reasons."""
        lines = [f"WARNING: {w}" for w in self.warnings]
        if self.actions:
            lines.append(f"{len(self.actions)} action(s):")
            lines += [f"  {i + 1}. [{a.kind}] {a.reason}" for i, a in enumerate(self.actions)]
        else:
            lines.append("Nothing to do.")
        lines += [f"  = {r}" for r in self.noop_reasons]
        if self.outbound_url:
            lines.append(f"  self-test: the host's outbound TLS to {self.outbound_url}, "
                         "before and after the distrust step(s)")  # fmt: skip
        lines += [
            f"  review: step {i + 1} [{a.kind}] {a.revert_reason}"
            for i, a in enumerate(self.actions)
            if a.revert_after is not None
        ]
        return lines

    def __str__(self) -> str:
        from sectigo_chain.logs import escape_controls  # names in reasons cannot forge lines

        return "\n".join(escape_controls(line) for line in self.summary_lines())


class StepResult(_Frozen):
    """What one applied action did."""

    index: int
    kind: ActionKind
    template: str
    changed: bool
    data: Any = None


class ApplyResult(RichRepr, _Frozen):
    """The outcome of :func:`sectigo_chain.run.applier.apply`."""

    target: str
    plan: Plan
    steps: tuple[StepResult, ...] = ()
    changed: bool = False
    journal: str | None = None
    restore_script: str | None = None
    outbound: OutboundResult | None = None  # the self-test, when the plan had one
    after_plan: Plan | None = None
    after_plan_empty: bool = True

    def to_document(self) -> dict[str, Any]:
        """The ``--json`` document of ``sectigo-chain apply``."""
        after: dict[str, Any] = {"plan_empty": self.after_plan_empty}
        if self.after_plan is not None:
            after["plan"] = self.after_plan.model_dump(mode="json")
        return {
            "target": self.target,
            "plan": self.plan.model_dump(mode="json"),
            "changed": self.changed,
            "journal": self.journal,
            "restore_script": self.restore_script,
            "outbound": self.outbound.model_dump(mode="json") if self.outbound else None,
            "steps": [s.model_dump(mode="json") for s in self.steps],
            "after": after,
        }
