"""sectigo_chain: fix and verify Sectigo R46/E46 certificate chains served by Windows/IIS.

The public API is imported lazily (``import sectigo_chain`` stays fast; pypsrp and friends load
only when used). Everything listed in ``__all__`` is reachable as ``sectigo_chain.NAME``.

Every public *function* reached this way goes through one validation layer (:func:`_checked`,
built from the function's own signature and annotations when it is first used): a wrong,
missing or unexpected argument is an :class:`~sectigo_chain.errors.InputError` that names the
function, the parameter, what it wants and what it got, never a ``TypeError`` or
``AttributeError`` from deep inside. It also accepts the forms people pass: a path as ``str`` or
any ``os.PathLike``, a password as ``str`` or ``SecretStr``; it refuses a naive ``datetime``
(the library compares aware instants only); and a ``catalog=`` left out for a simulated host is
the lab catalog its certificates come from (``apply``/``verify``/``observe``-style functions
take it from the executor, ``plan`` from a ``sim://`` target or from observed lab
certificates). The modules themselves (``sectigo_chain.state.planner.plan`` ...) are not
wrapped: inside the library, types are already right.
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
    "review": "sectigo_chain.run.review",
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
    "verify_entries": "sectigo_chain.run.entries",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sectigo_chain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if _is_function(value):
        value = _checked(value)
    globals()[name] = value
    return value


def _is_function(value: Any) -> bool:
    import inspect

    return inspect.isfunction(value) or (callable(value) and hasattr(value, "__wrapped__"))


def _checked(fn: Any) -> Any:
    """``fn`` behind the validation layer (see the module docstring)."""
    import functools
    import inspect

    signature = inspect.signature(fn)
    hints = {name: _hint(fn, p.annotation) for name, p in signature.parameters.items()}

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        from sectigo_chain.errors import InputError

        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            message = str(exc).replace(f"{fn.__name__}() ", "")
            raise InputError(
                f"{fn.__name__}(): {message} (see help(sectigo_chain.{fn.__name__}))"
            ) from None
        for pname, value in list(bound.arguments.items()):
            kind = signature.parameters[pname].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            bound.arguments[pname] = _argument(fn.__name__, pname, value, hints[pname])
        _find_catalog(bound.arguments, signature)
        _same_catalog(fn.__name__, bound.arguments)
        return fn(*bound.args, **bound.kwargs)

    return call


def _hint(fn: Any, annotation: Any) -> Any:
    """The annotation as a type (``from __future__ import annotations`` keeps it a string),
    or None when it names something only imported for type checking."""
    if not isinstance(annotation, str):
        return annotation
    import collections.abc
    import os
    import typing

    namespace = {**vars(typing), **vars(collections.abc), "os": os, **fn.__globals__}
    try:
        return eval(annotation, namespace)  # noqa: S307 - the library's own annotations
    except Exception:
        return None


def _argument(function: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` converted to what ``hint`` accepts, or InputError."""
    import datetime as dt

    from sectigo_chain.errors import InputError

    if hint is None or _accepts(value, hint) is not False:
        if isinstance(value, dt.datetime) and value.utcoffset() is None:
            raise InputError(
                f"{function}(): {name} is a naive datetime ({value.isoformat()}); give a "
                "timezone-aware one, e.g. datetime.now(timezone.utc)"
            )
        return value
    converted = _convert(value, hint)
    if converted is not None:
        return converted
    raise InputError(
        f"{function}(): {name} must be {_describe(hint)}, not {_shown(value, secret=_secret(name))}"
    )


def _convert(value: Any, hint: Any) -> Any:
    """A path from ``str``/``PathLike`` or a ``SecretStr`` from ``str`` when ``hint`` wants
    one; None when no conversion applies."""
    import os
    from pathlib import Path

    if isinstance(value, (str, os.PathLike)) and _accepts(Path("."), hint):
        return Path(value)
    if isinstance(value, str):
        from pydantic import SecretStr

        if _accepts(SecretStr("x"), hint):
            return SecretStr(value)
    return None


