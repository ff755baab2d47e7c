"""`events_spec.shape_fits`, the hot path's cheap test of the properties' shape on their
encoding: whatever it vouches for, `shape_problem` accepts (never the other way round
needed: a False only sends the properties to `shape_problem`); and `all_fit`, the same
for a batch's properties at once, which also vouches for `properties_problem`. The
validator parity test holds the whole fast path to the contract; this one aims at the
tests' own edges: the depth, nesting, key-count and key-length limits, and the strings
that could hide them (braces, colons, quotes and escapes inside keys and values)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app import events_spec as spec

TRICKY = st.sampled_from(['"', "\\", "{", ":", "}", "[", "]", "\n", "\x00", "é", "🙂", "x"])
keys = st.one_of(
    st.text(max_size=6),
    st.builds(lambda n, c: c * n, st.sampled_from([33, 50, 99, 100, 101, 150]), TRICKY),
    st.builds(lambda n, c: "k" * n + c, st.sampled_from([98, 99, 100]), TRICKY),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8), keys)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=40,
)


def deep(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"d": [value]}
    return value


def containers(kinds: str, leaf: Any = 1) -> dict[str, Any]:
    """Properties, then one container per letter, outermost first ("l" a list, "d" an
    object): `len(kinds) + 1` levels."""
    value: Any = leaf
    for kind in reversed(kinds):
        value = [value] if kind == "l" else {"n": value}
    return {"n": value}


nestings = st.builds(
    containers,
    st.text(st.sampled_from("llllld"), min_size=spec.MAX_PROPERTY_NESTING - 3,
            max_size=spec.MAX_PROPERTY_NESTING + 2),
    values,
)


@given(st.one_of(st.dictionaries(keys, values, max_size=8), nestings))
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(deep(5))
@example(deep(6))
@example({f"k{i}": i for i in range(100)})
@example({f"k{i}": i for i in range(101)})
@example({"k" * 100: 1, "v": "x" * 300})
@example({"k" * 101: 1})
@example({'k"' * 51: 1})
@example({"\\" * 101: 1})
@example(containers("l" * (spec.MAX_PROPERTY_NESTING - 1)))
@example(containers("l" * spec.MAX_PROPERTY_NESTING))
@example(containers("dddd" + "l" * (spec.MAX_PROPERTY_NESTING - 5)))
@example(containers("dddd" + "l" * (spec.MAX_PROPERTY_NESTING - 4)))
def test_what_shape_fits_vouches_for_shape_problem_accepts(properties: dict[str, Any]) -> None:
    if spec.shape_fits(spec.properties_json(properties)):
        assert spec.shape_problem(properties)[0] is None


def test_shape_fits_vouches_for_ordinary_properties_and_not_for_each_limit() -> None:
    """Not vacuous: it says yes to what analytics send, and no at each limit."""
    ordinary = {"path": "/products/1", "screen": {"w": 1920, "h": 1080}, "k" * 100: "v" * 500,
                "items": [{"sku": "SKU-1", "qty": 2}], "price": 9.5, "logged_in": True}
    assert spec.shape_fits(spec.properties_json(ordinary))
    assert spec.shape_fits(spec.properties_json(deep(5)))
    assert spec.shape_fits(spec.properties_json({f"k{i}": i for i in range(100)}))
    assert spec.shape_fits(spec.properties_json(containers("l" * (spec.MAX_PROPERTY_NESTING - 1))))
    for refused in (deep(6), containers("l" * spec.MAX_PROPERTY_NESTING),
                    containers("dddd" + "l" * (spec.MAX_PROPERTY_NESTING - 4)),
                    {f"k{i}": i for i in range(101)}, {"k" * 101: 1},
                    {'"' * 101: 1}, {"x" * 60 + '"' + "x" * 60: 1}):
        assert spec.shape_problem(refused)[0] is not None
        assert not spec.shape_fits(spec.properties_json(refused)), refused


def _accepted(properties: dict[str, Any]) -> bool:
    return (spec.shape_problem(properties)[0] is None
            and spec.properties_problem(spec.properties_json(properties)) is None)


@given(st.lists(st.one_of(st.dictionaries(keys, values, max_size=8), nestings), max_size=6))
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example([{"a": [1] * 60}, {"": 1}])  # 101 bytes between quotes, across two encodings
@example([{"k": "x" * 200}, {"k" * 101: 1}])
@example([{"text": "a\x00b"}, {}])
@example([{"blob": "x" * spec.MAX_PROPERTIES_BYTES}])
@example([{"n": 1}, deep(6)])
def test_what_all_fit_vouches_for_each_event_passes(batch: list[dict[str, Any]]) -> None:
    if spec.all_fit([spec.properties_json(p) for p in batch]):
        assert all(_accepted(p) for p in batch)


def test_all_fit_vouches_for_ordinary_batches_and_not_for_each_limit() -> None:
    """Not vacuous: a batch of what analytics send passes at once; one event at any limit
    (or holding any escape) sends the batch to the tests of each."""
    ordinary = [{"path": f"/products/{i}", "screen": {"w": 1920, "h": 1080}, "k" * 100: "v" * 500,
                 "items": [{"sku": "SKU-1", "qty": 2}], "price": 9.5} for i in range(100)]
    ordinary.append({f"k{i}": i for i in range(100)})
    ordinary.append(deep(5))
    assert spec.all_fit([spec.properties_json(p) for p in ordinary])
    assert spec.all_fit([])
    for odd in (deep(6), containers("l" * spec.MAX_PROPERTY_NESTING), {"k" * 101: 1},
                {f"k{i}": i for i in range(101)}, {"blob": "x" * spec.MAX_PROPERTIES_BYTES},
                {"text": "a\x00b"}, {"path": "C:\\dir"}, {"quote": '"'}):
        assert not spec.all_fit([spec.properties_json(p) for p in [*ordinary, odd]]), odd
