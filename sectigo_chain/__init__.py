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
    "Action": "sectigo_chain.plan_models",
    "ApplyError": "sectigo_chain.errors",
    "ApplyResult": "sectigo_chain.plan_models",
    "Catalog": "sectigo_chain.catalog",
    "CatalogEntry": "sectigo_chain.catalog",
    "CatalogError": "sectigo_chain.errors",
    "CertInfo": "sectigo_chain.certs",
    "CertificateLoadError": "sectigo_chain.errors",
    "ChainAnalysis": "sectigo_chain.chain",
    "ChainReport": "sectigo_chain.check",
    "CheckFailure": "sectigo_chain.check",
    "ConnectionFailed": "sectigo_chain.errors",
    "CrossSignAnswer": "sectigo_chain.catalog",
    "DemoRecord": "sectigo_chain.demo",
    "DesiredState": "sectigo_chain.models",
    "ExecutionError": "sectigo_chain.errors",
    "FINDING_CODES": "sectigo_chain.chain",
    "Faults": "sectigo_chain.executors.simulated",
    "FetchResult": "sectigo_chain.tls",
    "FileReport": "sectigo_chain.inspect",
    "Finding": "sectigo_chain.chain",
    "FleetReport": "sectigo_chain.fleet_report",
    "InputError": "sectigo_chain.errors",
    "Inventory": "sectigo_chain.fleet_inventory",
    "ObservedState": "sectigo_chain.models",
    "Plan": "sectigo_chain.plan_models",
    "PlanRefused": "sectigo_chain.errors",
    "Profile": "sectigo_chain.profiles",
    "ProfileResult": "sectigo_chain.profiles",
    "RenderedScript": "sectigo_chain.templates",
    "SCENARIOS": "sectigo_chain.sim_scenarios",
    "ScriptFailed": "sectigo_chain.errors",
    "ScriptTimeout": "sectigo_chain.errors",
    "SectigoChainError": "sectigo_chain.errors",
    "ServedChain": "sectigo_chain.tls",
    "SimulatedHost": "sectigo_chain.executors.simulated",
    "TEMPLATE_NAMES": "sectigo_chain.templates",
    "TLSConnectError": "sectigo_chain.errors",
    "TLSFetchError": "sectigo_chain.errors",
    "TLSHandshakeError": "sectigo_chain.errors",
    "TLSTimeout": "sectigo_chain.errors",
    "TemplateError": "sectigo_chain.errors",
    "VerifyReport": "sectigo_chain.verifier",
    "WindowsChainPrediction": "sectigo_chain.chain",
    "analyze": "sectigo_chain.chain",
    "apply": "sectigo_chain.applier",
    "build_paths": "sectigo_chain.chain",
    "catalog_for": "sectigo_chain.targets",
    "cert_info": "sectigo_chain.certs",
    "check_endpoint": "sectigo_chain.check",
    "check_many": "sectigo_chain.check",
    "cross_sign_for": "sectigo_chain.catalog",
    "default_catalog": "sectigo_chain.catalog",
    "fetch_many": "sectigo_chain.tls",
    "fetch_served_chain": "sectigo_chain.tls",
    "identify": "sectigo_chain.catalog",
    "inspect_file": "sectigo_chain.inspect",
    "list_profiles": "sectigo_chain.profiles",
    "load_bytes": "sectigo_chain.certs",
    "load_file": "sectigo_chain.certs",
    "load_inventory": "sectigo_chain.fleet_inventory",
    "load_profiles": "sectigo_chain.profiles",
    "observe": "sectigo_chain.applier",
    "open_target": "sectigo_chain.targets",
    "plan": "sectigo_chain.planner",
    "predict_windows_chain": "sectigo_chain.chain",
    "progress_bar": "sectigo_chain.display",
    "ps_quote": "sectigo_chain.templates",
    "render": "sectigo_chain.templates",
    "rollback": "sectigo_chain.journal",
    "run_demo": "sectigo_chain.demo",
    "run_fleet": "sectigo_chain.fleet",
    "sectigo_fix": "sectigo_chain.recipe",
    "to_html": "sectigo_chain.display",
    "to_legacy_pfx": "sectigo_chain.certs",
    "to_markdown": "sectigo_chain.display",
    "to_standalone": "sectigo_chain.templates",
    "to_text": "sectigo_chain.display",
    "validate": "sectigo_chain.profiles",
    "validate_many": "sectigo_chain.profiles",
    "verify": "sectigo_chain.verifier",
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
