"""Frozen records: the report types of ``check`` without pydantic (issue 15).

Every type a ``check`` builds (``Finding``, ``ProfileResult``, ``CertSummary``,
``ChainReport`` ...) is a :class:`Record`: a frozen, keyword-only dataclass with the part of
pydantic's ``BaseModel`` API the library and its users call, so ``check`` never imports
pydantic (about as much start-up time as the whole of ``check`` may take):

* ``model_dump(mode="python"|"json", exclude=...)`` gives what pydantic gave: nested records as
  dicts, tuples kept in ``python`` mode and lists in ``json`` mode, datetimes as pydantic
  writes them (``...Z`` for UTC) in ``json`` mode; ``model_dump_json()`` is its compact text;
* ``model_copy(update=...)`` is :func:`dataclasses.replace`;
* ``model_validate(obj)`` / ``model_validate_json(text)`` rebuild a record from such a dict
  (or its JSON), checking the field names and types (:class:`RecordValidationError`, a
  ``ValueError``, when they are wrong); they read the annotations when first called;
* assigning to a field raises :class:`FrozenRecordError`, both a ``ValueError`` (as pydantic's
  frozen error) and a :class:`dataclasses.FrozenInstanceError`;
* a field annotated ``tuple[...]``, ``list[...]`` or ``dict[...]`` holds that container
  whatever sequence or mapping was given (pydantic's conversion), so equal records compare
  and hash equal.

Records are equal when their class and fields are; ``repr`` is the dataclass one (the same
text as pydantic's).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, ClassVar, Literal

    from typing_extensions import Self, dataclass_transform
else:

    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls


__all__ = ["FrozenRecordError", "Record", "RecordValidationError"]


class FrozenRecordError(dataclasses.FrozenInstanceError, ValueError):
    """Assignment to a field of a frozen record."""


class RecordValidationError(ValueError):
    """``model_validate`` got a value that does not fit the record."""


def _refuse(self: object, name: str, value: object = None) -> None:
    raise FrozenRecordError(f"{type(self).__name__} is frozen: cannot set {name!r}")


_CONTAINERS: dict[str, type] = {"tuple": tuple, "list": list, "dict": dict}


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field,)
)
class Record:
    """Base of the frozen records (see the module docstring)."""

    __slots__ = ()
    if TYPE_CHECKING:  # not at run time: typing.get_type_hints would read them
        _record_names: ClassVar[tuple[str, ...]]
        _record_containers: ClassVar[tuple[tuple[str, type], ...]]
        _record_hints: ClassVar[dict[str, Any] | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        setattr(cls, "__setattr__", _refuse)  # noqa: B010 - a method on a frozen dataclass
        setattr(cls, "__delattr__", _refuse)  # noqa: B010
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        cls._record_names = tuple(f.name for f in fields)
        containers = []
        for f in fields:
            text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            kind = _CONTAINERS.get(text.split("[", 1)[0].strip())
            if kind is not None and "|" not in text:
                containers.append((f.name, kind))
        cls._record_containers = tuple(containers)
        cls._record_hints = None

    def __post_init__(self) -> None:
        for name, kind in self._record_containers:
            value = getattr(self, name)
            if type(value) is not kind:
                object.__setattr__(self, name, kind(value))

    # --- pydantic's API ------------------------------------------------------------------

    def model_dump(
        self,
        *,
        mode: Literal["python", "json"] | str = "python",
        exclude: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """The fields as a dict (nested records too); ``mode="json"``: JSON-ready values."""
        as_json = mode == "json"
        skip = frozenset(exclude or ())
        return {
            name: _dump(getattr(self, name), as_json)
            for name in self._record_names
            if name not in skip
        }

    def model_dump_json(self, *, exclude: Iterable[str] | None = None) -> str:
        """``model_dump(mode="json")`` as compact JSON text."""
        import json

        doc = self.model_dump(mode="json", exclude=exclude)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with ``update``'s fields replaced."""
        return dataclasses.replace(self, **(update or {}))  # type: ignore[type-var]

    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        """``obj`` if it is one, else the record of a dict as ``model_dump`` gives it."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise RecordValidationError(f"{cls.__name__}: expected a mapping, got {_kind(obj)}")
        extra = sorted(set(obj) - set(cls._record_names))
        if extra:
            raise RecordValidationError(f"{cls.__name__}: unexpected field(s) {extra}")
        hints = cls._hints()
        values = {name: _convert(hints[name], value, f"{cls.__name__}.{name}")
                  for name, value in obj.items()}  # fmt: skip
        try:
            return cls(**values)
        except TypeError as exc:  # a required field is missing
            raise RecordValidationError(f"{cls.__name__}: {exc}") from None

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Self:
        """:meth:`model_validate` of a JSON document."""
        import json

        return cls.model_validate(json.loads(text))

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        if cls._record_hints is None:
            import typing

            cls._record_hints = typing.get_type_hints(cls)
        return cls._record_hints


def _dump(value: Any, as_json: bool) -> Any:
    if isinstance(value, Record):
        return value.model_dump(mode="json" if as_json else "python")
    if isinstance(value, tuple):
        items = [_dump(v, as_json) for v in value]
        return items if as_json else tuple(items)
    if isinstance(value, list):
        return [_dump(v, as_json) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, as_json) for k, v in value.items()}
    if as_json and isinstance(value, _dt.datetime):
        return json_datetime(value)
    return value


def json_datetime(value: _dt.datetime) -> str:
    """``value`` as pydantic writes a datetime in JSON: ISO 8601, ``Z`` for UTC."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _kind(value: object) -> str:
    return type(value).__name__


def _convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` as the type ``tp`` wants (records from dicts, containers, datetimes from
    text); RecordValidationError when it does not fit."""
    import types
    import typing

    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        problems = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except RecordValidationError as exc:
                problems.append(str(exc))
        raise RecordValidationError("; ".join(problems))
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise RecordValidationError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise RecordValidationError(f"{where}: expected a sequence, got {_kind(value)}")
        item = typing.get_args(tp)[0] if typing.get_args(tp) else typing.Any
        return origin(_convert(item, v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordValidationError(f"{where}: expected a mapping, got {_kind(value)}")
        args = typing.get_args(tp) or (typing.Any, typing.Any)
        return {_convert(args[0], k, where): _convert(args[1], v, where) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.model_validate(value)
    if tp is _dt.datetime:
        return _datetime(value, where)
    checks: dict[Any, Callable[[Any], bool]] = {
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    check = checks.get(tp)
    if check is not None and not check(value):
        raise RecordValidationError(f"{where}: expected {tp.__name__}, got {_kind(value)}")
    return float(value) if tp is float else value


def _datetime(value: Any, where: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            return _dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    raise RecordValidationError(f"{where}: expected a datetime, got {value!r}")
