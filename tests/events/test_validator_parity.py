"""Differential test: the hot-path validators accept and reject exactly what the documented
contract (`schemas.events.EventSchema`) does: the hand-written one
(`app.services.ingest.validate`), and the msgspec path `prepare` takes first (types checked
in C by `_TypedEvent`, the other rules by `_row`; an event either refuses goes back to the
hand-written one for its messages).

For every generated event both validators must give the same verdict, name the same
fields (with the same messages), and, when the event is valid, the same normalized values.
Events are drawn around every rule of app/events_spec.py: valid ones, and near-misses on
each field (wrong types, missing or null, unknown keys, odd UUID spellings, names at the
pattern's edges, timestamps naive/aware/too far ahead/too old/garbage, distinct_id length
and NUL, properties at the depth, nesting, key-count, key-length and byte limits; nesting
around its limit and far past it, past what orjson can encode (254 levels) too).

The view reads a body's bytes with msgspec, typed (`ingest.Body`), and judges an event
from orjson's reading of them only when a rule refuses it: the last tests hold that path
to the one from orjson's reading (`prepare` of the decoded events), body by body,
including bodies the two decoders read differently.

Both validators read the clock: the hand-written one takes `now`, the schema calls
`datetime.now(UTC)`; the schema's clock is frozen at the same instant so that the time
limits can be probed to the microsecond.
"""

from __future__ import annotations

import gc
import string
import uuid
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

import schemas.events
from app import events_spec as spec
from app.errors import BadRequest
from app.services import ingest
from schemas.events import EventSchema

NOW = datetime(2031, 6, 15, 12, 0, 0, 250_000, tzinfo=UTC)
FUTURE_EDGE = NOW + timedelta(seconds=spec.MAX_FUTURE_SECONDS)
PAST_EDGE = NOW - timedelta(days=spec.MAX_AGE_DAYS)
TICK = timedelta(microseconds=1)
SCHEMA = EventSchema()


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return NOW.astimezone(tz) if tz is not None else NOW.replace(tzinfo=None)


@contextmanager
def frozen_schema_clock():
    with mock.patch.object(schemas.events, "datetime", _FrozenDatetime):
        yield


def schema_verdict(event: Any) -> tuple[dict | None, dict]:
    with frozen_schema_clock():
        try:
            return SCHEMA.load(event), {}
        except ValidationError as exc:
            return None, exc.messages  # type: ignore[return-value]


def check_parity(event: Any) -> None:
    row, hand_errors = ingest.validate(event, NOW)
    loaded, schema_errors = schema_verdict(event)
    assert (row is None) == (loaded is None), (hand_errors, schema_errors)
    assert set(hand_errors) == set(schema_errors)
    assert hand_errors == schema_errors  # the same messages too
    if row is None:
        assert hand_errors, "a rejected event names its fields"
        return
    assert_same_row(row, loaded)


def check_fast_path_parity(event: Any) -> None:
    """The msgspec path alone: when it types an event, `_row` accepts exactly what the
    contract accepts, with the same values; and `prepare`, which falls back to the hand
    path, gives the contract's verdict and messages whichever path decided."""
    loaded, schema_errors = schema_verdict(event)
    try:
        typed = msgspec.convert(event, ingest._TypedEvent)
    except msgspec.ValidationError:
        typed = None
    if typed is not None:
        row = ingest._row(typed, NOW)
        assert (row is None) == (loaded is None), (event, schema_errors)
        if row is not None:
            assert_same_row(row, loaded)
    prepared = ingest.prepare([event], NOW)
    if loaded is None:
        assert prepared.rows == [] and prepared.rejected == [{"index": 0, "errors": schema_errors}]
    else:
        assert prepared.rejected == [] and len(prepared.rows) == 1
        assert_same_row(prepared.rows[0], loaded)


def assert_same_row(row: tuple[Any, ...], loaded: dict[str, Any]) -> None:
    event_id, name, ts, distinct_id, properties = row
    if loaded["event_id"] is None:
        assert isinstance(event_id, uuid.UUID) and event_id.version == 4
    else:
        assert event_id == loaded["event_id"]
    assert name == loaded["name"]
    assert ts == loaded["timestamp"] and ts.utcoffset() == loaded["timestamp"].utcoffset()
    assert distinct_id == loaded["distinct_id"]
    assert isinstance(properties, str)
    assert orjson.loads(properties) == loaded["properties"]
    assert len(properties.encode()) <= spec.MAX_PROPERTIES_BYTES


