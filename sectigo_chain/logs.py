"""Secrets never reach a log line: :class:`SecretMaskFilter` masks them on the way out.

The filter rewrites each record it sees (message, arguments and the formatted traceback):

* every value registered with :func:`register_secret` (a PFX or WinRM password read by the
  CLI, for instance) is replaced by ``********``;
* ``password=...``, ``password: ...``, ``"pfx_password": "..."`` and ``-Password ...`` patterns
  (any key that ends in ``password``, ``passwd``, ``pwd``, ``secret`` or ``token``) keep
  their key and lose their value;
* a base64 run that decodes to a template payload holding secrets (a JSON object with a
  ``pfx*`` or ``*password`` key) is replaced whole: the ``-Payload`` of a secret script.

Attach it to a *handler* (``handler.addFilter(SecretMaskFilter())``): filters on a logger do
not see records from its child loggers. Standard library only, so the CLI can import it at
start-up without slowing ``--help``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MASK",
    "SecretMaskFilter",
    "clear_secrets",
    "mask_text",
    "register_secret",
    "registered_secrets",
    "unregister_secret",
]

MASK = "********"

_lock = threading.Lock()
_secrets: set[str] = set()

_KEY = r"[A-Za-z_-]*(?:password|passwd|pwd|secret|token)"
# key=value, key: value, "key": "value" (the value: quoted, or up to a separator)
_PAIR = re.compile(
    rf"""(?ix)
    (?P<key>["']?{_KEY}["']?)
    (?P<sep>\s*[=:]\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&)}}\]]+)
    """
)
# PowerShell: -Password value
_PS_PARAM = re.compile(rf"(?i)(?P<key>-{_KEY})(?P<sep>\s+)(?P<value>'[^']*'|\"[^\"]*\"|\S+)")
_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_SECRET_KEYS = re.compile(r"(?i)^(pfx.*|legacy_pfx.*|.*password|.*secret)$")


def _value(secret: Any) -> str | None:
    getter = getattr(secret, "get_secret_value", None)  # pydantic SecretStr / SecretBytes
    if callable(getter):
        secret = getter()
    if isinstance(secret, bytes):
        secret = secret.decode("utf-8", "replace")
    if not isinstance(secret, str):
        return None
    return secret if len(secret) >= 3 else None  # 1-2 characters would mask half the text


def register_secret(secret: Any) -> None:
    """Mask ``secret`` (str, bytes, ``SecretStr``/``SecretBytes``) in every filtered record.

    Values shorter than 3 characters are ignored: masking them would shred every message.
    """
    value = _value(secret)
    if value is not None:
        with _lock:
            _secrets.add(value)


def unregister_secret(secret: Any) -> None:
    """Stop masking ``secret``."""
    value = _value(secret)
    if value is not None:
        with _lock:
            _secrets.discard(value)


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    with _lock:
        _secrets.clear()


def registered_secrets() -> int:
    """How many secrets are registered (never the values)."""
    with _lock:
        return len(_secrets)


def _secret_payload(run: str) -> bool:
    """True when ``run`` is base64 of a JSON object with a secret key and a non-empty value."""
    try:
        data = json.loads(base64.b64decode(run + "=" * (-len(run) % 4), validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and any(
        _SECRET_KEYS.match(str(k)) and v not in (None, "", "**********") for k, v in data.items()
    )


def _mask_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.strip("\"'") in ("", MASK, "**********"):
        return match.group(0)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"


def mask_text(text: str, extra: Iterable[Any] = ()) -> str:
    """``text`` with registered secrets, ``extra`` secrets, password-like pairs and secret
    payloads masked."""
    with _lock:
        values = set(_secrets)
    values.update(v for v in map(_value, extra) if v is not None)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _PS_PARAM.sub(_mask_pair, text)
    text = _PAIR.sub(_mask_pair, text)
    return _B64.sub(lambda m: MASK if _secret_payload(m.group(0)) else m.group(0), text)


class SecretMaskFilter(logging.Filter):
    """A logging filter that masks secrets in each record (never drops a record).

    ``secrets`` are extra values to mask for this filter only, besides the registered ones.
    """

    def __init__(self, name: str = "", secrets: Iterable[Any] = ()) -> None:
        super().__init__(name)
        self._extra = tuple(v for v in map(_value, secrets) if v is not None)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: mask what we have
            message = f"{record.msg} {record.args}"
        record.msg = mask_text(message, self._extra)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text, self._extra)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, self._extra)
        return True
