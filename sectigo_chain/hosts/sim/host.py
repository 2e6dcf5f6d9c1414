"""SimulatedHost: an in-memory Windows/IIS host that runs the template contract.

It is a MODEL built from public documentation, NOT Windows (see docs/simulated-host.md and
:mod:`sectigo_chain.hosts.sim.model`). It receives exactly what a real host receives (the rendered
template's name and payload) and returns the same JSON document
(``{"ok", "changed", "data", "error"}``) that the PowerShell template would print.

Faults (:class:`Faults`) count the scripts that are not read-only (0-based: with one script per
plan action, index N is plan action N). ``fail_action`` makes that script fail before it changes
anything (:class:`~sectigo_chain.errors.ScriptFailed`); ``drop_connection_at`` and
``timeout_at`` let the script run to completion and then lose the reply
(:class:`~sectigo_chain.errors.ConnectionFailed` / :class:`~sectigo_chain.errors.ScriptTimeout`),
the worst case for a caller. Faults fire once unless ``persistent`` (then every later script
fails the same way, as if the host had gone away).

``kill_before`` and ``kill_after`` model the process being killed (``kill -9``, a power cut on
the admin's machine): :class:`SimulatedKill` (a ``BaseException``, so nothing in the library
catches it) is raised before script N reaches the host, or after it ran and before its reply
is read. A test then rolls back from the journal file with a new host object carrying the same
model: the equivalent of a fresh process against the same host.

``state_file`` (``sim://NAME?state=FILE``) persists the model across processes (a rehearsal
feature, :mod:`sectigo_chain.hosts.sim.state`): the host starts from the file when it exists,
writes it back after every script that may change it, and holds the file's lock until
:meth:`SimulatedHost.close`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509

from sectigo_chain.errors import ConnectionFailed, InputError, ScriptFailed, ScriptTimeout
from sectigo_chain.hosts.base import ExecutorBase, ScriptResult
from sectigo_chain.hosts.sim.handlers import HANDLERS, Refused
from sectigo_chain.hosts.sim.model import (
    CacheEvent,
    HostModel,
)
from sectigo_chain.hosts.sim.scenarios import SCENARIOS, Scenario, build_scenario
from sectigo_chain.hosts.sim.state import SimState, lab_id
from sectigo_chain.x509.certs import PrivateKey, thumbprint

if TYPE_CHECKING:
    from sectigo_chain.hosts.sim.listener import SimTLSListener
    from sectigo_chain.templates.render import RenderedScript
    from sectigo_chain.testing.lab import LabHierarchy
    from sectigo_chain.x509.catalog import Catalog

__all__ = ["SCENARIOS", "Faults", "SimulatedHost", "SimulatedKill"]


class SimulatedKill(BaseException):
    """The process running the library was killed (a :class:`Faults` kill point)."""


@dataclass
class Faults:
    """Faults to inject, by index of non-read-only script (0-based)."""

    fail_action: int | None = None
    drop_connection_at: int | None = None
    timeout_at: int | None = None
    persistent: bool = False
    kill_before: int | None = None
    kill_after: int | None = None


class SimulatedHost(ExecutorBase):
    """An in-memory IIS host (a model from public documentation, not Windows).

    ``served_cache_refresh`` is the weakest event that refreshes the served-chain cache:
    ``"binding"`` < ``"recycle"`` < ``"iisreset"`` < ``"http_service"`` (default ``"iisreset"``).
    """

    def __init__(
        self,
        scenario: str | Scenario | HostModel = "broken-r46",
        *,
        lab: LabHierarchy | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        faults: Faults | None = None,
        served_cache_refresh: CacheEvent = "iisreset",
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        from sectigo_chain.testing.lab import default_lab

        self.lab = lab or default_lab()
        #: the state file of a persisted host (``sim://NAME?state=FILE``), else None
        self.state: SimState | None = None
        if state_file is not None:
            if not isinstance(scenario, str):
                raise InputError("a sim:// state file needs a scenario name")
            self.scenario_name = scenario
            self.state = SimState(
                state_file, scenario, lab_id(list(self.lab.catalog.certificates()))
            )
            self.state.acquire()  # held until close(): one run of this host at a time
            try:
                saved = self.state.load()
            except BaseException:
                self.state.release()
                raise
            self.model = saved if saved is not None else build_scenario(scenario, self.lab)[1]
        elif isinstance(scenario, HostModel):
            self.scenario_name = "custom"
            self.model = scenario
        elif isinstance(scenario, Scenario):
            self.scenario_name = scenario.name
            self.model = scenario.build(self.lab)
        else:
            self.scenario_name = scenario
            self.model = build_scenario(scenario, self.lab)[1]
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.faults = faults or Faults()
        self.served_cache_refresh: CacheEvent = served_cache_refresh
        # Every template run (the entries of a composite one by one), and every invocation
        # (one per pipeline: a composite counts once).
        self.calls: list[str] = []
        self.invocations: list[str] = []
        self._action_count = 0
        self._gone = False
        # One lock for the model: scripts and the TLS listener's thread (which reads the
        # served chain at every handshake) never see a half-changed host.
        self.lock = threading.RLock()
        self._listeners: list[SimTLSListener] = []

    # ------------------------------------------------------------------ Executor protocol

    @property
    def target(self) -> str:
        return f"sim://{self.scenario_name}"

    @property
    def catalog(self) -> Catalog:
        """The lab catalog the scenario's certificates belong to."""
        return self.lab.catalog

    def run(self, script: RenderedScript, *, timeout: float = 60.0) -> ScriptResult:
        """Execute one rendered template against the model (a persisted host writes its
        state file after every script that may change it, even one that failed midway)."""
        with self.lock:
            if self.state is None or script.read_only:
                return self._run(script, timeout)
            try:
                return self._run(script, timeout)
            finally:
                self.state.save(self.model)

    def _run(self, script: RenderedScript, timeout: float) -> ScriptResult:
        self.invocations.append(script.name)
        if script.name == "apply_plan":
            return self._run_plan(script, timeout)
        if script.name == "verify_host":
            return self._run_verify_host(script, timeout)
        result, fault = self._run_one(script, timeout)
        self._raise_fault(fault, script.name, timeout)
        return result

    def _raise_fault(self, fault: str | None, name: str, timeout: float) -> None:
        if fault == "drop":
            if self.faults.persistent:
                self._gone = True
            raise ConnectionFailed(
                f"{self.target}: connection dropped while running {name}",
                host=self.target,
                script=name,
            )
        if fault == "timeout":
            raise ScriptTimeout(
                f"{self.target}: {name} did not finish within {timeout:g} s",
                host=self.target,
                script=name,
            )

    def _run_one(self, script: RenderedScript, timeout: float) -> tuple[ScriptResult, str | None]:
        """One template run against the model: (its result, the transport fault due after it:
        "drop", "timeout" or None)."""
        start = time.perf_counter()
        name = script.name
        self.calls.append(name)
        if self._gone:
            raise ConnectionFailed(f"{self.target}: connection lost", host=self.target, script=name)
        fault = None
        if not script.read_only:
            index = self._action_count
            self._action_count += 1
            fault = self._fault_at(index)
            if index == self.faults.kill_before:
                raise SimulatedKill(f"killed before {name} (action {index}) reached the host")
            if fault == "fail":
                raise ScriptFailed(
                    f"{self.target}: {name} failed (injected fault at action {index})",
                    host=self.target,
                    script=name,
                    records=[f"injected failure in {name}"],
                )
        handler = HANDLERS.get(name)
        error: dict[str, str] | None
        if not script.read_only and not self.model.elevated:
            # Assert-SectigoElevated: every action template stops before changing anything.
            ok, changed, data, error = (
                False,
                False,
                None,
                {
                    "message": "this account is not running elevated (not in the "
                    "Administrators role, or a filtered UAC token): run from an elevated "
                    "PowerShell, or over WinRM with an administrator account",
                    "category": "PermissionDenied",
                },
            )
        elif handler is None:
            ok, changed, data, error = (
                False,
                False,
                None,
                {
                    "message": f"unknown template {name!r}",
                    "category": "NotImplemented",
                },
            )
        else:
            try:
                ok, changed, data, error = handler(self, dict(script.decoded_params()))
            except Refused as exc:
                ok, changed, data = False, False, None
                error = {"message": exc.message, "category": exc.category}
        if not script.read_only and self._action_count - 1 == self.faults.kill_after:
            raise SimulatedKill(f"killed after {name} (action {self._action_count - 1}) ran")
        errors = [error["message"]] if error else []
        result = ScriptResult(
            ok=ok,
            changed=changed,
            data=data,
            error=error,
            errors=errors,
            duration=time.perf_counter() - start,
        )
        return result, fault if fault in ("drop", "timeout") else None

    # ------------------------------------------------------------------ composite templates
    # What apply_plan.ps1 and verify_host.ps1 do (templates/compose.py): each entry runs with
    # its own payload; its document travels as JSON text. Faults count the entries: with one
    # entry per plan action, index N is still plan action N.

    def _entry(
        self, template: str, payload: str, timeout: float
    ) -> tuple[dict[str, Any], str | None]:
        """Invoke-SectigoEntry: (its outcome, the transport fault due after it)."""
        from sectigo_chain.errors import InputError, TemplateError
        from sectigo_chain.templates.render import decode_payload, render

        outcome: dict[str, Any] = {
            "document": None, "ok": False, "changed": False, "error": None, "errors": [],
        }  # fmt: skip
        try:
            script = dataclasses.replace(render(template, decode_payload(payload)), payload=payload)
        except (TemplateError, InputError, ValueError) as exc:
            # Read-SectigoPayload (or a check) throws inside the entry's try: its catch writes
            # the document with ok=false.
            document = {"ok": False, "changed": False, "data": None, "error": {
                "message": f"the payload could not be read: {type(exc).__name__}",
                "category": "InvalidArgument", "type": "System.FormatException",
                "hresult": None, "line": None}}  # fmt: skip
            outcome["document"] = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
            return outcome, None
        try:
            result, fault = self._run_one(script, timeout)
        except ScriptFailed as exc:
            # A terminating error escaped the entry: the driver's catch records it.
            message = exc.records[0] if exc.records else str(exc)
            outcome["error"] = {"message": message, "category": "InvalidOperation",
                                "type": None, "hresult": None, "line": None}  # fmt: skip
            return outcome, None
        document = {"ok": result.ok, "changed": result.changed, "data": result.data,
                    "error": result.error}  # fmt: skip
        outcome["document"] = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
        outcome["ok"], outcome["changed"] = result.ok, result.changed
        return outcome, fault

    def _run_plan(self, script: RenderedScript, timeout: float) -> ScriptResult:
        start = time.perf_counter()
        params = script.decoded_params()
        results: list[dict[str, Any]] = []
        stopped, failed_at, changed = False, 0, False
        lost: str | None = None
        for index, entry in enumerate(params.get("actions") or ()):
            item: dict[str, Any] = {
                "index": index, "template": str(entry.get("template")), "status": "not_run",
                "document": None, "error": None, "errors": [],
            }  # fmt: skip
            if not stopped:
                outcome, fault = self._entry(item["template"], str(entry.get("payload")), timeout)
                lost = lost or fault
                item.update(document=outcome["document"], error=outcome["error"],
                            errors=outcome["errors"])  # fmt: skip
                changed = changed or outcome["changed"]
                if outcome["ok"]:
                    item["status"] = "done"
                else:
                    item["status"], stopped, failed_at = "failed", True, index + 1
                if fault == "drop" and self.faults.persistent:
                    # The host is gone after this action: nothing after it runs.
                    results.append(item)
                    break
            results.append(item)
        observed = None
        if not stopped and lost is None and params.get("observe") is not None:
            outcome, _ = self._entry("observe", str(params["observe"]), timeout)
            observed = outcome["document"] if outcome["ok"] else None
        # The reply (every result) is lost with the connection, after the pipeline ran.
        self._raise_fault(lost, script.name, timeout)
        error = None
        if stopped:
            message = f"action {failed_at} of {len(results)} failed; later ones did not run"
            error = {"message": message, "category": "InvalidOperation"}
        return ScriptResult(
            ok=not stopped, changed=changed, data={"results": results, "observed": observed},
            error=error, errors=[error["message"]] if error else [],
            duration=time.perf_counter() - start,
        )  # fmt: skip

    def _run_verify_host(self, script: RenderedScript, timeout: float) -> ScriptResult:
        from sectigo_chain.templates.render import encode_payload

        start = time.perf_counter()
        observed, _ = self._entry("observe", script.payload, timeout)
        chains: list[dict[str, Any]] = []
        data = {"observed": observed["document"], "observe_error": observed["error"],
                "observe_errors": observed["errors"], "chains": chains}  # fmt: skip
        if not observed["ok"]:
            error = {"message": "observe failed (see observed, observe_error)",
                     "category": "InvalidOperation"}  # fmt: skip
            return ScriptResult(ok=False, data=data, error=error, errors=[error["message"]],
                                duration=time.perf_counter() - start)  # fmt: skip
        state = json.loads(observed["document"])["data"] or {}
        seen: set[tuple[str, str]] = set()
        for site in state.get("sites") or ():
            for binding in site.get("bindings") or ():
                hash_ = str(binding.get("certificate_hash") or "")
                if str(binding.get("protocol") or "").lower() != "https" or not hash_:
                    continue  # PowerShell's -ne compares case-insensitively
                tp = hash_.upper()
                webhosting = str(binding.get("certificate_store") or "").lower() == "webhosting"
                store = "WebHosting" if webhosting else "My"
                if (tp, store) in seen:
                    continue
                seen.add((tp, store))
                payload = encode_payload(
                    {"store_location": "LocalMachine", "store_name": store, "thumbprint": tp}
                )
                outcome, _ = self._entry("verify_chain", payload, timeout)
                chains.append({"thumbprint": tp, "store_name": store,
                               "document": outcome["document"], "error": outcome["error"],
                               "errors": outcome["errors"]})  # fmt: skip
        return ScriptResult(ok=True, data=data, duration=time.perf_counter() - start)

    def __enter__(self) -> SimulatedHost:
        return self

    def _fault_at(self, index: int) -> str | None:
        f = self.faults

        def hit(at: int | None) -> bool:
            return at is not None and (index == at or (f.persistent and index >= at))

        if hit(f.fail_action):
            return "fail"
        if hit(f.drop_connection_at):
            return "drop"
        if hit(f.timeout_at):
            return "timeout"
        return None

    def reopen(self) -> SimulatedHost:
        """A new host object on this same model, without faults or recorded calls: what a
        new process (after a kill) connecting to the same host finds."""
        other = SimulatedHost(
            self.model, lab=self.lab, clock=self.clock,
            served_cache_refresh=self.served_cache_refresh,
        )  # fmt: skip
        other.scenario_name = self.scenario_name
        return other

    def reconnect(self) -> None:
        """Heal a persistent fault (the host is reachable again)."""
        self._gone = False
        self.faults = Faults()

    # ------------------------------------------------------------------ inspection hooks

    def snapshot(self) -> dict[str, Any]:
        """The full observed state plus the policy/cache facts observe does not show."""
        doc = self.model.observe_document(include_current_user=True)
        doc["_sim"] = {
            "windows_update_reachable": self.model.windows_update_reachable,
            "served_cache": {
                ep: [thumbprint(c) for c in chain]
                for ep, chain in sorted(self.model.served_cache.items())
            },
        }
        return copy.deepcopy(doc)

    def served_chain(self, site_or_endpoint: str) -> list[x509.Certificate]:
        """The chain HTTP.sys serves for a site (its first https binding) or an entry
        (``0.0.0.0:443``, ``host:443``), from the cache as a client would see it."""
        with self.lock:
            endpoint = site_or_endpoint
            site = self.model.sites.get(site_or_endpoint)
            if site is not None:
                https = [b for b in site.bindings if b.protocol == "https"]
                if not https:
                    return []
                endpoint = https[0].endpoint
            return self.model.served_for(endpoint, self.clock())

    def tls_entry(
        self, endpoint: str, servername: str | None = None
    ) -> tuple[list[x509.Certificate], PrivateKey] | None:
        """(served chain, leaf key) of one HTTP.sys entry, or None when it serves nothing. A
        Central Certificate Store entry serves the PFX named after ``servername``."""
        with self.lock:
            entry = self.model.sslcert.get(endpoint)
            if entry is not None and entry.kind == "ccs":
                found = self.model.ccs_pfx_for(servername or "")
                if found is None:
                    return None
                chain = self.model.served_ccs(endpoint, servername or "", self.clock())
                return (chain, found[0]) if chain else None
            leaf = self.model.leaf_for(endpoint)
            if leaf is None or leaf.key is None:
                return None
            return self.served_chain(endpoint), leaf.key

    def tls_chains(self) -> dict[str, tuple[list[x509.Certificate], PrivateKey]]:
        """For the TLS listener: entry (SNI ``host:port`` or ``IP:port``) -> (chain, key)."""
        with self.lock:
            entries = {ep: self.tls_entry(ep) for ep in sorted(self.model.sslcert)}
        return {ep: entry for ep, entry in entries.items() if entry is not None}

    def start_tls(self, host: str = "127.0.0.1") -> SimTLSListener:
        """Start a real TLS listener on loopback that serves what this host serves (see
        :mod:`sectigo_chain.hosts.sim.listener`); :meth:`close` stops it (or use it as a
        context manager)."""
        from sectigo_chain.hosts.sim.listener import SimTLSListener

        listener = SimTLSListener(self, bind=host)
        listener.start()
        self._listeners.append(listener)
        return listener

    def close(self) -> None:
        """Stop the TLS listeners started with :meth:`start_tls`; a persisted host releases
        its state file's lock."""
        while self._listeners:
            self._listeners.pop().close()
        if self.state is not None:
            self.state.release()