# -- strategies ---------------------------------------------------------------------------------

MISSING = object()
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**63 - 1), max_size=2),
)
TEXT = st.text(max_size=30)  # no surrogates: JSON parsed by orjson never holds them


def _uuid_spellings(u: uuid.UUID) -> st.SearchStrategy[str]:
    h = u.hex
    return st.sampled_from([
        str(u), str(u).upper(), h, h.upper(), "{" + str(u) + "}", "urn:uuid:" + str(u),
        "-".join(h[i:i + 4] for i in range(0, 32, 4)),  # hyphens anywhere are ignored
        h[:8] + "_" + h[9:],  # int(..., 16) takes an underscore
        # near misses
        str(u)[:-1], str(u) + "0", " " + str(u), str(u) + "\n", str(u).replace("a", "g"),
        "{" + str(u), "urn:" + h + "0", h[:31], "", "\x00" * 32, "\u0660" * 32,
    ])


event_ids = st.one_of(
    st.uuids().flatmap(_uuid_spellings), st.uuids(version=4).map(str), TEXT, JUNK
)

NAME_START = string.ascii_letters + string.digits + "$"
NAME_REST = NAME_START + "_.:/ -"
valid_names = st.from_regex(spec.NAME, fullmatch=True)


@st.composite
def edge_names(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from(NAME_START))
    length = draw(st.sampled_from([1, 2, 127, 128, 129, 200]))
    rest = draw(st.text(st.sampled_from(NAME_REST), min_size=length - 1, max_size=length - 1))
    name = first + rest
    damage = draw(st.sampled_from([
        None, "lead", "trail-nl", "nul", "unicode", "tab", "empty", "space-first",
    ]))
    return {
        None: name,
        "lead": draw(st.sampled_from("_-. :/")) + name[1:],
        "trail-nl": name + "\n",
        "nul": name + "\x00",
        "unicode": name[:-1] + draw(st.sampled_from("\u00e9\u00df\u0663\u200b\uff21")),
        "tab": name + "\t",
        "empty": "",
        "space-first": " " + name,
    }[damage]


names = st.one_of(valid_names, edge_names(), TEXT, JUNK)

OFFSETS = [
    UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-14)),
    timezone(timedelta(hours=14)), timezone(timedelta(seconds=1)),
]


def _moments() -> st.SearchStrategy[datetime]:
    edges = st.sampled_from([
        FUTURE_EDGE, FUTURE_EDGE + TICK, FUTURE_EDGE - TICK, PAST_EDGE, PAST_EDGE - TICK,
        PAST_EDGE + TICK, NOW, NOW + timedelta(days=400), NOW - timedelta(days=4000),
    ])
    spread = st.timedeltas(min_value=timedelta(days=-100), max_value=timedelta(minutes=10))
    return st.one_of(edges, spread.map(lambda d: NOW + d))


@st.composite
def timestamp_strings(draw: st.DrawFn) -> str:
    moment = draw(_moments()).astimezone(draw(st.sampled_from(OFFSETS)))
    style = draw(st.sampled_from([
        "iso", "z", "space", "basic", "minutes", "comma", "naive", "date", "hours-only",
        "garbage-tail", "week",
    ]))
    if style == "iso":
        return moment.isoformat()
    if style == "z":
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    if style == "space":
        return moment.isoformat(sep=" ")
    if style == "basic":
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    if style == "minutes":
        return moment.isoformat(timespec="minutes")
    if style == "comma":
        return moment.isoformat(timespec="milliseconds").replace(".", ",")
    if style == "naive":
        return moment.replace(tzinfo=None).isoformat()
    if style == "date":
        return moment.date().isoformat()
    if style == "hours-only":
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%HZ")
    if style == "garbage-tail":
        return moment.isoformat() + draw(st.sampled_from(["x", " ", "\x00", "+01:00", "Z"]))
    year, week, day = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}-{day}T{moment.astimezone(UTC):%H:%M}Z"


