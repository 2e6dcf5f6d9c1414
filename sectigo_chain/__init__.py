"""sectigo_chain: fix and verify Sectigo R46/E46 certificate chains served by Windows/IIS.

The public API is imported lazily (``import sectigo_chain`` stays fast; pypsrp and friends load
only when used). Everything listed in ``__all__`` is reachable as ``sectigo_chain.NAME``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ApplyError": "sectigo_chain.errors",
    "Catalog": "sectigo_chain.catalog",
    "CatalogEntry": "sectigo_chain.catalog",
    "CatalogError": "sectigo_chain.errors",
    "CertInfo": "sectigo_chain.certs",
    "CertificateLoadError": "sectigo_chain.errors",
    "ConnectionFailed": "sectigo_chain.errors",
    "CrossSignAnswer": "sectigo_chain.catalog",
    "ExecutionError": "sectigo_chain.errors",
    "FileReport": "sectigo_chain.inspect",
    "InputError": "sectigo_chain.errors",
    "PlanRefused": "sectigo_chain.errors",
    "ScriptFailed": "sectigo_chain.errors",
    "ScriptTimeout": "sectigo_chain.errors",
    "SectigoChainError": "sectigo_chain.errors",
    "TLSFetchError": "sectigo_chain.errors",
    "TemplateError": "sectigo_chain.errors",
    "cert_info": "sectigo_chain.certs",
    "cross_sign_for": "sectigo_chain.catalog",
    "default_catalog": "sectigo_chain.catalog",
    "identify": "sectigo_chain.catalog",
    "inspect_file": "sectigo_chain.inspect",
    "load_file": "sectigo_chain.certs",
    "to_legacy_pfx": "sectigo_chain.certs",
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
