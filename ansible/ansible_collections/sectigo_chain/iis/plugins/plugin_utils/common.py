# Copyright: sectigo_chain developers; MIT licence (see galaxy.yml)
"""Shared by the collection's action plugins: where a host is, and its secrets.

The plugins run on the controller and reach the Windows host with the ``sectigo_chain``
library (which must be installed in the controller's Python: ``pip install sectigo-chain``),
from the host's own connection variables, or from ``sectigo_chain_target`` (for example
``sim://broken-r46`` to rehearse against the simulated host).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail

TRANSPORTS = {"basic", "ntlm", "negotiate", "kerberos", "credssp", "certificate"}


def _var(task_vars: dict[str, Any], templar: Any, name: str) -> Any:
    value = task_vars.get(name)
    if isinstance(value, str) and templar is not None and templar.is_template(value):
        value = templar.template(value)
    return value


def host_target(task_vars: dict[str, Any], templar: Any = None) -> dict[str, Any]:
    """The inventory entry of this host for ``sectigo_chain`` (target and WinRM settings)."""
    name = str(task_vars.get("inventory_hostname") or "host")
    explicit = _var(task_vars, templar, "sectigo_chain_target")
    if explicit:
        return {"name": name, "target": str(explicit)}
    address = _var(task_vars, templar, "ansible_host") or name
    user = _var(task_vars, templar, "ansible_user")
    port = _var(task_vars, templar, "ansible_port")
    if not user:
        raise AnsibleActionFail(
            f"{name}: set ansible_user (and ansible_password) for WinRM, or sectigo_chain_target"
        )
    target = f"winrm://{user}@{address}" + (f":{int(port)}" if port else "")
    entry: dict[str, Any] = {"name": name, "target": target}
    transport = _var(task_vars, templar, "ansible_winrm_transport")
    if transport:
        first = str(transport).split(",")[0].strip().lower()
        if first not in TRANSPORTS:
            raise AnsibleActionFail(
                f"{name}: ansible_winrm_transport {transport!r} is not supported"
            )
        entry["winrm_auth"] = first
    validation = _var(task_vars, templar, "ansible_winrm_server_cert_validation")
    if validation is not None:
        entry["winrm_cert_validation"] = str(validation).lower() != "ignore"
    return entry


def winrm_password(task_vars: dict[str, Any], templar: Any = None) -> str | None:
    value = _var(task_vars, templar, "ansible_password")
    if value is None:
        value = _var(task_vars, templar, "ansible_winrm_password")
    return None if value is None else str(value)


def load_library() -> Any:
    try:
        import sectigo_chain.fleet.task as task
    except ImportError as exc:
        raise AnsibleActionFail(
            "the sectigo_chain Python library is not installed in the controller's Python "
            f"({exc}); run: pip install sectigo-chain"
        ) from None
    return task