timestamps = st.one_of(
    timestamp_strings(),
    st.sampled_from([
        "", "now", "yesterday", "2031-13-01T00:00:00Z", "2031-06-15T24:00:00Z",
        "2031-06-15T23:59:60Z", "2031-06-15T12:00:00+24:00", "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59.999999-14:00", "\uff12\uff10\uff13\uff11-06-15T12:00:00Z",
    ]),
    TEXT,
    JUNK,
)

distinct_ids = st.one_of(
    st.text(min_size=1, max_size=200),
    st.sampled_from([0, 1, 2, 199, 200, 201, 500]).flatmap(
        lambda n: st.text(min_size=n, max_size=n)
    ),
    st.text(min_size=1, max_size=20).map(lambda s: s + "\x00"),
    st.just("\x00"),
    JUNK,
)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
property_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from([99, 100, 101]).map(lambda n: "k" * n),
    st.just("a\x00b"),
    st.just("\\u0000"),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(property_keys, children, max_size=5),
    max_leaves=25,
)


def nested(depth: int, leaf: Any = 1, through_lists: bool = False) -> dict:
    """A dict of `depth` levels (properties itself is level 1)."""
    value: Any = leaf
    for level in range(depth):
        value = {f"d{level}": [value] if through_lists else value}
    return value


def containers(kinds: str, leaf: Any = 1) -> dict:
    """Properties nested `len(kinds) + 1` levels: properties itself, then one container per
    letter, outermost first ("l" a list, "d" an object). Built in a loop: 1,000 levels
    deep is no problem."""
    value: Any = leaf
    for kind in reversed(kinds):
        value = [value] if kind == "l" else {"n": value}
    return {"n": value}


@st.composite
def deep_properties(draw: st.DrawFn) -> dict:
    """Lists and objects nested around the nesting limit and far past it, with up to one
    object more than the depth limit among them, and sometimes ordinary keys beside."""
    levels = draw(st.sampled_from([
        spec.MAX_PROPERTY_NESTING - 2, spec.MAX_PROPERTY_NESTING - 1, spec.MAX_PROPERTY_NESTING,
        spec.MAX_PROPERTY_NESTING + 1, spec.MAX_PROPERTY_NESTING + 2, 100, 254, 255, 256, 1000,
    ]))
    objects = draw(st.integers(0, min(spec.MAX_PROPERTY_DEPTH, levels - 1)))
    where = draw(st.sets(st.integers(0, levels - 2), min_size=objects, max_size=objects))
    props = containers("".join("d" if i in where else "l" for i in range(levels - 1)),
                       draw(json_scalars))
    if draw(st.booleans()):
        props.update(draw(st.dictionaries(property_keys, json_values, max_size=3)))
    return props


def with_keys(total: int, long_key: int = 0) -> dict:
    """`total` keys at all depths: a third flat, a third one level down (under "inner"),
    the rest in a list of one-key dicts (under "listed"); optionally one key that long."""
    if total < 6:
        props: dict = {f"k{i}": i for i in range(total)}
    else:
        third = total // 3
        props = {f"k{i}": i for i in range(third)}
        props["inner"] = {f"i{i}": i for i in range(third - 1)}
        props["listed"] = [{f"l{i}": i} for i in range(total - 2 * third - 1)]
    if long_key and props:
        props.pop(next(iter(props)))
        props["x" * long_key] = True
    assert spec.shape_problem(props)[1] == total or spec.shape_problem(props)[0]
    return props


