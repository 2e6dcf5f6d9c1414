# Copyright: sectigo_chain developers; MIT licence (see galaxy.yml)
"""Shared by the collection's action plugins: where a host is, and its secrets.

The plugins run on the controller and reach the Windows host with the ``sectigo_chain``
library (which must be installed in the controller's Python: ``pip install sectigo-chain``),
from the host's own connection variables, or from ``sectigo_chain_target`` (for example
``sim://broken-r46`` to rehearse against the simulated host).

Rehearsal host variables (see the module documentation):

* ``sectigo_chain_sim_state``: a file on the controller that keeps a ``sim://`` host's state
  between tasks and runs (``sim://NAME?state=FILE``), so a second run finds the fixed host;
* ``sectigo_chain_catalog``: ``lab`` judges the host with the lab CA catalog of
  ``sectigo_chain.testing`` (a loopback WinRM endpoint whose simulated host holds the pinned
  lab hierarchy); ``sectigo`` (the default) with the real Sectigo certificates;
* ``sectigo_chain_check``: ``HOST:PORT`` (or a mapping with ``host``, ``port``,
  ``servername``) where the served chain is fetched over TLS, when not the host itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
    entry = _where(task_vars, templar, name)
    check = _var(task_vars, templar, "sectigo_chain_check")
    if check:
        entry["check"] = _check_endpoint(name, check)
    state = _var(task_vars, templar, "sectigo_chain_sim_state")
    if state:
        if not entry["target"].startswith("sim://") or "?" in entry["target"]:
            raise AnsibleActionFail(
                f"{name}: sectigo_chain_sim_state is for sim://SCENARIO targets only"
            )
        entry["target"] += "?state=" + quote(str(state), safe="/")
    return entry


def _check_endpoint(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: value[k] for k in ("host", "port", "servername") if value.get(k) is not None}
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise AnsibleActionFail(
            f"{name}: sectigo_chain_check must be HOST:PORT (or host/port/servername)"
        )
    return {"host": host.strip("[]"), "port": int(port)}


def _where(task_vars: dict[str, Any], templar: Any, name: str) -> dict[str, Any]:
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
    ca_path = _var(task_vars, templar, "ansible_winrm_ca_trust_path")
    if validation is not None and str(validation).lower() == "ignore":
        entry["winrm_cert_validation"] = False
    elif ca_path:  # validate against this CA bundle (PEM), as pywinrm's ca_trust_path does
        entry["winrm_cert_validation"] = str(ca_path)
    elif validation is not None:
        entry["winrm_cert_validation"] = True
    return entry


def winrm_password(task_vars: dict[str, Any], templar: Any = None) -> str | None:
    value = _var(task_vars, templar, "ansible_password")
    if value is None:
        value = _var(task_vars, templar, "ansible_winrm_password")
    return None if value is None else str(value)


def host_catalog(task_vars: dict[str, Any], templar: Any = None) -> Any:
    """The CA catalog ``sectigo_chain_catalog`` asks for: None (the executor's own) or the
    pinned lab catalog for ``lab``."""
    name = str(_var(task_vars, templar, "sectigo_chain_catalog") or "sectigo").lower()
    if name == "sectigo":
        return None
    if name != "lab":
        raise AnsibleActionFail(f"sectigo_chain_catalog must be sectigo or lab, not {name!r}")
    from sectigo_chain.testing.lab import default_lab

    return default_lab().catalog


def load_library() -> Any:
    try:
        import sectigo_chain.fleet.task as task
    except ImportError as exc:
        raise AnsibleActionFail(
            "the sectigo_chain Python library is not installed in the controller's Python "
            f"({exc}); run: pip install sectigo-chain"
        ) from None
    return task
