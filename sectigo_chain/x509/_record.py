"""Frozen value classes that cost nothing to define: :class:`Frozen` and :class:`Record` (issue 15).

``check`` must start fast, and defining a class with :func:`dataclasses.dataclass` compiles
its methods from source text (about 0.8 ms a class here, more than 20 ms for the classes on
``check``'s path, plus ``dataclasses`` importing ``inspect`` and ``ast``), while pydantic costs
about as much to import as the whole of ``check`` may take. These bases give the same
behaviour with methods shared by every class (no code generated), so defining one is
reading its annotations.

:class:`Frozen` is a frozen dataclass: ``__init__`` from the annotated fields in order
(positional or keyword; ``class C(Frozen, kw_only=True)`` for keyword-only), defaults,
:func:`field` (``default``, ``default_factory``, ``repr``, ``compare``), ``__post_init__``,
``__repr__``/``__eq__``/``__hash__`` over the fields as a dataclass's, assignment refused
(:class:`FrozenRecordError`), :func:`replace`, :func:`fields`. Subclasses inherit the fields.
``functools.cached_property`` works (it writes the instance's ``__dict__``).

:class:`Record` is a keyword-only :class:`Frozen` with the part of pydantic's ``BaseModel`` API
the library and its users call (the report types of ``check``: ``Finding``,
``ProfileResult``, ``CertSummary``, ``ChainReport`` ...):

* ``model_dump(mode="python"|"json", exclude=...)`` gives what pydantic gave: nested records as
  dicts, tuples kept in ``python`` mode and lists in ``json`` mode, datetimes as pydantic
  writes them (``...Z`` for UTC) in ``json`` mode; ``model_dump_json()`` is its compact text;
* ``model_copy(update=...)`` is :func:`replace`;
* ``model_validate(obj)`` / ``model_validate_json(text)`` rebuild a record from such a dict
  (or its JSON), checking the field names and types (:class:`RecordValidationError`, a
  ``ValueError``, when they are wrong); they read the annotations when first called;
* a field annotated ``tuple[...]``, ``list[...]`` or ``dict[...]`` holds that container
  whatever sequence or mapping was given (pydantic's conversion), so equal records compare
  and hash equal;
* as a field of a pydantic model it is validated with ``model_validate`` and serialised
  with ``model_dump``.

Assigning to a field raises :class:`FrozenRecordError`, both a ``ValueError`` (as pydantic's
frozen error) and an ``AttributeError`` (as ``dataclasses.FrozenInstanceError``).
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import ClassVar, Literal

    from typing_extensions import Self, dataclass_transform
else:

    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls


__all__ = [
    "Frozen",
    "FrozenRecordError",
    "Record",
    "RecordValidationError",
    "field",
    "fields",
    "replace",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound="_Base")


class FrozenRecordError(AttributeError, ValueError):
    """Assignment to a field of a frozen value."""


class RecordValidationError(ValueError):
    """``model_validate`` got a value that does not fit the record."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


class _FieldSpec:
    __slots__ = ("compare", "default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool, compare: bool) -> None:
        self.default, self.default_factory = default, default_factory
        self.repr, self.compare = repr, compare


@overload
def field(*, default: _T, repr: bool = ..., compare: bool = ...) -> _T: ...
@overload
def field(*, default_factory: Callable[[], _T], repr: bool = ..., compare: bool = ...) -> _T: ...
@overload
def field(*, repr: bool = ..., compare: bool = ...) -> Any: ...
def field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    repr: bool = True,
    compare: bool = True,
) -> Any:
    """Like :func:`dataclasses.field`: a default, a default factory, left out of ``repr`` or
    of comparisons."""
    return _FieldSpec(default, default_factory, repr, compare)


def _refuse(self: object, name: str, value: object = None) -> None:
    raise FrozenRecordError(f"{type(self).__name__} is frozen: cannot assign to field {name!r}")


_CONTAINERS: dict[str, type] = {"tuple": tuple, "list": list, "dict": dict}


