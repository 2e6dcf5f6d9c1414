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
import functools
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = [
    "MASK",
    "SecretMaskFilter",
    "bounded",
    "clear_secrets",
    "escape_controls",
    "mask_text",
    "register_secret",
    "registered_secrets",
    "unregister_secret",
]

MASK = "********"

_lock = threading.Lock()
_secrets: set[str] = set()

_KEY = r"[A-Za-z_-]{0,40}(?:password|passwd|pwd|secret|token)"  # bounded: no backtracking blow-up


class _Patterns(NamedTuple):
    pair: re.Pattern[str]  # key=value, key: value, "key": "value"
    ps_param: re.Pattern[str]  # PowerShell: -Password value
    b64: re.Pattern[str]  # a base64 run that may be an encoded payload
    secret_keys: re.Pattern[str]  # payload keys that hold secrets
    b64_run: re.Pattern[str]  # runs that may encode a secret: base64 (standard or URL-safe)
    hex_run: re.Pattern[str]  # ... and hex


@functools.cache
def _patterns() -> _Patterns:
    """The masking patterns, compiled on first use: ``check`` configures logging but mostly
    logs nothing."""
    return _Patterns(
        # the value: quoted, or up to a separator
        pair=re.compile(
            rf"""(?ix)
            (?P<key>["']?{_KEY}["']?)
            (?P<sep>\s*[=:]\s*)
            (?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&)}}\]]+)
            """
        ),
        ps_param=re.compile(rf"(?i)(?P<key>-{_KEY})(?P<sep>\s+)(?P<value>'[^']*'|\"[^\"]*\"|\S+)"),
        b64=re.compile(r"[A-Za-z0-9+/]{24,}={0,2}"),
        secret_keys=re.compile(r"(?i)^(pfx.*|legacy_pfx.*|.*password|.*secret)$"),
        b64_run=re.compile(r"[A-Za-z0-9+/_-]{4,}={0,2}"),
        hex_run=re.compile(r"(?:[0-9A-Fa-f]{2}){3,}"),
    )


#: A message longer than this is cut (after masking): a remote error body is never copied whole.
MAX_MESSAGE_CHARS = 2000


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """``text`` with every non-printable character (C0/C1 controls such as ESC, newlines,
    bidirectional overrides, line separators) shown as an escape (``\\x1b``, ``\\n``,
    ``\\u202e``).

    For text that reaches a terminal or a one-line message: a certificate name, a file name or
    a remote error holding escape sequences or newlines cannot recolour the terminal or forge
    lines. JSON output needs no such care (its encoder escapes control characters).
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


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
        _patterns().secret_keys.match(str(k)) and v not in (None, "", "**********")
        for k, v in data.items()
    )


def _mask_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.strip("\"'") in ("", MASK, "**********"):
        return match.group(0)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"


@functools.lru_cache(maxsize=256)
def _forms(value: str) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
    """The text forms a secret may take in a message (plain, UTF-16LE read as 8-bit text, hex,
    URL-encoded, base64 of the value alone) and the byte forms whose presence in a decoded
    base64 or hex run gives it away (UTF-8 and UTF-16LE: ``user:password`` in an
    ``Authorization: Basic`` header, an NTLM blob)."""
    from urllib.parse import quote, quote_plus  # only when a secret is registered

    raw = value.encode("utf-8")
    utf16 = value.encode("utf-16-le")
    texts = {
        value,
        utf16.decode("latin-1"),
        raw.hex(),
        raw.hex().upper(),
        utf16.hex(),
        utf16.hex().upper(),
        quote(value, safe=""),
        quote_plus(value, safe=""),
        quote(value, safe="").lower(),
        quote_plus(value, safe="").lower(),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
        base64.b64encode(utf16).decode("ascii").rstrip("="),
    }
    return tuple(sorted(texts, key=len, reverse=True)), (raw, utf16)


def _b64_decodings(run: str) -> list[bytes]:
    """What ``run`` decodes to as standard or URL-safe base64 (each offset of a run that does
    not start on a 4-character boundary is tried too)."""
    body = run.rstrip("=")
    out = []
    for start in range(4):
        part = body[start:]
        part = part[: len(part) - len(part) % 4] if len(part) % 4 == 1 else part
        if len(part) < 4:
            break
        padded = part + "=" * (-len(part) % 4)
        for alt in (b"+/", b"-_"):
            try:
                out.append(base64.b64decode(padded, altchars=alt, validate=True))
            except (binascii.Error, ValueError):
                continue
    return out


def _encodes_secret(decodings: Iterable[bytes], needles: Iterable[bytes]) -> bool:
    wanted = tuple(needles)
    return any(n in d for d in decodings for n in wanted)


def mask_text(text: str, extra: Iterable[Any] = ()) -> str:
    """``text`` with registered secrets, ``extra`` secrets, password-like pairs and secret
    payloads masked.

    Each secret is masked in every form it may take: plain, UTF-16LE, hex, URL-encoded, and
    inside any base64 or hex run that decodes to bytes holding it (``user:password`` in an
    echoed ``Authorization: Basic`` header).
    """
    with _lock:
        values = set(_secrets)
    values.update(v for v in map(_value, extra) if v is not None)
    ordered = sorted(values, key=len, reverse=True)
    needles = [raw for value in ordered for raw in _forms(value)[1]]
    if needles:  # encoded runs first: a plain replacement would cut them in two
        text = _patterns().b64_run.sub(
            lambda m: MASK if _encodes_secret(_b64_decodings(m.group(0)), needles) else m.group(0),
            text,
        )
        text = _patterns().hex_run.sub(
            lambda m: (
                MASK
                if _encodes_secret([bytes.fromhex(m.group(0)[: len(m.group(0)) // 2 * 2])], needles)
                else m.group(0)
            ),
            text,
        )
    for value in ordered:
        for form in _forms(value)[0]:
            text = text.replace(form, MASK)
    patterns = _patterns()
    text = patterns.ps_param.sub(_mask_pair, text)
    text = patterns.pair.sub(_mask_pair, text)
    return patterns.b64.sub(lambda m: MASK if _secret_payload(m.group(0)) else m.group(0), text)


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (mask first: a cut can split an encoded secret)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