def sized(total_bytes: int, char: str = "x") -> dict:
    """Properties whose compact JSON is `total_bytes` long (± one multi-byte char)."""
    overhead = len(orjson.dumps({"blob": ""}))
    return {"blob": char * ((total_bytes - overhead) // len(char.encode()))}


special_properties = st.one_of(
    deep_properties(),
    st.sampled_from([4, 5, 6, 7]).flatmap(
        lambda d: st.builds(nested, st.just(d), json_scalars, st.booleans())
    ),
    st.sampled_from([0, 1, 99, 100, 101, 150]).flatmap(
        lambda n: st.builds(with_keys, st.just(n), st.sampled_from([0, 100, 101]))
    ),
    st.sampled_from([
        spec.MAX_PROPERTIES_BYTES - 1, spec.MAX_PROPERTIES_BYTES,
        spec.MAX_PROPERTIES_BYTES + 1, spec.MAX_PROPERTIES_BYTES + 2,
    ]).flatmap(lambda n: st.builds(sized, st.just(n), st.sampled_from(["x", "é", "€", "🙂"]))),
    st.sampled_from([
        {"text": "a\x00b"}, {"a\x00": 1}, {"list": ["ok", ["\x00"]]},
        {"literal": "\\u0000"}, {"literal": "C:\\u0000dir"}, {"": ""},
        {"deep": [[[[[[{"a": 1}]]]]]]}, [{"a": 1}], "props", 7, [],
    ]),
)
properties = st.one_of(
    st.dictionaries(property_keys, json_values, max_size=8), special_properties, JUNK,
)
unknown_keys = st.one_of(
    st.sampled_from([
        "eventId", "Name", "timestamp ", "site_id", "org_id", "ts", "_schema", "properties\x00",
        "", "EVENT_ID",
    ]),
    st.text(min_size=1, max_size=10),
).filter(lambda k: k not in spec.EVENT_FIELDS)

FIELDS = {
    "event_id": event_ids, "name": names, "timestamp": timestamps,
    "distinct_id": distinct_ids, "properties": properties,
}
VALID = {
    "event_id": st.one_of(st.just(MISSING), st.none(), st.uuids().map(str)),
    "name": valid_names,
    "timestamp": _moments().filter(lambda m: PAST_EDGE <= m <= FUTURE_EDGE).map(
        datetime.isoformat
    ),
    "distinct_id": st.text(min_size=1, max_size=200).filter(lambda s: "\x00" not in s),
    "properties": st.one_of(st.just(MISSING), st.dictionaries(st.text(max_size=10), json_scalars,
                                                             max_size=6)),
}


@st.composite
def events(draw: st.DrawFn) -> Any:
    """Mostly valid events with a few fields (sometimes none) replaced by a near-miss."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.one_of(JUNK, TEXT, st.lists(st.dictionaries(TEXT, TEXT), max_size=2)))
    damaged = draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=3))
    event: dict[str, Any] = {}
    for name in FIELDS:
        action = draw(st.sampled_from(["value", "missing", "null"])) if name in damaged \
            else "valid"
        if action == "valid":
            value = draw(VALID[name])
        elif action == "value":
            value = draw(FIELDS[name])
        else:
            value = MISSING if action == "missing" else None
        if value is not MISSING:
            event[name] = value
    for key in draw(st.lists(unknown_keys, max_size=2)) if draw(st.integers(0, 9)) == 0 else ():
        event[key] = draw(JUNK)
    return event


# -- tests --------------------------------------------------------------------------------------


def base_event(**fields: Any) -> dict[str, Any]:
    event = {
        "event_id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
        "name": "page.view",
        "timestamp": NOW.isoformat(),
        "distinct_id": "user-1",
        "properties": {"path": "/"},
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not MISSING}


EDGE_EVENTS = {
    "valid": base_event(),
    "minimal": base_event(event_id=MISSING, properties=MISSING),
    "null-event-id": base_event(event_id=None),
    "empty-properties": base_event(properties={}),
    "future-edge": base_event(timestamp=FUTURE_EDGE.isoformat()),
    "future-edge+1us": base_event(timestamp=(FUTURE_EDGE + TICK).isoformat()),
    "past-edge": base_event(timestamp=PAST_EDGE.isoformat()),
    "past-edge-1us": base_event(timestamp=(PAST_EDGE - TICK).isoformat()),
    "naive": base_event(timestamp="2031-06-15T12:00:00"),
    "date-only": base_event(timestamp="2031-06-15"),
    "z-suffix": base_event(timestamp="2031-06-15T11:00:00Z"),
    "epoch-number": base_event(timestamp=1_900_000_000),
    "name-128": base_event(name="a" * 128),
    "name-129": base_event(name="a" * 129),
    "name-newline": base_event(name="page\n"),
    "name-underscore-first": base_event(name="_page"),
    "name-dollar": base_event(name="$pageview"),
    "distinct-200": base_event(distinct_id="d" * 200),
    "distinct-201": base_event(distinct_id="d" * 201),
    "distinct-empty": base_event(distinct_id=""),
    "distinct-nul": base_event(distinct_id="a\x00"),
    "depth-5": base_event(properties=nested(5)),
    "depth-5-through-lists": base_event(properties=nested(5, through_lists=True)),
    "depth-6": base_event(properties=nested(6)),
    "depth-6-through-lists": base_event(properties=nested(6, through_lists=True)),
    "nesting-32-lists": base_event(properties=containers("l" * 31)),
    "nesting-32-mixed": base_event(properties=containers("dldldl" + "l" * 25)),
    "nesting-33-lists": base_event(properties=containers("l" * 32)),
    "nesting-33-mixed": base_event(properties=containers("dldldl" + "l" * 26)),
    "nesting-255": base_event(properties=containers("l" * 254)),  # orjson cannot encode it
    "nesting-1000": base_event(properties=containers("l" * 999, {"a": 1})),
    "nesting-1000-objects": base_event(properties=containers("d" * 999)),
    "keys-100": base_event(properties=with_keys(100)),
    "keys-101": base_event(properties=with_keys(101)),
    "key-100-chars": base_event(properties={"k" * 100: 1}),
    "key-101-chars": base_event(properties={"k" * 101: 1}),
    "bytes-32k": base_event(properties=sized(spec.MAX_PROPERTIES_BYTES)),
    "bytes-32k+1": base_event(properties=sized(spec.MAX_PROPERTIES_BYTES + 1)),
    "nul-in-value": base_event(properties={"a": "x\x00y"}),
    "literal-backslash-u0000": base_event(properties={"path": "C:\\u0000"}),
    "list-of-dicts": base_event(properties={"items": [{"sku": "a"}, {"sku": "b"}]}),
    "properties-list": base_event(properties=[{"a": 1}]),
    "unknown-key": base_event(site_id="0" * 32),
    "everything-wrong": {"event_id": 5, "name": None, "timestamp": "x", "distinct_id": "",
                         "properties": "no", "extra": 1},
    "empty": {},
    "not-a-dict": ["page.view"],
}


@pytest.mark.parametrize("event", EDGE_EVENTS.values(), ids=EDGE_EVENTS.keys())
def test_edge_cases_get_the_same_verdict(event):
    check_parity(event)


# The edge cases a valid event may be: every other one in EDGE_EVENTS is refused.
ACCEPTED_EDGES = {
    "valid", "minimal", "null-event-id", "empty-properties", "future-edge", "past-edge",
    "z-suffix", "name-128", "name-dollar", "distinct-200", "depth-5", "depth-5-through-lists",
    "nesting-32-lists", "nesting-32-mixed",
    "keys-100", "key-100-chars", "bytes-32k", "list-of-dicts", "literal-backslash-u0000",
}


def test_edge_cases_cover_both_verdicts():
    """The table is not vacuous: it holds accepted and rejected events, as intended."""
    verdicts = {name: ingest.validate(e, NOW)[0] is not None for name, e in EDGE_EVENTS.items()}
    accepted = {n for n, ok in verdicts.items() if ok}
    assert accepted == ACCEPTED_EDGES


@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(events())
@example(base_event(properties=sized(spec.MAX_PROPERTIES_BYTES, "🙂")))
@example(base_event(event_id="{6F1C2D3E-4B5A-4C6D-8E7F-9A0B1C2D3E4F}"))
@example(base_event(properties=containers("l" * 999)))
def test_hand_written_validator_matches_the_schema(event):
    check_parity(event)


def test_nesting_past_the_limit_is_refused_for_it_whatever_orjson_could_encode():
    """Refused with the limit's own message: not the depth limit's (objects), nor an
    encoding error (orjson writes 254 levels at most; a crash was a 500 for the batch)."""
    message = f"Lists and objects nested deeper than {spec.MAX_PROPERTY_NESTING} levels."
    for label in ("nesting-33-lists", "nesting-33-mixed", "nesting-255", "nesting-1000"):
        event = EDGE_EVENTS[label]
        assert ingest.validate(event, NOW) == (None, {"properties": [message]}), label
        assert ingest.prepare([event], NOW).rejected == [
            {"index": 0, "errors": {"properties": [message]}}], label


@pytest.mark.parametrize("event", EDGE_EVENTS.values(), ids=EDGE_EVENTS.keys())
def test_edge_cases_get_the_same_verdict_on_the_msgspec_path(event):
    check_fast_path_parity(event)


def test_the_msgspec_path_decides_the_well_typed_edge_cases():
    """Not vacuous: msgspec types most of the table, and `_row` alone accepts exactly the
    accepted events it typed (an event it cannot type is the hand path's, e.g. a UUID in
    braces); its refusals include every rule that types cannot state."""
    typed = {}
    for label, event in EDGE_EVENTS.items():
        with suppress(msgspec.ValidationError):
            typed[label] = msgspec.convert(event, ingest._TypedEvent)
    assert {"valid", "minimal", "null-event-id", "future-edge+1us", "naive", "name-129",
            "distinct-201", "distinct-nul", "depth-6", "keys-101", "key-101-chars",
            "bytes-32k+1", "nul-in-value", "nesting-32-lists", "nesting-33-lists",
            "nesting-255", "nesting-1000"} <= set(typed)
    assert not {"unknown-key", "everything-wrong", "empty", "not-a-dict", "properties-list",
                "epoch-number"} & set(typed)
    accepted = {label for label, t in typed.items() if ingest._row(t, NOW) is not None}
    assert accepted == ACCEPTED_EDGES


@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(events())
@example(base_event(event_id="6F1C2D3E4B5A4C6D8E7F9A0B1C2D3E4F"))
@example(base_event(event_id="{6F1C2D3E-4B5A-4C6D-8E7F-9A0B1C2D3E4F}"))
@example(base_event(name="é" * 10, distinct_id="\U0001f642" * 200,
                    properties={"\u2028": "x" * 30000}))
@example(base_event(properties={"a": {"b": {"c": {"d": {"e": 1}}}}, "z": [[[[[[{"k": 1}]]]]]]}))
@example(base_event(properties=containers("l" * 999)))
def test_the_msgspec_path_matches_the_schema(event):
    check_fast_path_parity(event)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(events(), min_size=1, max_size=20))
def test_a_batch_is_split_by_the_same_verdicts(batch):
    """`prepare` keeps each valid event (in order) and reports each other one by index."""
    prepared = ingest.prepare(batch, NOW)
    expected_rejected = []
    expected_kept = []
    for index, event in enumerate(batch):
        loaded, errors = schema_verdict(event)
        if loaded is None:
            expected_rejected.append({"index": index, "errors": errors})
        else:
            expected_kept.append(loaded)
    assert prepared.rejected == expected_rejected
    assert [(r[1], r[2], r[3]) for r in prepared.rows] == [
        (e["name"], e["timestamp"], e["distinct_id"]) for e in expected_kept
    ]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


backslashy = st.text(st.sampled_from(["\\", "u", "0", "\x00", "a", '"']), max_size=12)


@settings(max_examples=400, deadline=None, database=None)
@given(st.dictionaries(st.one_of(property_keys, backslashy),
                       st.one_of(json_values, backslashy, st.lists(backslashy, max_size=3)),
                       max_size=4))
def test_the_nul_rule_refuses_nul_characters_and_nothing_else(props):
    """Both validators share this rule; it must not refuse text that merely spells `\\u0000`
    (found by the edge table: a Windows path like `C:\\u0000` was refused)."""
    problem = spec.properties_problem(spec.properties_json(props))
    refused_for_nul = problem == "NUL characters are not allowed."
    assert refused_for_nul == _has_nul(props)


# -- the body read from bytes (`ingest.Body`) -----------------------------------------------


def from_bytes(raw: bytes) -> ingest.Batch:
    """What the view does with a body: msgspec types it when it can (`ingest.Body`)."""
    body = ingest.decode_body(raw, "", 1 << 24)
    return ingest.prepare(ingest.events_of(body, 10_000), NOW, body)


def from_orjson(raw: bytes) -> ingest.Batch:
    """The reference: the events as orjson reads them, through `prepare`."""
    return ingest.prepare(orjson.loads(raw)["events"], NOW)


def assert_same_batch(raw: bytes) -> ingest.Batch:
    """Same rejections (and messages), same rows in order; generated event ids aside."""
    got, expected = from_bytes(raw), from_orjson(raw)
    assert got.rejected == expected.rejected
    assert len(got.rows) == len(expected.rows)
    sent_ids = [e.get("event_id") if isinstance(e, dict) else None
                for e in orjson.loads(raw)["events"]]
    rejected = {r["index"] for r in got.rejected}
    kept_ids = [i for index, i in enumerate(sent_ids) if index not in rejected]
    for row, reference, sent_id in zip(got.rows, expected.rows, kept_ids, strict=True):
        assert row[1:] == reference[1:]
        assert row[2].utcoffset() == reference[2].utcoffset()
        if sent_id is None:  # generated on both paths
            assert isinstance(row[0], uuid.UUID) and row[0].version == 4
        else:
            assert row[0] == reference[0]
    return got


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(st.lists(events(), min_size=1, max_size=20))
def test_a_body_read_from_bytes_is_split_as_orjson_read_it(batch):
    try:
        raw = orjson.dumps({"events": batch})
    except orjson.JSONEncodeError:  # nested past what orjson writes: the table's bodies below
        return
    assert_same_batch(raw)


def _typable(event: Any) -> bool:
    try:
        msgspec.convert(event, ingest._TypedEvent)
    except msgspec.ValidationError:
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(st.lists(events().filter(_typable), min_size=1, max_size=20))
def test_a_body_msgspec_types_is_split_as_orjson_read_it(batch):
    """Bodies of the right types only (most generated bodies above hold an event of another
    type, which sends the whole body down the hand path): the rules decide here."""
    try:
        raw = orjson.dumps({"events": batch})
    except orjson.JSONEncodeError:
        return
    assert ingest.decode_body(raw, "", 1 << 24).typed is not None
    assert_same_batch(raw)


def body_with(properties: bytes, **fields: Any) -> bytes:
    """A one-event body whose properties are the JSON text `properties`, as sent."""
    event = orjson.dumps(base_event(properties=MISSING, **fields))
    return b'{"events": [' + event[:-1] + b', "properties": ' + properties + b"}]}"


BYTE_BODIES = {
    # msgspec reads an integer past 64 bits exactly, orjson as a float: orjson's is stored.
    "int-2**64": body_with(b'{"n": 18446744073709551616}'),
    "int-below-i64": body_with(b'{"n": -9223372036854775809}'),
    "int-u64-max": body_with(b'{"n": 18446744073709551615}'),
    "int-huge-and-too-new": body_with(b'{"n": 1' + b"0" * 40 + b"}",
                                      timestamp=(FUTURE_EDGE + TICK).isoformat()),
    "floats": body_with(b'{"a": 1E+2, "b": -0.0, "c": 5e-324, "d": 1e-400, "e": -0}'),
    "duplicate-keys": body_with(b'{"a": 1, "b": 2, "a": 3}'),
    "duplicate-field": b'{"events": [' + orjson.dumps(base_event(name="first"))[:-1]
    + b', "name": "second"}]}',
    "duplicate-events": b'{"events": [{"name": 5}], "events": ['
    + orjson.dumps(base_event()) + b"]}",
    "escapes": body_with(b'{"\\u00e9": "\\u00e9\\/\\ud83d\\ude00\\u0041"}'),
    "whitespace": b' \n{ "events" :\t[ ' + orjson.dumps(base_event()) + b" ] } \r\n",
    "key-and-events": b'{"key": null, "events": [' + orjson.dumps(base_event()) + b"]}",
    # Deeper than orjson writes (254): refused by the nesting rule, read or not by msgspec.
    "nesting-300": body_with(b"[" * 300 + b"]" * 300),
    "nesting-900": body_with(b"[" * 900 + b"]" * 900),
    "nesting-1000-objects": body_with(b'{"n": ' * 999 + b"1" + b"}" * 999),
}


@pytest.mark.parametrize("raw", BYTE_BODIES.values(), ids=BYTE_BODIES.keys())
def test_bodies_the_decoders_read_differently_get_orjsons_verdict(raw):
    assert_same_batch(raw)


def test_a_huge_integer_is_stored_as_orjson_reads_it():
    """Not vacuous: msgspec typed the body, and the event was judged on orjson's float."""
    raw = BYTE_BODIES["int-2**64"]
    assert ingest.decode_body(raw, "", 1 << 20).typed is not None
    (row,) = assert_same_batch(raw).rows
    assert row[4] == '{"n":1.8446744073709552e+19}'


@pytest.mark.parametrize("raw", [
    b'{"events": [{"name": "a", "properties": {"x": 1e400}}]}',
    b'{"events": [{"name": "\\ud800"}]}',
    b'{"events": [' + b"[" * 1100 + b"]" * 1100 + b"]}",
    b'\xef\xbb\xbf{"events": []}',
    b'{"events": []} x',
    b"",
], ids=["infinity", "lone-surrogate", "nesting-1100", "bom", "trailing", "empty"])
def test_what_orjson_cannot_read_is_not_json_whatever_msgspec_says(raw):
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    with pytest.raises(BadRequest, match="not valid JSON"):
        ingest.decode_body(raw, "", 1 << 20)


def test_a_valid_body_is_decoded_once():
    """The common case: msgspec's reading is the only one (orjson's is read on demand)."""
    raw = orjson.dumps({"events": [base_event(), base_event(event_id=MISSING)], "key": "ik_x"})
    body = ingest.decode_body(raw, "", 1 << 20)
    with mock.patch.object(ingest.orjson, "loads", side_effect=AssertionError("read twice")):
        batch = ingest.prepare(ingest.events_of(body, 10), NOW, body)
        assert body.key == "ik_x"
    assert len(batch.rows) == 2 and batch.rejected == []
    assert all(isinstance(e, ingest._TypedEvent) for e in ingest.events_of(body, 10))


def test_typed_events_hold_no_cycle_and_are_left_to_reference_counting():
    """`gc=False`: the collector does not track them (see `_TypedEvent`); what they hold is
    decoded JSON, which cannot refer back to them."""
    body = ingest.decode_body(orjson.dumps({"events": [base_event()]}), "", 1 << 20)
    assert body.typed is not None
    assert not gc.is_tracked(body.typed)
    assert not gc.is_tracked(body.typed.events[0])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(st.lists(events().filter(_typable), max_size=12))
@example([base_event()] * 3)
@example([base_event(), base_event(event_id=MISSING, properties=MISSING)])
def test_a_batch_at_once_keeps_what_each_event_alone_keeps(batch):
    """`_all_rows` (every rule over the whole batch) says yes only when `_typed_row` keeps
    every event, and then gives the same rows in order."""
    typed = [msgspec.convert(e, ingest._TypedEvent) for e in batch]
    oldest, latest = NOW - ingest._MAX_AGE, NOW + ingest._MAX_FUTURE
    at_once = ingest._all_rows(typed, oldest, latest)
    each = [ingest._typed_row(t, oldest, latest) for t in typed]
    if at_once is None:
        return
    assert None not in each
    for row, alone, event in zip(at_once, each, batch, strict=True):
        assert row[1:] == alone[1:]
        assert row[2].utcoffset() == alone[2].utcoffset()
        assert row[0] == alone[0] or event.get("event_id") is None


def test_a_batch_at_once_decides_valid_batches_and_no_other():
    """Not vacuous: a valid batch is kept at once; one event refused by any rule sends the
    batch to the events one by one, which keep the others."""
    oldest, latest = NOW - ingest._MAX_AGE, NOW + ingest._MAX_FUTURE
    valid = [base_event(), base_event(event_id=MISSING, properties=MISSING)]
    typed = [msgspec.convert(e, ingest._TypedEvent) for e in valid]
    assert ingest._all_rows(typed, oldest, latest) is not None
    assert ingest._all_rows([], oldest, latest) == []
    for label in ("future-edge+1us", "past-edge-1us", "naive", "name-129", "distinct-201",
                  "distinct-empty", "distinct-nul", "depth-6", "keys-101", "key-101-chars",
                  "bytes-32k+1", "nul-in-value", "nesting-33-lists", "nesting-255"):
        odd = msgspec.convert(EDGE_EVENTS[label], ingest._TypedEvent)
        assert ingest._all_rows([*typed, odd], oldest, latest) is None, label
        assert len(ingest.prepare([*valid, EDGE_EVENTS[label]], NOW).rows) == 2, label
