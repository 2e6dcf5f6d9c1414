"""``json.dumps(obj, indent=2, default=str)``, byte for byte, about twice as fast.

With ``indent`` the standard library encodes in Python through nested generators (its C
encoder only writes compact JSON); this writes the same text with one recursive function,
strings escaped by the C ``encode_basestring_ascii``. ``check --json`` of 200 endpoints prints
close to a megabyte.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _string
from typing import Any

__all__ = ["dumps_indented"]

_INFINITY = float("inf")


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _string(key)
    if key is True:
        return '"true"'
    if key is False:
        return '"false"'
    if key is None:
        return '"null"'
    if isinstance(key, int):
        return _string(int.__repr__(key))
    if isinstance(key, float):
        return _string(_float(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _encode(value: Any, indent: str, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is float:
        out.append(_float(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        first = True
        for key, item in value.items():
            out.append(("{\n" if first else ",\n") + inner + _key(key) + ": ")
            first = False
            _encode(item, inner, out)
        out.append("\n" + indent + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        first = True
        for item in value:
            out.append(("[\n" if first else ",\n") + inner)
            first = False
            _encode(item, inner, out)
        out.append("\n" + indent + "]")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    else:
        _encode(str(value), indent, out)  # json.dumps(default=str)


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=2, default=str)``."""
    out: list[str] = []
    _encode(value, "", out)
    return "".join(out)
