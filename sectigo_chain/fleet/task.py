"""One host as one task: what an automation engine (the Ansible collection's ``chain_fix``) calls.

:func:`run_task` takes one host written as an inventory entry (the same keys as a
``[[hosts]]`` table of a fleet inventory), the secret values directly (the engine holds them,
e.g. Ansible ``no_log`` variables), and a mode: ``plan`` (check mode: nothing changes) or
``apply`` (plan, apply with journal and automatic rollback, verify). It runs exactly what a
fleet runs for one host and returns a plain ``dict`` an engine can return as is:
``changed``, ``failed``, ``msg`` (one line), ``row`` (the fleet report row: actions with their
reasons, statuses, verdicts, journal path) and, when asked, ``diff`` (certificate stores and
bindings before and after, as sorted lines).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr, ValidationError

from sectigo_chain.errors import InputError, SectigoChainError

if TYPE_CHECKING:
    from sectigo_chain.hosts.base import Executor
    from sectigo_chain.state.models import ObservedState
    from sectigo_chain.x509.catalog import Catalog

__all__ = ["observed_lines", "run_task"]

TaskMode = Literal["plan", "apply", "check"]


def observed_lines(state: ObservedState) -> list[str]:
    """Stores and bindings as sorted one-line facts (for a diff): certificates by location,
    store and physical store (not the machine's seen through a CurrentUser store); https
    bindings with their certificate; HTTP.sys entries."""
    lines = [
        f"cert {c.store_location}\\{c.store_name}"
        + (f" ({c.physical_store})" if c.physical_store else "")
        + f" {c.thumbprint} {c.certificate.subject.rfc4514_string()}"
        + (" [key]" if c.has_private_key else "")
        for c in state.certificates
        if not (c.store_location == "CurrentUser" and c.physical_store is None)
    ]  # CurrentUser entries with no physical store are the machine's seen through: not copies
    for site in state.sites:
        for b in site.bindings:
            if b.protocol == "https":
                lines.append(
                    f"binding {site.name} https {b.ip}:{b.port}:{b.host} "
                    f"sslFlags={b.ssl_flags} cert={b.certificate_hash or '-'}"
                )
    lines += [
        f"http.sys {e.kind} {e.endpoint} cert={e.certificate_hash or '-'}" for e in state.sslcert
    ]
    if state.disable_root_auto_update is not None:
        lines.append(f"policy DisableRootAutoUpdate={int(state.disable_root_auto_update)}")
    return sorted(lines)


class _Kept:
    """The task's executor, lent to the fleet runner without letting it close the connection
    (the task observes again afterwards for the diff, then closes it itself)."""

    def __init__(self, inner: Executor, catalog: Catalog | None = None) -> None:
        self.inner = inner
        self.sim_host = inner if callable(getattr(inner, "served_chain", None)) else None
        # what catalog_for() reads: the one asked for, else the executor's own (if any)
        self.catalog = catalog if catalog is not None else getattr(inner, "catalog", None)

    @property
    def target(self) -> str:
        return self.inner.target

    def run(self, script: Any, *, timeout: float) -> Any:
        return self.inner.run(script, timeout=timeout)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Kept:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run_task(
    host: Mapping[str, Any],
    mode: TaskMode,
    *,
    winrm_password: str | SecretStr | None = None,
    pfx_password: str | SecretStr | None = None,
    journal_dir: str | os.PathLike[str] | None = None,
    diff: bool = False,
    at: dt.datetime | None = None,
    sim_tls: bool = False,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """Run ``mode`` on one host (see the module docstring). Bad input raises
    :class:`InputError`; host problems are reported in the result (``failed``), never raised.

    ``catalog``: the CA catalog to plan and judge with, instead of the executor's own (the lab
    catalog for ``sim://``, else the real Sectigo one): a rehearsal against a loopback WinRM
    endpoint whose simulated host holds the pinned lab hierarchy passes
    ``default_lab().catalog``."""
    from sectigo_chain.fleet.context import FleetContext, open_executor
    from sectigo_chain.fleet.host import run_host
    from sectigo_chain.fleet.inventory import HostSecrets, Inventory
    from sectigo_chain.run.applier import observe

    if mode not in ("plan", "apply", "check"):
        raise InputError(f"unknown mode {mode!r}; use plan, apply or check")
    entry = {k: v for k, v in host.items() if v is not None}
    entry.setdefault("name", entry.get("target", "host"))
    try:
        inventory = Inventory.model_validate({"version": 1, "hosts": [entry]})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][2:]) or 'host'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"bad host settings: {problems}") from None
    resolved = inventory.resolved(Path.cwd())[0]
    if resolved.pfx and not os.path.isfile(resolved.pfx):
        raise InputError(f"PFX file {resolved.pfx} not found; check the path")

    def secret(value: str | SecretStr | None) -> SecretStr | None:
        return value if isinstance(value, SecretStr) or value is None else SecretStr(value)

    secrets = HostSecrets(secret(winrm_password), secret(pfx_password))
    jdir = Path(journal_dir or "sectigo-chain-journals").absolute() if mode == "apply" else None
    if jdir is not None:
        jdir.mkdir(parents=True, exist_ok=True)
    executor = open_executor(resolved, secrets)
    kept = _Kept(executor, catalog)
    ctx = FleetContext(
        mode=mode, at=at or dt.datetime.now(dt.timezone.utc), journal_dir=jdir, sim_tls=sim_tls,
        executor_factory=lambda _host, _secrets: kept,
    )  # fmt: skip

    def snapshot() -> list[str] | None:
        # The diff is extra: a host that cannot be observed is reported by run_host's row
        # (failed, with the masked error), never raised from here.
        try:
            return observed_lines(observe(executor))
        except SectigoChainError:
            return None

    try:
        before = snapshot() if diff else None
        row = run_host(resolved, secrets, ctx)
        after = snapshot() if diff and row.error is None else None
    finally:
        executor.close()
    changed = bool(row.actions) if mode == "plan" else row.changed
    result: dict[str, Any] = {
        "changed": changed,
        "failed": not row.ok,
        "status": row.status,
        "msg": _message(row),
        "row": row.model_dump(mode="json"),
    }
    if before is not None:
        result["diff"] = {
            "before": "\n".join(before) + "\n",
            "after": "\n".join(after if after is not None else before) + "\n",
            "before_header": f"{resolved.target} (observed before)",
            "after_header": f"{resolved.target} ("
            + ("planned: nothing changed" if mode != "apply" else "observed after")
            + ")",
        }
    return result


def _message(row: Any) -> str:
    if row.error is not None:
        return f"{row.name}: {row.status}: {row.error.type}: {row.error.message}"
    kinds = ", ".join(a.kind for a in row.actions) or "no action"
    text = f"{row.name}: {row.status} ({kinds})"
    return f"{text}; {row.note}" if row.note else text
