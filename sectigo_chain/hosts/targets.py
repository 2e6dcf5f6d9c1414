"""The single place that parses a target string into an :class:`Executor`.

* ``sim://NAME``: a :class:`~sectigo_chain.hosts.sim.host.SimulatedHost` running scenario
  ``NAME`` (see :data:`~sectigo_chain.hosts.sim.scenarios.SCENARIOS`); ``sim://NAME?state=FILE``
  keeps its state in ``FILE`` across runs (:mod:`sectigo_chain.hosts.sim.state`);
* ``local``: :class:`~sectigo_chain.hosts.local.LocalExecutor` (Windows PowerShell here);
* ``winrm://[user@]host[:port]``: :class:`~sectigo_chain.hosts.winrm.WinRMExecutor` (the
  password comes from the caller, never from the target string).
"""

from __future__ import annotations

import os

from pydantic import SecretStr

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.base import Executor
from sectigo_chain.x509.catalog import Catalog, catalog_from_pem, default_catalog

__all__ = ["catalog_for", "open_target", "parse_target"]


def parse_target(target: str) -> tuple[str, str]:
    """``(scheme, rest)``: ``("sim", "broken-r46")``, ``("local", "")``, ``("winrm", "host")``."""
    text = target.strip()
    if text == "local":
        return "local", ""
    if "://" not in text:
        raise InputError(
            f"not a target: {target!r}; use sim://SCENARIO, local or winrm://[user@]host[:port]"
        )
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme not in ("sim", "winrm") or not rest:
        raise InputError(
            f"not a target: {target!r}; use sim://SCENARIO, local or winrm://[user@]host[:port]"
        )
    if scheme == "winrm" and "@" in rest and ":" in rest.rsplit("@", 1)[0]:
        # never echo the target: it holds a password
        raise InputError(
            "a WinRM target must not hold a password (winrm://user:PASSWORD@host); use "
            "winrm://user@host with --password-env VAR or --password-file FILE "
            "(fleet: password_env in the inventory)"
        )
    return scheme, rest


def open_target(target: str, *, password: SecretStr | None = None) -> Executor:
    """An executor for ``target``; :class:`InputError` if the target is malformed."""
    scheme, rest = parse_target(target)
    if scheme == "sim":
        from sectigo_chain.hosts.sim.host import SimulatedHost
        from sectigo_chain.hosts.sim.state import parse_sim_target

        name, state = parse_sim_target(rest)
        return SimulatedHost(name, state_file=state)
    if scheme == "local":
        from sectigo_chain.hosts.local import LocalExecutor

        return LocalExecutor()
    from sectigo_chain.hosts.winrm import WinRMExecutor, parse_winrm_target, winrm_options_from_env

    options = winrm_options_from_env()
    return WinRMExecutor(parse_winrm_target(target.strip(), password=password, **options))


#: The environment variable naming a PEM bundle of stand-ins for the Sectigo CA certificates
#: (a test PKI such as the loopback endpoint's lab); see :func:`catalog_for`.
CATALOG_ENV = "SECTIGO_CHAIN_CATALOG"


def catalog_for(executor: Executor) -> Catalog:
    """The CA catalog an executor's certificates belong to: the lab one for simulated hosts;
    else the one in the PEM bundle ``SECTIGO_CHAIN_CATALOG`` names (a rehearsal against a test
    PKI, :func:`~sectigo_chain.x509.catalog.catalog_from_pem`); else the real Sectigo one."""
    catalog = getattr(executor, "catalog", None)
    if isinstance(catalog, Catalog):
        return catalog
    return env_catalog()


def env_catalog() -> Catalog:
    """The catalog in the PEM bundle ``SECTIGO_CHAIN_CATALOG`` names, else the real Sectigo one
    (what :func:`catalog_for` gives a host without a catalog of its own, and a host that is only
    checked over TLS)."""
    path = os.environ.get(CATALOG_ENV, "").strip()
    if path:
        return catalog_from_pem(path)
    return default_catalog()
