"""What :func:`sectigo_chain.run.verifier.verify` reports: :class:`VerifyReport` and its parts.

:class:`HostChain` is the chain Windows builds on the host (the ``verify_chain`` template) and
whether it is right; :class:`RungResult` is one rung of the ladder that refreshes a stale served
chain; :class:`VerifyReport` holds them with the served
:class:`~sectigo_chain.tls.check.ChainReport` and the re-plan. ``to_json()`` is the
``sectigo-chain verify --json`` document; ``str()`` is for terminals.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from sectigo_chain.display.richrepr import RichRepr
from sectigo_chain.state.plan_models import BindingRecord
from sectigo_chain.tls.report import ChainReport

__all__ = [
    "LADDER",
    "RUNG_ACTIONS",
    "HostChain",
    "HostChainElement",
    "Rung",
    "RungResult",
    "VerifyReport",
]

Rung = Literal["binding", "iisreset", "http_service"]
LADDER: tuple[Rung, ...] = ("binding", "iisreset", "http_service")
RUNG_ACTIONS: dict[Rung, str] = {
    "binding": "re-apply the https binding (set_binding, same certificate)",
    "iisreset": "iisreset /restart",
    "http_service": "restart the HTTP service (net stop http /y, net start http)",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HostChainElement(_Frozen):
    """One certificate of the chain the host built (leaf first)."""

    thumbprint: str
    common_name: str
    status: tuple[str, ...] = ()


class HostChain(_Frozen):
    """What ``verify_chain`` says Windows builds for the bound certificate, and the judgement."""

    thumbprint: str
    valid: bool = False
    status: tuple[str, ...] = ()
    elements: tuple[HostChainElement, ...] = ()
    expected_served: tuple[str, ...] = ()  # thumbprints: the elements minus a self-signed anchor
    profiles: dict[str, bool] = {}
    right: bool = False
    problem: str | None = None

    def describe(self) -> str:
        names = " <- ".join(e.common_name for e in self.elements) or "no chain"
        return f"{'valid' if self.valid else 'NOT valid'}: {names}"


class RungResult(_Frozen):
    """One rung of the ladder: the script's outcome and the served chain after it."""

    rung: Rung
    action: str
    ok: bool
    changed: bool = False
    error: str | None = None
    served_verdict: str | None = None  # pass/warn/fail after the rung; None: not reachable
    served_error: str | None = None
    fixed: bool = False


class VerifyReport(RichRepr, _Frozen):
    """The outcome of :func:`verify` (``verdict`` is ``pass`` only if all three checks pass)."""

    target: str
    site: str
    binding: BindingRecord | None = None
    endpoint: str | None = None
    host_chain: HostChain | None = None
    served: ChainReport | None = None
    served_error: str | None = None
    initial_served_verdict: str | None = None
    plan_empty: bool = False
    remaining: tuple[str, ...] = ()
    rungs: tuple[RungResult, ...] = ()
    fixed_by: Rung | None = None
    reboot_required: bool = False
    verdict: Literal["pass", "fail"] = "fail"
    notes: tuple[str, ...] = ()
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    @property
    def rungs_tried(self) -> list[str]:
        """The rungs climbed, in order."""
        return [r.rung for r in self.rungs]

    def to_json(self) -> dict[str, Any]:
        """The ``sectigo-chain verify --json`` document."""
        doc = self.model_dump(mode="json", exclude={"served"})
        doc["served"] = self.served.to_json() if self.served is not None else None
        doc["rungs_tried"] = self.rungs_tried
        doc["duration"] = round(self.duration, 4)
        return doc

    def __str__(self) -> str:
        where = ""
        if self.binding is not None:
            b = self.binding
            where = f" (https {b.ip}:{b.port}{':' + b.host if b.host else ''})"
        lines = [f"verify {self.target}, site {self.site!r}{where}: {self.verdict.upper()}"]
        hc = self.host_chain
        if hc is None:
            lines.append("  on the host: not checked")
        else:
            judged = ", ".join(f"{n} {'ok' if v else 'FAILS'}" for n, v in hc.profiles.items())
            lines.append(f"  on the host (verify_chain): {hc.describe()}")
            lines.append(
                f"    {'right' if hc.right else 'WRONG'}" + (f": {judged}" if judged else "")
            )
            if hc.problem:
                lines.append(f"    {hc.problem}")
        if self.served is not None:
            judged = ", ".join(
                f"{n} {'ok' if p.valid else 'FAILS'}" for n, p in self.served.profiles.items()
            )
            chain = " <- ".join(c.common_name for c in self.served.served_chain)
            lines.append(f"  served over TLS ({self.endpoint}): {self.served.verdict.upper()}")
            lines.append(f"    {chain}; {judged}")
            lines += [f"    {f}" for f in self.served.findings]
        elif self.served_error:
            lines.append(f"  served over TLS ({self.endpoint}): ERROR {self.served_error}")
        else:
            lines.append("  served over TLS: NOT checked (no endpoint given)")
        if self.plan_empty:
            lines.append("  desired state: observed again, the plan is empty")
        else:
            lines.append("  desired state: observed again, the plan is NOT empty:")
            lines += [f"    {r}" for r in self.remaining]
        if self.rungs:
            lines.append("  ladder (host chain right, served chain stale):")
            for i, r in enumerate(self.rungs, 1):
                after = r.served_verdict or f"unreachable ({r.served_error})"
                outcome = "FIXED" if r.fixed else f"still {after}"
                err = f"; script error: {r.error}" if r.error else ""
                lines.append(f"    {i}. {r.action}: {outcome}{err}")
        if self.fixed_by:
            lines.append(f"  fixed by: {RUNG_ACTIONS[self.fixed_by]}")
        if self.reboot_required:
            lines.append("  REBOOT REQUIRED: no rung refreshed the served chain; reboot the host")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
