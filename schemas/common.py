"""Building blocks shared by every resource family's schemas."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, missing, post_load, validate
from marshmallow.utils import ensure_text_type

from app.pagination import SortKey

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc: C0, DEL, C1


# Cursors are base64url text and a signature (app/pagination.py): ASCII that needs no
# percent-encoding, so the longest one the API hands out (a sort value of 255 four-byte
# characters) keeps a list's URL within app/uri.py's limit.
CURSOR_MAX_LENGTH = 2048
CURSOR_PATTERN = r"^[A-Za-z0-9_.-]*$"


def format_char(text: str) -> str | None:
    """The first Unicode format character (category Cf) in `text`, if any.

    They are invisible and change what a reader sees: U+202E RIGHT-TO-LEFT OVERRIDE before
    "fdp.exe" displays "exe.pdf", U+200B ZERO WIDTH SPACE makes two names that look the
    same. Refused in names, titles and file names (`Text`, `no_format_chars`); the
    zero-width joiner of emoji sequences is one of them."""
    if text.isascii():
        return None
    return next((char for char in text if unicodedata.category(char) == "Cf"), None)


def no_format_chars(value: str) -> str:
    """Validator: refuse a value holding a format character, and name it."""
    char = format_char(value)
    if char is not None:
        name = unicodedata.name(char, "")
        raise ValidationError(
            f"Invisible format characters are not allowed (U+{ord(char):04X}"
            f"{' ' + name if name else ''})."
        )
    return value


class FullMatch(validate.Regexp):
    """A regular expression the whole value must match.

    `Regexp` uses `re.match`, where a final `$` also matches before a trailing newline, so
    "example.com" followed by a newline passed. The pattern keeps its `$` (it is published in
    the OpenAPI document, where Python's `\\Z` does not exist)."""

    regex: re.Pattern[str]  # made from a str pattern: it matches text

    def __call__(self, value: str) -> str:  # type: ignore[override]  # text only; Regexp's also admits bytes
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# For free-form strings that reach the database (multi-line text, search terms, filters):
# PostgreSQL's text cannot hold U+0000, and the statement would fail with a 500. Published
# in the OpenAPI document as the field's `pattern`.
NO_NUL = FullMatch(r"^[^\x00]*$", error="NUL characters are not allowed.")
# For multi-line human text (descriptions): no NUL, and none of the bidirectional controls
# that reorder what is displayed (embeddings, overrides, isolates: the "Trojan Source"
# characters). Other format characters, such as the joiners of emoji, stay allowed.
PROSE = FullMatch(
    r"^[^\x00\u202a-\u202e\u2066-\u2069]*$",
    error="NUL characters and bidirectional controls (U+202A to U+202E, U+2066 to U+2069) "
    "are not allowed.",
)


class Out:
    """A row with the values only its response carries (a presigned URL, which session is
    the caller's): what a schema dumps, so presentation never writes to an ORM row."""

    __slots__ = ("_extra", "_row")

    def __init__(self, row: Any, **extra: Any) -> None:
        self._row = row
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        extra = object.__getattribute__(self, "_extra")
        if name in extra:
            return extra[name]
        return getattr(object.__getattribute__(self, "_row"), name)


_NO_EXTRA: dict[str, Any] = {}


class StrictSchema(Schema):
    """Unknown fields are an error on input, and documented as forbidden on output.

    Dumping reads each field's value with `getattr` and hands it to the field's own
    `_serialize`, as marshmallow does, without its per-value accessor machinery (a third
    of a 20-gallery page's cost); objects read by key (mappings, rows), fields that read
    no attribute or a dotted path, and schemas with their own `get_attribute` take
    marshmallow's path. Strings, UUIDs and datetimes are converted as their fields'
    `_serialize` converts them, without its call layers (see `_conversion`)."""

    class Meta:
        ordered = True

    def _serialize(self, obj: Any, *, many: bool = False) -> Any:
        if many and obj is not None:
            return [self._serialize(d, many=False) for d in obj]
        if obj is None or hasattr(type(obj), "__getitem__"):
            return super()._serialize(obj, many=False)
        ret = self.dict_class()
        source, extra = obj, _NO_EXTRA
        if type(obj) is Out:  # what Out.__getattr__ reads, without its failed lookup first
            source, extra = obj._row, obj._extra
        for key, attr, field, convert in self._dump_plan():
            if attr is None:  # marshmallow's own path for this field
                value = field.serialize(key[1], obj, accessor=self.get_attribute)
                if value is not missing:
                    ret[key[0]] = value
                continue
            value = extra[attr] if attr in extra else getattr(source, attr, missing)
            if value is missing:
                default = field.dump_default
                value = default() if callable(default) else default
                if value is missing:
                    continue
            ret[key] = (convert(value) if convert is not None
                        else field._serialize(value, attr, obj))
        return ret

    def _dump_plan(self) -> list[tuple[Any, str | None, fields.Field, Any]]:
        """(output key, attribute read, field, its conversion or None) per dumped field;
        attribute None (and the key a pair with the field's name) where marshmallow's
        accessor must read it."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            own_accessor = type(self).get_attribute is not Schema.get_attribute
            plan = []
            for name, field in self.dump_fields.items():
                key = field.data_key if field.data_key is not None else name
                attr = field.attribute if field.attribute is not None else name
                if own_accessor or not field._CHECK_ATTRIBUTE or "." in attr:
                    plan.append(((key, name), None, field, None))
                else:
                    plan.append((key, attr, field, _conversion(field)))
            self.__dict__["_plan"] = plan
        return plan


def _conversion(field: fields.Field) -> Callable[[Any], Any] | None:
    """What `field._serialize` does to a value, for the plain fields whose `_serialize` is
    marshmallow's own (UUID, String, DateTime in a named format): the same conversion,
    called directly. None for any other field."""
    serialize = type(field)._serialize
    if serialize is fields.UUID._serialize:
        return _uuid_text
    if serialize is fields.String._serialize:
        return _text
    if serialize is fields.DateTime._serialize and isinstance(field, fields.DateTime):
        named = field.SERIALIZATION_FUNCS.get(field.format or field.DEFAULT_FORMAT)
        if named is not None:
            return lambda value: None if value is None else named(value)
    return None


def _uuid_text(value: Any) -> str | None:  # fields.UUID._serialize
    return None if value is None else str(value)


def _text(value: Any) -> str | None:  # fields.String._serialize
    if type(value) is str or value is None:
        return value
    return ensure_text_type(value)


class Text(fields.String):
    """A single line of human text (names, titles, file names): trimmed, non-empty, no
    control characters, no invisible format characters (see `format_char`)."""

    def __init__(self, max_length: int = 200, min_length: int = 1, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=min_length, max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if CONTROL_CHARS.search(text):
            raise ValidationError("Control characters are not allowed.")
        return no_format_chars(text).strip()


class Email(fields.Email):
    """An email address, compared case-insensitively: stored lower-cased."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(max=320), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            value = value.strip()
        return super()._deserialize(value, attr, data, **kwargs).lower()


def page_args(default_limit: int = 20, max_limit: int = 100) -> type[Schema]:
    """Query arguments of a paginated endpoint: `limit` and `cursor`."""

    class PageArgs(StrictSchema):
        limit = fields.Integer(
            load_default=default_limit,
            validate=validate.Range(min=1, max=max_limit),
            metadata={"description": f"Page size, 1 to {max_limit}."},
        )
        cursor = fields.String(
            load_default=None,
            validate=[validate.Length(max=CURSOR_MAX_LENGTH), validate.Regexp(CURSOR_PATTERN)],
            metadata={"description": "`next_cursor` of the previous page."},
        )

    return PageArgs


def list_args(
    sortable: dict[str, Any], default_sort: str, max_limit: int = 100
) -> type[Schema]:
    """Query arguments of a list endpoint: `limit`, `cursor`, `sort` (`field` or `-field`).

    `sortable` names each sortable column once (name -> model column): the contract's
    choices and the list's ORDER BY come from it, loaded as a `SortKey`."""
    choices = [*sortable, *(f"-{name}" for name in sortable)]

    class ListArgs(page_args(max_limit=max_limit)):  # type: ignore[misc]  # a base made at run time: mypy cannot follow it
        sort = fields.String(
            load_default=default_sort,
            validate=validate.OneOf(choices),
            metadata={"description": "Sort key; a leading `-` sorts descending."},
        )

        @post_load
        def _sort_key(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
            name = data["sort"].lstrip("-")
            data["sort"] = SortKey(name, sortable[name], data["sort"].startswith("-"))
            return data

    return ListArgs


NEXT_CURSOR = "Pass as `cursor` for the next page; null at the end."


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """`{"items": [...], "next_cursor": ...}` around an item schema."""
    return type(
        name,
        (StrictSchema,),
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(
                allow_none=True,
                required=True,
                metadata={"description": NEXT_CURSOR},
            ),
        },
    )


class ProblemSchema(StrictSchema):
    """application/problem+json (RFC 9457)."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    request_id = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": "Field name -> messages. On every 400 (invalid body, query, "
                  "path or header; `_schema` for the body as a whole, e.g. not JSON), and on "
                  "other errors about given fields (some 409, 413, 415; the 422 of a reused "
                  "`Idempotency-Key`)."},
    )
