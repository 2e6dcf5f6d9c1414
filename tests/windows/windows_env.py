"""Environment of the real-Windows suite (issue 11): runs only on Windows or against a WinRM host.

* ``local``: on Windows (``os.name == "nt"``), the local executor (elevated runner).
* ``winrm``: when ``SECTIGO_CHAIN_WINRM_TARGET`` (``winrm://user@host[:port]``) and
  ``SECTIGO_CHAIN_WINRM_PASSWORD`` are set; ``SECTIGO_CHAIN_WINRM_CERT_VALIDATION=0`` accepts
  the self-signed listener certificate of a throwaway runner.
* ``SECTIGO_CHAIN_WINDOWS_EXECUTOR`` (``local`` or ``winrm``) restricts a run to one of them.

Everything else skips with the reason printed (``-ra`` is in pytest's addopts). The answers
to the open questions of docs/windows-facts.md go into the JSON file named by
``SECTIGO_CHAIN_WINDOWS_FACTS`` (default ``windows-facts.json`` in the working directory),
which the workflow uploads as an artefact. These tests CHANGE the machine they run on
(certificate stores, IIS bindings, services): only ever point them at a throwaway host.
"""

from __future__ import annotations

import os

from pydantic import SecretStr

from sectigo_chain.hosts.base import Executor

EXECUTORS = ("local", "winrm")


def unavailable(kind: str) -> str | None:
    """Why executor ``kind`` cannot run here, or None when it can."""
    only = os.environ.get("SECTIGO_CHAIN_WINDOWS_EXECUTOR")
    if only and only != kind:
        return f"SECTIGO_CHAIN_WINDOWS_EXECUTOR={only}: the {kind} executor is not part of this run"
    if kind == "local" and os.name != "nt":
        return "the local executor needs Windows (this is not Windows)"
    names = ("SECTIGO_CHAIN_WINRM_TARGET", "SECTIGO_CHAIN_WINRM_PASSWORD")
    if kind == "winrm" and not all(os.environ.get(name) for name in names):
        return "no WinRM host: set SECTIGO_CHAIN_WINRM_TARGET and SECTIGO_CHAIN_WINRM_PASSWORD"
    return None


def open_executor(kind: str) -> Executor:
    if kind == "local":
        from sectigo_chain.hosts.local import LocalExecutor

        return LocalExecutor()
    from sectigo_chain.hosts.winrm import WinRMExecutor, parse_winrm_target

    validate = os.environ.get("SECTIGO_CHAIN_WINRM_CERT_VALIDATION", "1") != "0"
    settings = parse_winrm_target(
        os.environ["SECTIGO_CHAIN_WINRM_TARGET"],
        password=SecretStr(os.environ["SECTIGO_CHAIN_WINRM_PASSWORD"]),
        cert_validation=validate,
    )
    return WinRMExecutor(settings)


def tls_host(kind: str) -> str:
    """Where the staged site answers TLS: this machine, or the WinRM host."""
    if kind == "local":
        return "127.0.0.1"
    from sectigo_chain.hosts.winrm import parse_winrm_target

    return parse_winrm_target(os.environ["SECTIGO_CHAIN_WINRM_TARGET"]).host
