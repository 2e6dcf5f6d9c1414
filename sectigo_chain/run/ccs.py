"""What the Central Certificate Store's PFX files hold (issue 17, point 6).

A CCS binding (sslFlags bit 2) is served from the PFX named after its host name in the CCS
share (``<host>.pfx``; a wildcard certificate: ``_.<domain>.pfx``), not from a certificate
store (Microsoft, "IIS 8.0 Centralized SSL Certificate Support"). :func:`observe_ccs` runs the
read-only ``inspect_ccs`` template for the files a host's CCS bindings need and returns the
observed state with :attr:`~sectigo_chain.state.models.ObservedState.ccs` filled in; the
planner (:mod:`sectigo_chain.state.ccs`) decides what is missing. Hosts without a CCS binding
pay nothing (no extra script).
"""

from __future__ import annotations

from pydantic import SecretStr, ValidationError

from sectigo_chain.errors import ExecutionError, TemplateError
from sectigo_chain.hosts.base import Executor
from sectigo_chain.hosts.retry import RetryPolicy, run_script
from sectigo_chain.state.ccs import ccs_file_names
from sectigo_chain.state.models import ObservedCcs, ObservedState

__all__ = ["observe_ccs"]


def observe_ccs(
    executor: Executor,
    observed: ObservedState,
    *,
    password: SecretStr | None = None,
    timeout: float = 120.0,
    retry: RetryPolicy | None = None,
) -> ObservedState:
    """``observed`` with what its CCS files hold (unchanged when no binding uses the CCS). A
    failure to read the share is recorded in ``ccs.error``, never raised: observing must not
    fail because a file share is unreachable (e.g. over WinRM without delegation)."""
    from sectigo_chain.templates.render import render

    names = ccs_file_names(observed)
    if not names:
        return observed
    params: dict[str, object] = {"files": names}
    if password is not None:
        params["password"] = password.get_secret_value()
    try:
        result = run_script(executor, render("inspect_ccs", params), timeout=timeout,
                            policy=retry)  # fmt: skip
        if not result.ok or not isinstance(result.data, dict):
            message = (result.error or {}).get("message") or "; ".join(result.errors)
            ccs = ObservedCcs(error=message or "inspect_ccs returned no data")
        else:
            ccs = ObservedCcs.model_validate(result.data)
    except (ExecutionError, TemplateError, ValidationError) as exc:
        ccs = ObservedCcs(error=f"{type(exc).__name__}: {exc}")
    return observed.model_copy(update={"ccs": ccs})
