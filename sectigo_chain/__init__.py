"""sectigo_chain: fix and verify Sectigo R46/E46 certificate chains served by Windows/IIS.

The public API is imported lazily (``import sectigo_chain`` stays fast; pypsrp and friends load
only when used). Everything listed in ``__all__`` is reachable as ``sectigo_chain.NAME``.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing costs more than the rest of this module: not at import time
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Action": "sectigo_chain.state.plan_models",
    "ApplyError": "sectigo_chain.errors",
    "ApplyResult": "sectigo_chain.state.plan_models",
    "Catalog": "sectigo_chain.x509.catalog",
    "CatalogEntry": "sectigo_chain.x509.catalog",
    "CatalogError": "sectigo_chain.errors",
    "CertInfo": "sectigo_chain.x509.certs",
    "CertificateLoadError": "sectigo_chain.errors",
    "ChainAnalysis": "sectigo_chain.x509.paths",
    "ChainReport": "sectigo_chain.tls.check",
    "CheckFailure": "sectigo_chain.tls.check",
    "ConnectionFailed": "sectigo_chain.errors",
    "CrossSignAnswer": "sectigo_chain.x509.catalog",
    "DemoRecord": "sectigo_chain.demo",
    "DesiredState": "sectigo_chain.state.models",
    "ExecutionError": "sectigo_chain.errors",
    "FINDING_CODES": "sectigo_chain.x509.paths",
    "Faults": "sectigo_chain.hosts.sim.host",
    "FetchResult": "sectigo_chain.tls.fetch",
    "FileReport": "sectigo_chain.x509.inspect",
    "Finding": "sectigo_chain.x509.paths",
    "FleetReport": "sectigo_chain.fleet.report",
    "InputError": "sectigo_chain.errors",
    "Inventory": "sectigo_chain.fleet.inventory",
    "ObservedState": "sectigo_chain.state.models",
    "Plan": "sectigo_chain.state.plan_models",
    "PlanRefused": "sectigo_chain.errors",
    "Profile": "sectigo_chain.trust.profiles",
    "ProfileResult": "sectigo_chain.trust.profiles",
    "RenderedScript": "sectigo_chain.templates.render",
    "SCENARIOS": "sectigo_chain.hosts.sim.scenarios",
    "ScriptFailed": "sectigo_chain.errors",
    "ScriptTimeout": "sectigo_chain.errors",
    "SectigoChainError": "sectigo_chain.errors",
    "ServedChain": "sectigo_chain.tls.fetch",
    "SimulatedHost": "sectigo_chain.hosts.sim.host",
    "TEMPLATE_NAMES": "sectigo_chain.templates.render",
    "TLSConnectError": "sectigo_chain.errors",
    "TLSFetchError": "sectigo_chain.errors",
    "TLSHandshakeError": "sectigo_chain.errors",
    "TLSTimeout": "sectigo_chain.errors",
    "TemplateError": "sectigo_chain.errors",
    "VerifyReport": "sectigo_chain.run.verifier",
    "WindowsChainPrediction": "sectigo_chain.x509.paths",
    "analyze": "sectigo_chain.x509.paths",
    "apply": "sectigo_chain.run.applier",
    "build_paths": "sectigo_chain.x509.paths",
    "catalog_for": "sectigo_chain.hosts.targets",
    "cert_info": "sectigo_chain.x509.certs",
    "check_endpoint": "sectigo_chain.tls.check",
    "check_many": "sectigo_chain.tls.check",
    "cross_sign_for": "sectigo_chain.x509.catalog",
    "default_catalog": "sectigo_chain.x509.catalog",
    "fetch_many": "sectigo_chain.tls.fetch",
    "fetch_served_chain": "sectigo_chain.tls.fetch",
    "identify": "sectigo_chain.x509.catalog",
    "inspect_file": "sectigo_chain.x509.inspect",
    "list_profiles": "sectigo_chain.trust.profiles",
    "load_bytes": "sectigo_chain.x509.load",
    "load_file": "sectigo_chain.x509.load",
    "load_inventory": "sectigo_chain.fleet.inventory",
    "load_profiles": "sectigo_chain.trust.profiles",
    "observe": "sectigo_chain.run.applier",
    "open_target": "sectigo_chain.hosts.targets",
    "plan": "sectigo_chain.state.planner",
    "predict_windows_chain": "sectigo_chain.x509.paths",
    "progress_bar": "sectigo_chain.display.render",
    "ps_quote": "sectigo_chain.templates.render",
    "render": "sectigo_chain.templates.render",
    "rollback": "sectigo_chain.run.journal",
    "run_demo": "sectigo_chain.demo",
    "run_fleet": "sectigo_chain.fleet.rollout",
    "sectigo_fix": "sectigo_chain.state.recipe",
    "to_html": "sectigo_chain.display.render",
    "to_legacy_pfx": "sectigo_chain.x509.load",
    "to_markdown": "sectigo_chain.display.render",
    "to_standalone": "sectigo_chain.templates.standalone",
    "to_text": "sectigo_chain.display.render",
    "validate": "sectigo_chain.trust.profiles",
    "validate_many": "sectigo_chain.trust.profiles",
    "verify": "sectigo_chain.run.verifier",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sectigo_chain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
