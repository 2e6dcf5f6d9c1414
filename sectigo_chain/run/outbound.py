"""The outbound-TLS self-test after a distrust action (issue 17, point 4).

Distrusting a root can break the server's *own* clients: win-acme #1943 (the ACME client on the
IIS server failed after the root was distrusted). When a plan holds a distrust action (remove or
disallow the self-signed root, disable Automatic Root Update) and an outbound URL was given,
:func:`~sectigo_chain.run.applier.apply` runs the read-only ``outbound_tls_test`` template on
the host before the first step and after the last one: one HTTPS request whose certificate the
host's chain engine validates as for any client on it.

What the outcome means is decided here (:func:`outcome_of`, :func:`judge`):

* ``trusted``: the handshake validated (an HTTP error status still means the chain was fine);
* ``untrusted``: the chain engine rejected the certificate (``TrustFailure``);
* ``unreachable``: name resolution, connection, timeout, proxy: says nothing about trust;
* ``tls_error``: another TLS failure (protocol versions, ciphers): not a trust question either.

The verdict: **fail** when the URL was ``trusted`` before the apply and is ``untrusted`` after
it (this apply's distrust broke the host's own clients: the apply is rolled back); **warn** for
anything else that is not ``trusted`` after (unreachable, or already untrusted before: not this
apply's doing); **ok** otherwise. There is no default URL: the right one (the host's ACME
directory, an API it calls) is the operator's to name, and a default external URL would make
every apply depend on, and announce itself to, a third party.
"""

from __future__ import annotations

from sectigo_chain.errors import ExecutionError, InputError, TemplateError
from sectigo_chain.hosts.base import Executor
from sectigo_chain.hosts.retry import RetryPolicy, run_script
from sectigo_chain.state.outbound import (
    DISTRUST_KINDS,
    OutboundCheck,
    OutboundResult,
    judge,
    outcome_of,
)

__all__ = [
    "DISTRUST_KINDS",
    "OutboundCheck",
    "OutboundResult",
    "check_outbound_url",
    "judge",
    "outbound_self_test",
    "outcome_of",
]


def check_outbound_url(url: str | None) -> str | None:
    """``url`` if it is an https URL the template takes, else :class:`InputError`."""
    if url is None:
        return None
    from sectigo_chain.templates.params import OutboundTlsTestParams

    try:
        OutboundTlsTestParams(url=url)
    except ValueError:
        raise InputError(
            f"--outbound-url {url!r} is not an https:// URL (host, optional port and path, "
            "ASCII); give the URL the host's own clients use, e.g. its ACME directory"
        ) from None
    return url


def outbound_self_test(
    executor: Executor,
    url: str,
    *,
    timeout: float = 120.0,
    retry: RetryPolicy | None = None,
    timeout_ms: int = 15000,
) -> OutboundCheck:
    """Run ``outbound_tls_test`` on the host; a failing script is outcome ``error`` (never
    raised: the self-test reports, the caller decides)."""
    from sectigo_chain.templates.render import render

    try:
        result = run_script(executor, render("outbound_tls_test",
                                             {"url": url, "timeout_ms": timeout_ms}),
                            timeout=timeout, policy=retry)  # fmt: skip
    except (ExecutionError, TemplateError) as exc:
        return OutboundCheck(url=url, outcome="error", message=f"{type(exc).__name__}: {exc}")
    data = result.data if isinstance(result.data, dict) else None
    if not result.ok or data is None:
        message = (result.error or {}).get("message") or "; ".join(result.errors) or "no data"
        return OutboundCheck(url=url, outcome="error", message=message)
    status = data.get("web_status")
    return OutboundCheck(
        url=url, outcome=outcome_of(status), web_status=status,
        http_status=data.get("http_status"), message=data.get("message"),
        leaf_thumbprint=data.get("leaf_thumbprint"),
        chain_status=tuple(data.get("chain_status") or ()),
    )  # fmt: skip
