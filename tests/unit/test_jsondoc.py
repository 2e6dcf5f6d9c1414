"""``display.jsondoc.dumps_indented`` writes exactly what ``json.dumps(indent=2, default=str)``
writes (the CLI's ``--json`` documents), for any JSON-like value."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sectigo_chain.display.jsondoc import dumps_indented


class Level(enum.IntEnum):
    LOW = 1


class Colour(str, enum.Enum):
    RED = "red"


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.just(Level.LOW)
    | st.just(Colour.RED)
    | st.datetimes(timezones=st.just(dt.timezone.utc))  # default=str
)
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_same_text_as_the_standard_library(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, default=str)


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        (),
        {"a": []},
        {"a": {}},
        [[], {}, [[]]],
        {"é\u2028\x00": "\U0001f600"},
        [math.nan, math.inf, -math.inf, -0.0, 1e300],
        {2: 1, 2.5: 2, True: 3, False: 5, None: 4},
        [10**40, -(10**40)],
    ],
)
def test_edges(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, default=str)


def test_a_key_json_cannot_write_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        dumps_indented({(1, 2): "tuple key"})
    with pytest.raises(TypeError):
        json.dumps({(1, 2): "tuple key"}, indent=2, default=str)
