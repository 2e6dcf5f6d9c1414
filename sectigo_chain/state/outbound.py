"""The outbound-TLS self-test's models and decisions (issue 17, point 4); pure, no I/O.

See :mod:`sectigo_chain.run.outbound` for when the self-test runs and what each outcome and
verdict means.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["DISTRUST_KINDS", "OutboundCheck", "OutboundResult", "judge", "outcome_of"]

Outcome = Literal["trusted", "untrusted", "unreachable", "tls_error", "error"]
DISTRUST_KINDS = frozenset({"remove_self_signed_root", "disallow_root", "disable_root_auto_update"})
_UNREACHABLE = frozenset({
    "NameResolutionFailure", "ConnectFailure", "Timeout", "ConnectionClosed",
    "ProxyNameResolutionFailure", "RequestProhibitedByProxy", "KeepAliveFailure",
    "ReceiveFailure", "SendFailure", "PipelineFailure", "RequestCanceled",
})  # fmt: skip


class OutboundCheck(BaseModel):
    """One run of the self-test: what the host's client got from the URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    outcome: Outcome
    web_status: str | None = None  # System.Net.WebExceptionStatus, as the host reported it
    http_status: int | None = None
    message: str | None = None
    leaf_thumbprint: str | None = None
    chain_status: tuple[str, ...] = ()

    def line(self) -> str:
        why = f" ({self.web_status}{': ' + self.message if self.message else ''})"
        return f"{self.url}: {self.outcome}{why if self.outcome != 'trusted' else ''}"


class OutboundResult(BaseModel):
    """The self-test before and after the apply, and its verdict (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    before: OutboundCheck | None = None
    after: OutboundCheck | None = None
    verdict: Literal["ok", "warn", "fail"] = "ok"
    reason: str = ""


def outcome_of(web_status: str | None) -> Outcome:
    """What a ``System.Net.WebExceptionStatus`` name means for the self-test."""
    if web_status in ("Success", "ProtocolError"):
        return "trusted"  # an HTTP status came back: the TLS handshake validated
    if web_status == "TrustFailure":
        return "untrusted"
    if web_status in _UNREACHABLE:
        return "unreachable"
    if web_status in ("SecureChannelFailure",):
        return "tls_error"
    return "error"


def judge(url: str, before: OutboundCheck | None, after: OutboundCheck) -> OutboundResult:
    """The verdict of the self-test (see the module docstring)."""
    if after.outcome == "trusted":
        return OutboundResult(url=url, before=before, after=after, verdict="ok",
                              reason="the host's own clients still validate the URL")  # fmt: skip
    if after.outcome == "untrusted" and before is not None and before.outcome == "trusted":
        reason = (
            f"after the distrust step(s) this host no longer trusts {url} (it did before): its "
            "own clients (an ACME client, API calls) would fail as in win-acme #1943; choose "
            "another --strategy, or put the root that URL needs in LocalMachine\\Root first"
        )
        return OutboundResult(url=url, before=before, after=after, verdict="fail", reason=reason)
    if after.outcome == "untrusted":
        reason = f"{url} was not trusted before the apply either: not this apply's doing"
    else:
        reason = (
            f"the self-test could not reach a verdict on trust ({after.outcome}: "
            f"{after.web_status}); check {url} from the host"
        )
    return OutboundResult(url=url, before=before, after=after, verdict="warn", reason=reason)
