"""The one road into PowerShell: find a template, validate its parameters, encode the payload.

Every template in ``ps_templates/`` is static text whose only input is ``-Payload``: base64 of
UTF-8 JSON. :func:`render` validates parameters with the template's pydantic model
(:mod:`sectigo_chain.templates.params`) and returns a :class:`RenderedScript`; executors send
``script.text`` and ``script.payload`` and nothing else. No value is ever pasted into
PowerShell text. Secrets (the PFX and its password) are marked, and ``repr``/``str`` (and so
logs) show them masked.

:func:`to_standalone` (in :mod:`sectigo_chain.templates.standalone`) turns a rendered script
into a self-contained ``.ps1`` for an operator; :func:`ps_quote` is the one quoting function
for the few literals such a script needs.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from sectigo_chain.errors import InputError, TemplateError
from sectigo_chain.templates.params import TEMPLATE_SPECS, TemplateParams

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

__all__ = [
    "SINGLE_QUOTES",
    "TEMPLATE_NAMES",
    "RenderedScript",
    "abbreviate",
    "decode_payload",
    "encode_payload",
    "ps_quote",
    "render",
    "render_plan",
    "template_dir",
    "template_text",
]

log = logging.getLogger(__name__)

TEMPLATE_NAMES: tuple[str, ...] = tuple(TEMPLATE_SPECS)

_MASK = "**********"


def template_dir() -> Traversable:
    """The folder that holds the ``.ps1`` templates.

    Installed from a wheel, the templates live inside the package
    (``sectigo_chain/ps_templates``, put there by pyproject's force-include); from a source
    checkout or an editable install they are ``<repo>/ps_templates`` next to the package.
    """
    from importlib.resources import files

    packaged = files("sectigo_chain") / "ps_templates"
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[2] / "ps_templates"
    if source.is_dir():
        return source
    raise TemplateError(
        "the PowerShell templates are missing: looked in the installed package "
        f"(sectigo_chain/ps_templates) and in {source}; reinstall sectigo-chain"
    )


def template_text(name: str) -> str:
    """The static text of template ``name`` (without ``.ps1``); read once, then cached."""
    _spec(name)
    return _read_template(name)


_REGION = re.compile(r"^(#region sectigo_chain (\w+)[^\n]*\n)(#endregion sectigo_chain \2)$", re.M)


@functools.cache
def _read_template(name: str) -> str:
    """The template's static text with its shared regions filled in.

    Code shared by several templates (the common helpers, IIS access, ...) is kept once in
    ``ps_templates/_regions/<region>.ps1``; a template names it with an empty
    ``#region sectigo_chain <region>`` / ``#endregion`` pair, filled here. The result is still
    static text: no value is ever substituted.
    """
    resource = template_dir() / f"{name}.ps1"
    try:
        text = resource.read_text(encoding="ascii")
    except FileNotFoundError:
        raise TemplateError(
            f"template file {name}.ps1 is missing; reinstall sectigo-chain"
        ) from None

    def fill(match: re.Match[str]) -> str:
        region = template_dir() / "_regions" / f"{match.group(2)}.ps1"
        try:
            body = region.read_text(encoding="ascii")
        except FileNotFoundError:
            raise TemplateError(
                f"template region {match.group(2)}.ps1 is missing; reinstall sectigo-chain"
            ) from None
        return match.group(1) + body + match.group(3)

    return _REGION.sub(fill, text)


def _spec(name: str) -> Any:
    try:
        return TEMPLATE_SPECS[name]
    except (KeyError, TypeError):
        raise TemplateError(
            f"unknown template {name!r}; known templates: {', '.join(TEMPLATE_NAMES)}"
        ) from None


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode("utf-8")
    if isinstance(value, Mapping):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_reveal(item) for item in value]
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_carryable(value: Any, where: str) -> None:
    """Refuse text with a UTF-16 surrogate code point (U+D800..U+DFFF) anywhere in ``value``.

    Such a Python string is not Unicode text: a lone surrogate has no UTF-8 form, and a pair
    (``'\\ud800\\udc00'``) would come back from the JSON as one character (U+10000), so the
    host would not receive the value that was given. Raised as :class:`InputError` naming
    the parameter, never its value (it may be a secret).
    """
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise InputError(
                f"parameter {where} contains a UTF-16 surrogate code point (U+D800..U+DFFF), "
                "which is not a Unicode character and cannot be sent to the host unchanged; "
                "this usually comes from bytes decoded with errors='surrogateescape' or from "
                "a broken UTF-16 source: give the value as proper Unicode text"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_carryable(key, f"{where} (a key)")
            _check_carryable(item, f"{where}.{key}" if where != "payload" else repr(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_carryable(item, f"{where}[{index}]")


def encode_payload(values: Mapping[str, Any]) -> str:
    """Base64 of the UTF-8 JSON of ``values`` (sorted keys, ASCII-escaped, compact).

    The result uses only ``A-Z a-z 0-9 + / =``: no quote, no whitespace, nothing PowerShell
    could read as code. Text holding a UTF-16 surrogate code point cannot be carried
    unchanged and raises :class:`~sectigo_chain.errors.InputError` (see
    :func:`_check_carryable`).
    """
    _check_carryable(values, "payload")
    text = json.dumps(values, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_payload(payload: str) -> dict[str, Any]:
    """Inverse of :func:`encode_payload` (what the template does on the host)."""
    decoded = json.loads(base64.b64decode(payload, validate=True).decode("utf-8"))
    if not isinstance(decoded, dict):
        raise TemplateError("a payload must decode to a JSON object")
    return decoded


def abbreviate(value: Any, limit: int = 80) -> Any:
    """``value`` for display: a string longer than ``limit`` is cut and its length given."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: limit - 30]}... ({len(value)} characters)"
    return value


def _masked(params: BaseModel, secret_fields: frozenset[str]) -> dict[str, Any]:
    dumped = params.model_dump(mode="json")
    return {key: (_MASK if key in secret_fields else value) for key, value in dumped.items()}


@dataclass(frozen=True, repr=False)
class RenderedScript:
    """A template ready to run: its static text plus the encoded payload.

    ``params`` is the validated model (secrets as ``SecretStr``); ``payload`` is what the host
    decodes, secrets included, so ``repr``/``str`` never show it.
    """

    name: str
    text: str
    payload: str
    params: TemplateParams
    secret_fields: frozenset[str] = field(default_factory=frozenset)
    idempotent: bool = True
    read_only: bool = False

    def decoded_params(self) -> dict[str, Any]:
        """The JSON values the host receives, secrets included (for executors only)."""
        return decode_payload(self.payload)

    def masked_params(self) -> dict[str, Any]:
        """The parameters as JSON values with every secret replaced by ``**********``."""
        return _masked(self.params, self.secret_fields)

    def secret_values(self) -> list[str]:
        """Every secret value the payload carries (for masking), those of the actions inside
        an ``apply_plan`` included, and each such action's encoded payload."""
        if not self.secret_fields and self.name != "apply_plan":
            return []
        try:
            params = self.decoded_params()
        except ValueError:  # not a payload this library made (a test's hostile parameter)
            return []
        found = [v for name in self.secret_fields if isinstance(v := params.get(name), str)]
        if self.name == "apply_plan":
            for entry in params.get("actions") or ():
                spec = TEMPLATE_SPECS.get(entry.get("template"))
                if spec is None or not spec.secret_fields:
                    continue
                inner = decode_payload(entry["payload"])
                found += [v for n in spec.secret_fields if isinstance(v := inner.get(n), str)]
                found.append(entry["payload"])
        return found

    @property
    def holds_secrets(self) -> bool:
        """Whether the payload carries a secret (its own field or a nested action's)."""
        return bool(self.secret_fields) or bool(self.secret_values())

    def __repr__(self) -> str:
        params = json.dumps(
            {key: abbreviate(value) for key, value in self.masked_params().items()},
            sort_keys=True,
            ensure_ascii=True,
        )
        return (
            f"RenderedScript(name={self.name!r}, params={params}, "
            f"payload=<{len(self.payload)} base64 chars>, read_only={self.read_only}, "
            f"idempotent={self.idempotent})"
        )

    __str__ = __repr__


def _validation_message(name: str, exc: ValidationError) -> str:
    # Built from locations and messages only: pydantic's own text quotes the input values,
    # which may be secrets.
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "parameters"
        problems.append(f"{where}: {error['msg']}")
    return f"invalid parameters for template {name!r}: " + "; ".join(problems)


def render(name: str, params: Mapping[str, Any] | BaseModel | None = None) -> RenderedScript:
    """Validate ``params`` for template ``name`` and return the script to run.

    ``params`` is a mapping (JSON-like values) or an instance of the template's model.
    Raises :class:`~sectigo_chain.errors.TemplateError` for an unknown template or invalid
    parameters, and :class:`~sectigo_chain.errors.InputError` for text that cannot be carried
    (a UTF-16 surrogate code point); the message never contains parameter values.
    """
    spec = _spec(name)
    model: type[TemplateParams] = spec.model
    if params is None:
        params = {}
    if isinstance(params, BaseModel):
        if not isinstance(params, model):
            raise TemplateError(
                f"template {name!r} takes {model.__name__}, not {type(params).__name__}"
            )
        raw: Any = dict(params)
    elif isinstance(params, Mapping):
        raw = dict(params)
    else:
        raise TemplateError(f"parameters for {name!r} must be a mapping or {model.__name__}")
    try:
        validated = model.model_validate(raw)
    except ValidationError as exc:
        raise TemplateError(_validation_message(name, exc)) from None
    payload = encode_payload(_reveal(validated.model_dump(mode="python")))
    script = RenderedScript(
        name=name,
        text=template_text(name),
        payload=payload,
        params=validated,
        secret_fields=spec.secret_fields,
        idempotent=spec.idempotent,
        read_only=spec.read_only,
    )
    log.debug("rendered %r", script)
    return script


def render_plan(
    scripts: Sequence[RenderedScript], *, observe_after: bool = False
) -> RenderedScript:
    """``apply_plan`` running ``scripts`` (rendered action templates) in order in one
    invocation; with ``observe_after``, ``observe`` runs after the last one when every action
    was done. Each action keeps its own payload, carried inside the one encoded payload. The
    result is idempotent (safe to retry after a lost connection) only when every action is."""
    from dataclasses import replace

    params: dict[str, Any] = {
        "actions": [{"template": s.name, "payload": s.payload} for s in scripts],
        "observe": render("observe", {}).payload if observe_after else None,
    }
    script = render("apply_plan", params)
    return replace(script, idempotent=all(s.idempotent for s in scripts))


# The five characters that open and close a PowerShell single-quoted string.
SINGLE_QUOTES = "\u0027\u2018\u2019\u201a\u201b"


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal whose value is exactly ``value``.

    PowerShell ends a single-quoted string at any of five characters (U+0027, U+2018, U+2019,
    U+201A, U+201B) and reads each doubled one as itself (DESIGN.md section 1.10), so every
    one of the five is doubled, not only the ASCII quote.
    """
    return "'" + "".join(ch * 2 if ch in SINGLE_QUOTES else ch for ch in value) + "'"
