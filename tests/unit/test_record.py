"""``x509._record``: frozen value classes with the behaviour of frozen dataclasses and the part
of pydantic's ``BaseModel`` API the library uses, without generating code."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from sectigo_chain.x509._record import (
    Frozen,
    FrozenRecordError,
    Record,
    RecordValidationError,
    field,
    fields,
    replace,
)

UTC = dt.timezone.utc


class Point(Frozen):
    x: int
    y: int = 0
    tags: tuple[str, ...] = field(default=(), repr=False)
    note: str = field(default="", compare=False)


class Keyed(Frozen, kw_only=True):
    name: str
    items: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("no name")


class Leaf(Record):
    code: str
    severity: Literal["error", "warning"]
    certificates: tuple[str, ...] = ()


class Tree(Record):
    when: dt.datetime
    leaves: tuple[Leaf, ...]
    by_name: dict[str, Leaf]
    path: list[str] = field(default_factory=list)
    note: str | None = None


def _tree() -> Tree:
    leaf = Leaf(code="A", severity="error", certificates=["AA"])  # type: ignore[arg-type]
    return Tree(
        when=dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        leaves=[leaf],  # type: ignore[arg-type]
        by_name={"a": leaf},
        path=("p1", "p2"),  # type: ignore[arg-type]
    )


def test_frozen_constructs_like_a_dataclass() -> None:
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert Point(1).y == 0
    assert fields(Point) == ("x", "y", "tags", "note")
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="keyword arguments only"):
        Keyed("n")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="non-default argument"):

        class Bad(Frozen):
            a: int = 0
            b: int  # type: ignore[misc]


def test_defaults_factories_and_post_init() -> None:
    one, two = Keyed(name="a"), Keyed(name="b")
    assert one.items == []
    assert one.items is not two.items
    with pytest.raises(ValueError, match="no name"):
        Keyed(name="")


def test_frozen_repr_eq_hash_like_a_dataclass() -> None:
    p = Point(1, 2, ("t",), "n")
    assert repr(p) == "Point(x=1, y=2, note='n')"  # repr=False leaves tags out
    assert p == Point(1, 2, ("t",), "other")  # compare=False: note is not compared
    assert hash(p) == hash(Point(1, 2, ("t",), "other"))
    assert p != Point(1, 3)
    assert p != (1, 2)
    with pytest.raises(FrozenRecordError, match="frozen") as raised:
        p.x = 5  # type: ignore[misc]
    assert isinstance(raised.value, AttributeError)
    assert isinstance(raised.value, ValueError)
    with pytest.raises(FrozenRecordError):
        del p.y
    assert replace(p, y=9) == Point(1, 9, ("t",), "n")
    assert pickle.loads(pickle.dumps(p)) == p


def test_subclasses_inherit_the_fields() -> None:
    class Point3(Point):
        z: int = 0

    assert fields(Point3) == ("x", "y", "tags", "note", "z")
    assert Point3(1, 2, z=3).z == 3
    assert Point3(1) != Point(1)  # another class


def test_record_converts_containers_as_pydantic_did() -> None:
    tree = _tree()
    assert tree.leaves[0].certificates == ("AA",)
    assert isinstance(tree.leaves, tuple)
    assert tree.path == ["p1", "p2"]
    assert hash(tree.leaves[0]) == hash(Leaf(code="A", severity="error", certificates=("AA",)))
    with pytest.raises(TypeError, match="keyword arguments only"):
        Leaf("A", "error")  # type: ignore[call-arg]


def test_model_dump_is_pydantics() -> None:
    class PLeaf(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        code: str
        severity: Literal["error", "warning"]
        certificates: tuple[str, ...] = ()

    class PTree(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        when: dt.datetime
        leaves: tuple[PLeaf, ...]
        by_name: dict[str, PLeaf]
        path: list[str] = []
        note: str | None = None

    tree = _tree()
    same = PTree.model_validate(tree.model_dump())
    for mode in ("python", "json"):
        assert tree.model_dump(mode=mode) == same.model_dump(mode=mode)
    assert tree.model_dump(mode="json")["when"] == "2026-01-02T03:04:05.000006Z"
    assert tree.model_dump(exclude={"when", "path"}) == same.model_dump(exclude={"when", "path"})
    assert json.loads(tree.model_dump_json()) == json.loads(same.model_dump_json())
    assert tree.model_copy(update={"note": "n"}).note == "n"
    assert tree.note is None


def test_model_validate_round_trips_and_refuses_what_does_not_fit() -> None:
    tree = _tree()
    assert Tree.model_validate(tree) is tree
    assert Tree.model_validate(tree.model_dump()) == tree
    assert Tree.model_validate_json(tree.model_dump_json()) == tree
    doc = tree.model_dump(mode="json")
    for bad, message in [
        ({**doc, "extra": 1}, "unexpected field"),
        ({k: v for k, v in doc.items() if k != "when"}, "missing"),
        ({**doc, "when": "yesterday"}, "datetime"),
        ({**doc, "path": "p"}, "sequence"),
        ({**doc, "leaves": [{"code": "A", "severity": "fatal"}]}, "not one of"),
        ({**doc, "note": 5}, "expected str"),
    ]:
        with pytest.raises(RecordValidationError, match=message):
            Tree.model_validate(bad)
    with pytest.raises(ValueError, match="mapping"):
        Tree.model_validate([1])


def test_a_record_as_a_pydantic_field() -> None:
    class Holder(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        tree: Tree | None = None

    tree = _tree()
    held = Holder(tree=tree)
    assert held.tree is tree
    assert held.model_dump(mode="json")["tree"] == tree.model_dump(mode="json")
    assert held.model_dump()["tree"] == tree.model_dump()
    assert Holder.model_validate({"tree": tree.model_dump(mode="json")}).tree == tree