class _Base:
    """The shared machinery (not a value class itself)."""

    __slots__ = ()
    if TYPE_CHECKING:  # not at run time: typing.get_type_hints would read them
        _fields_: ClassVar[tuple[str, ...]]
        _specs_: ClassVar[dict[str, tuple[str, _FieldSpec]]]
        _init_: ClassVar[tuple[tuple[str, Any, Any], ...]]
        _compare_: ClassVar[tuple[str, ...]]
        _repr_: ClassVar[tuple[str, ...]]
        _kw_only_: ClassVar[bool]
        _containers_: ClassVar[tuple[tuple[str, type], ...]]
        _hints_: ClassVar[dict[str, Any] | None]

    def __init_subclass__(cls, kw_only: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: dict[str, tuple[str, _FieldSpec]] = dict(getattr(cls, "_specs_", {}))
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - inspect costs start-up
        for name, annotation in own.items():
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if text.startswith(("ClassVar", "typing.ClassVar", "Final")):
                continue
            value = cls.__dict__.get(name, _MISSING)
            if isinstance(value, _FieldSpec):
                spec = value
                if spec.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, spec.default)
            else:
                spec = _FieldSpec(value, _MISSING, True, True)
            specs.pop(name, None)  # a redefined field moves to the end, as in dataclasses
            specs[name] = (text, spec)
        inherited = getattr(cls, "_kw_only_", False)
        cls._kw_only_ = inherited if kw_only is None else kw_only
        cls._specs_ = specs
        cls._fields_ = tuple(specs)
        cls._init_ = tuple((n, s.default, s.default_factory) for n, (_, s) in specs.items())
        cls._compare_ = tuple(n for n, (_, s) in specs.items() if s.compare)
        cls._repr_ = tuple(n for n, (_, s) in specs.items() if s.repr)
        setattr(cls, "__match_args__", cls._fields_)  # noqa: B010 - mypy refuses the assignment
        if not cls._kw_only_:
            seen_default = False
            for name, default, factory in cls._init_:
                if default is not _MISSING or factory is not _MISSING:
                    seen_default = True
                elif seen_default:
                    raise TypeError(f"{cls.__name__}: non-default argument {name!r} follows a "
                                    "default argument")  # fmt: skip
        cls._containers_ = ()
        cls._hints_ = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if args:
            if cls._kw_only_:
                raise TypeError(f"{cls.__name__}() takes keyword arguments only")
            if len(args) > len(cls._init_):
                raise TypeError(f"{cls.__name__}() takes {len(cls._init_)} positional "
                                f"arguments but {len(args)} were given")  # fmt: skip
            for (name, _, _), value in zip(cls._init_, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
                kwargs[name] = value
        values = self.__dict__
        for name, default, factory in cls._init_:
            value = kwargs.pop(name, default)
            if value is _MISSING:
                if factory is _MISSING:
                    raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
                value = factory()
            values[name] = value
        if kwargs:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument "
                            f"{next(iter(kwargs))!r}")  # fmt: skip
        for name, kind in cls._containers_:
            value = values[name]
            if type(value) is not kind and value is not None:
                values[name] = kind(value)
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    __setattr__ = _refuse
    __delattr__ = _refuse

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._repr_)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = self._compare_
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self._compare_))

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Frozen(_Base):
    """A frozen dataclass without generated code (see the module docstring)."""

    __slots__ = ()


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Record(_Base):
    """A frozen, keyword-only value with pydantic's ``model_*`` API (see the module docstring)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(kw_only=True, **kwargs)
        containers = []
        for name, (text, _) in cls._specs_.items():
            kind = _CONTAINERS.get(text.split("[", 1)[0].strip())
            if kind is not None and "|" not in text:
                containers.append((name, kind))
        cls._containers_ = tuple(containers)

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
            name: _dump(getattr(self, name), as_json) for name in self._fields_ if name not in skip
        }

    def model_dump_json(self, *, exclude: Iterable[str] | None = None) -> str:
        """``model_dump(mode="json")`` as compact JSON text."""
        import json

        doc = self.model_dump(mode="json", exclude=exclude)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with ``update``'s fields replaced."""
        return replace(self, **(update or {}))

    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        """``obj`` if it is one, else the record of a dict as ``model_dump`` gives it."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise RecordValidationError(f"{cls.__name__}: expected a mapping, got {_kind(obj)}")
        extra = sorted(set(obj) - set(cls._fields_))
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
        if cls._hints_ is None:
            import typing

            cls._hints_ = typing.get_type_hints(cls)
        return cls._hints_

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """As a field of a pydantic model: validated by :meth:`model_validate`, serialised by
        :meth:`model_dump` (pydantic imports this only where pydantic is used anyway)."""
        from pydantic_core import core_schema

        def dump(value: Record, info: Any) -> dict[str, Any]:
            return value.model_dump(mode="json" if info.mode == "json" else "python")

        return core_schema.no_info_plain_validator_function(
            cls.model_validate,
            serialization=core_schema.plain_serializer_function_ser_schema(dump, info_arg=True),
        )


def replace(obj: _F, /, **changes: Any) -> _F:
    """A copy of ``obj`` with ``changes`` (as :func:`dataclasses.replace`)."""
    for name in obj._fields_:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return type(obj)(**changes)


def fields(obj: _Base | type[_Base]) -> tuple[str, ...]:
    """The field names of a :class:`Frozen` or :class:`Record` (class or instance), in order."""
    return obj._fields_


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _dump(value: Any, as_json: bool) -> Any:
    if type(value) in _SCALARS:  # most values: no isinstance chain
        return value
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
        raise RecordValidationError("; ".join(problems) or f"{where}: {value!r} does not fit")
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
