"""The one place scripts are retried (tenacity, ``reraise=True``).

Only :class:`~sectigo_chain.errors.ConnectionFailed` and
:class:`~sectigo_chain.errors.ScriptTimeout` are retried, and only for scripts whose template
is idempotent (``RenderedScript.idempotent``). Why that is safe, per template:

* ``observe``, ``verify_chain``: read-only; running them twice changes nothing.
* ``import_certificate``, ``disallow_certificate``, ``import_pfx``: check whether the
  thumbprint is already in the store first and report ``already_present`` instead of adding it.
* ``remove_certificate``: a second run finds nothing to remove and reports ``removed: false``.
* ``move_certificate``: copies only when the destination lacks it, removes the source only
  when it is still there.
* ``set_binding``, ``remove_binding``, ``set_root_auto_update``: set a value to a target; a
  second run sets the same value.
* ``restart`` is NOT idempotent and never retried: after a timeout the first run may still
  be stopping services on the host, and a second stop would race it (issue 11).

A :class:`~sectigo_chain.errors.ScriptFailed` (the script ran and said no) is never retried:
running it again would fail the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from sectigo_chain.errors import ConnectionFailed, ScriptTimeout

if TYPE_CHECKING:
    from sectigo_chain.hosts.base import Executor, ScriptResult
    from sectigo_chain.templates.render import RenderedScript

__all__ = ["RetryPolicy", "run_script"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry an idempotent script."""

    attempts: int = 3
    wait_initial: float = 1.0
    wait_max: float = 10.0


def run_script(
    executor: Executor,
    script: RenderedScript,
    *,
    timeout: float,
    policy: RetryPolicy | None = None,
) -> ScriptResult:
    """Run ``script``; retry transient failures if (and only if) it is idempotent."""
    pol = policy or RetryPolicy()
    if not script.idempotent or pol.attempts <= 1:
        return executor.run(script, timeout=timeout)
    try:  # the first attempt without tenacity's bookkeeping (most scripts succeed at once)
        return executor.run(script, timeout=timeout)
    except (ConnectionFailed, ScriptTimeout) as exc:
        first: BaseException | None = exc
    retrying = Retrying(
        retry=retry_if_exception_type((ConnectionFailed, ScriptTimeout)),
        stop=stop_after_attempt(pol.attempts),
        wait=wait_exponential(multiplier=pol.wait_initial, max=pol.wait_max),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            if first is not None:  # tenacity's attempt 1 is the failure above: same waits
                failed, first = first, None
                raise failed
            return executor.run(script, timeout=timeout)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
