"""The rules an ingested event must follow: one place, read by both validators.

`schemas/events.py` states them as the marshmallow contract (what OpenAPI documents);
`app/services/ingest.py` checks them by hand on the hot path. A differential hypothesis
test (tests/events/test_validator_parity.py) proves the two accept and reject the same.
"""

from __future__ import annotations

import re
from itertools import repeat
from operator import add

import orjson

NAME = re.compile(r"[A-Za-z0-9$][A-Za-z0-9_.:$/ -]{0,127}")
DISTINCT_ID_MAX = 200
MAX_PROPERTY_DEPTH = 5  # objects in objects (lists do not count); properties itself is depth 1
# Lists and objects together, properties itself level 1: lists may nest where objects may
# not, and without a bound a batch orjson takes (1,024 levels) is one it cannot encode
# again (254): the event would crash both validators instead of being refused.
MAX_PROPERTY_NESTING = 32
MAX_PROPERTY_KEYS = 100  # keys at all depths
MAX_PROPERTY_KEY_LENGTH = 100
EVENT_FIELDS = frozenset({"event_id", "name", "timestamp", "distinct_id", "properties"})
# Timestamps more than this far ahead are rejected (not clamped: a clock that is wrong by
# more than this is a bug the client must see); older than MAX_AGE too.
MAX_FUTURE_SECONDS = 300
MAX_AGE_DAYS = 90
MAX_PROPERTIES_BYTES = 32 * 1024
# A NUL escape, not a literal backslash followed by "u0000" (which JSON writes as `\\u0000`).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# A key of more bytes than MAX_PROPERTY_KEY_LENGTH: a quote, that many bytes or more up to
# the next quote, then `":`. Searched from every quote, it finds every such key unless an
# escaped quote splits it (`shape_fits` does not vouch for an encoding holding any escape);
# long values are followed by `,`, `]` or `}`, and do not match.
_LONG_KEY = re.compile(rb'"[^"]{%d,}":' % (MAX_PROPERTY_KEY_LENGTH + 1))


def properties_json(properties: dict[str, object]) -> bytes:
    """Compact UTF-8 JSON of the properties: what is stored and what the size limit counts."""
    return orjson.dumps(properties)


def properties_problem(encoded: bytes) -> str | None:
    """Why encoded properties cannot be stored, or None."""
    if len(encoded) > MAX_PROPERTIES_BYTES:
        return f"At most {MAX_PROPERTIES_BYTES} bytes of JSON."
    # PostgreSQL's jsonb cannot hold NUL characters (the search only runs when it may match).
    if b"\\u0000" in encoded and _NUL_ESCAPE.search(encoded):
        return "NUL characters are not allowed."
    return None


def shape_fits(encoded: bytes) -> bool:
    """Whether properties, as `properties_json` encoded them, surely pass `shape_problem`:
    a cheap test of the encoding, in C (False means "look closer", not "refused"). Each
    object opens with a `{`, so no more of them than the depth limit bounds the depth; each
    list with a `[`, so no more of both than the nesting limit bounds the nesting; each
    key is followed by a `:`, so no more of them than the key limit bounds the keys; a key
    of more characters than the limit encodes to at least as many bytes, which
    `_LONG_KEY` finds when no escape (an escaped quote) splits it. Braces, brackets and
    colons in strings only make the test more cautious."""
    objects = encoded.count(b"{")
    return (objects <= MAX_PROPERTY_DEPTH
            and objects + encoded.count(b"[") <= MAX_PROPERTY_NESTING
            and encoded.count(b":") <= MAX_PROPERTY_KEYS
            and (len(encoded) <= MAX_PROPERTY_KEY_LENGTH
                 or (b"\\" not in encoded and not _LONG_KEY.search(encoded))))


def all_fit(encodings: list[bytes]) -> bool:
    """Whether every one of these encodings (a batch's properties, `properties_json`'s)
    surely passes `shape_fits` and `properties_problem`: their tests, each run once over
    all of them, in C (False means "test each", not "refused"). The encodings hold no
    backslash (so no escape at all: no NUL, no escaped quote), and the long-key search
    runs over them joined: a match in one is a match in the whole, and none straddles two
    (it ends at a quote followed by `:`, and the first quote of an encoding opens a key)."""
    joined = b"".join(encodings)
    objects = list(map(bytes.count, encodings, repeat(b"{")))
    return (max(objects, default=0) <= MAX_PROPERTY_DEPTH
            and max(map(add, objects, map(bytes.count, encodings, repeat(b"["))),
                    default=0) <= MAX_PROPERTY_NESTING
            and max(map(bytes.count, encodings, repeat(b":")), default=0) <= MAX_PROPERTY_KEYS
            and max(map(len, encodings), default=0) <= MAX_PROPERTIES_BYTES
            and b"\\" not in joined
            and not _LONG_KEY.search(joined))


def shape_problem(value: object, depth: int = 1, nesting: int = 1) -> tuple[str | None, int]:
    """(why the nesting is refused or None, number of keys at all depths).

    `depth` counts objects, `nesting` lists and objects. Only containers are descended
    into: most values are scalars, and this runs for every event ingested. The nesting
    limit also bounds the recursion, however deep the value."""
    if nesting > MAX_PROPERTY_NESTING:
        return f"Lists and objects nested deeper than {MAX_PROPERTY_NESTING} levels.", 0
    if type(value) is list:
        total = 0
        for element in value:
            if type(element) is dict or type(element) is list:
                problem, count = shape_problem(element, depth, nesting + 1)
                if problem:
                    return problem, 0
                total += count
        return None, total
    if type(value) is not dict:
        return None, 0
    if depth > MAX_PROPERTY_DEPTH:
        return f"Nested deeper than {MAX_PROPERTY_DEPTH} levels.", 0
    total = len(value)
    for key, item in value.items():
        if len(key) > MAX_PROPERTY_KEY_LENGTH:
            return f"Keys are at most {MAX_PROPERTY_KEY_LENGTH} characters.", 0
        if type(item) is dict or type(item) is list:
            problem, count = shape_problem(item, depth + 1, nesting + 1)
            if problem:
                return problem, 0
            total += count
    if depth == 1 and total > MAX_PROPERTY_KEYS:
        return f"At most {MAX_PROPERTY_KEYS} keys in all.", 0
    return None, total