def _accepts(value: Any, hint: Any) -> bool | None:
    """True/False when ``hint`` surely does/does not accept ``value``; None when it cannot be
    told here (a protocol, a callable's signature, a type only known to type checkers)."""
    import collections.abc as abc
    import os
    import types
    import typing

    if hint is None or hint is typing.Any or hint is inspect_empty():
        return None
    if hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        answers = [_accepts(value, a) for a in args]
        if True in answers:
            return True
        return None if None in answers else False
    if origin is typing.Literal:
        return value in args
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is os.PathLike or hint is os.PathLike:
        return isinstance(value, os.PathLike)
    if origin in (list, tuple, abc.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        inner = args[0] if args and (origin is not tuple or len(args) == 2) else None
        return _all_accepted(value, inner)
    if origin in (abc.Iterable, abc.Collection):
        if isinstance(value, (str, bytes)) or not isinstance(value, abc.Iterable):
            return False
        return _all_accepted(value, args[0]) if isinstance(value, (list, tuple)) else None
    if origin in (dict, abc.Mapping):
        return isinstance(value, abc.Mapping)
    if origin is abc.Callable or hint is abc.Callable:
        return callable(value)
    if origin is type or origin is not None:
        return None
    if isinstance(hint, type):
        if getattr(hint, "_is_protocol", False) and not getattr(
            hint, "_is_runtime_protocol", False
        ):
            return None
        return isinstance(value, hint)
    return None


def _all_accepted(values: Any, inner: Any) -> bool | None:
    if inner is None:
        return None
    answers = [_accepts(v, inner) for v in values]
    return False if False in answers else (True if all(answers) else None)


def inspect_empty() -> Any:
    import inspect

    return inspect.Parameter.empty


def _describe(hint: Any) -> str:
    import collections.abc as abc
    import os
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_describe(a) for a in args))
    if hint is type(None):
        return "None"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is os.PathLike or hint is os.PathLike:
        return "a path (str or os.PathLike)"
    if origin in (list, tuple, abc.Sequence, abc.Iterable):
        inner = _describe(args[0]) if args else "item"
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}"
    if hint is float:
        return "a number"
    if hint is int:
        return "an int"
    name = getattr(hint, "__name__", str(hint))
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _secret(name: str) -> bool:
    """Parameters whose value is never shown, whatever its type (a password passed as bytes,
    a list, ... is still a password)."""
    return any(word in name.lower() for word in ("password", "secret", "key", "credential"))


def _shown(value: Any, *, secret: bool = False) -> str:
    if secret:
        return f"{type(value).__name__} (value not shown)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _find_catalog(arguments: dict[str, Any], signature: Any) -> None:
    """Fill ``catalog=None`` for a simulated host with the lab catalog it belongs to."""
    if "catalog" not in signature.parameters or arguments.get("catalog") is not None:
        return
    executor = arguments.get("executor")
    from_executor = getattr(executor, "catalog", None) if executor is not None else None
    from sectigo_chain.x509.catalog import Catalog

    if isinstance(from_executor, Catalog):
        arguments["catalog"] = from_executor
        return
    target = arguments.get("target")
    observed = arguments.get("observed")
    if isinstance(target, str) and target.lower().startswith("sim://"):
        from sectigo_chain.testing.lab import default_lab

        arguments["catalog"] = default_lab().catalog
    elif observed is not None:
        lab = _lab_catalog_if_built()
        if lab is None:
            return
        from sectigo_chain.x509.certs import thumbprint

        known = {thumbprint(c) for c in lab.certificates()}
        seen = {getattr(c, "thumbprint", None) for c in getattr(observed, "certificates", ())}
        if known & seen:
            arguments["catalog"] = lab


def _same_catalog(function: str, arguments: dict[str, Any]) -> None:
    """A desired state built from one catalog and used with another plans the wrong
    certificates (for example the packaged Sectigo cross-sign on a simulated host)."""
    desired, catalog = arguments.get("desired"), arguments.get("catalog")
    specs = getattr(desired, "certificates", ())
    if catalog is None or not specs:
        return
    from sectigo_chain.x509.certs import thumbprint

    known = {thumbprint(c) for c in catalog.certificates()}
    if not any(getattr(s, "thumbprint", None) in known for s in specs):
        from sectigo_chain.errors import InputError

        raise InputError(
            f"{function}(): the desired state was built from another CA catalog than the one "
            "this host's certificates come from; build it with "
            "sectigo_fix(..., catalog=host.catalog) (for a simulated host: its lab catalog)"
        )


def _lab_catalog_if_built() -> Any:
    """The lab catalog when a simulated host made the lab in this process, else None (making
    one costs keys; no simulated host, no lab certificates to find)."""
    import sys

    lab_module = sys.modules.get("sectigo_chain.testing.lab")
    if lab_module is None or lab_module.default_lab.cache_info().currsize == 0:
        return None
    return lab_module.default_lab().catalog


def __dir__() -> list[str]:
    return __all__
