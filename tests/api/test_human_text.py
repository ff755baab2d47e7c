"""Invisible Unicode format characters (category Cf) in human text.

Names, titles, display names, captions, tags and file names refuse every one of them: a
right-to-left override shows "gnp.exe" reversed, a zero-width space makes two names that
look the same. Multi-line descriptions refuse the bidirectional controls (embeddings,
overrides, isolates) and keep the rest, newlines and emoji joiners included.

Each refusal is a 400 naming the field. `test_every_human_text_field_is_held_to_the_rule`
walks the route table, so a new text field fails until it is classified here.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError, fields

from schemas.common import Text
from tests.support import Tenant
from tests.support.http import assert_problem, check_each

BIDI_CONTROLS = [
    "\u202a",  # LEFT-TO-RIGHT EMBEDDING
    "\u202b",  # RIGHT-TO-LEFT EMBEDDING
    "\u202c",  # POP DIRECTIONAL FORMATTING
    "\u202d",  # LEFT-TO-RIGHT OVERRIDE
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u2067",  # RIGHT-TO-LEFT ISOLATE
    "\u2068",  # FIRST STRONG ISOLATE
    "\u2069",  # POP DIRECTIONAL ISOLATE
]
OTHER_FORMAT_CHARS = [
    "\u200b",  # ZERO WIDTH SPACE
    "\u200c",  # ZERO WIDTH NON-JOINER
    "\u200d",  # ZERO WIDTH JOINER
    "\u200e",  # LEFT-TO-RIGHT MARK
    "\u200f",  # RIGHT-TO-LEFT MARK
    "\u061c",  # ARABIC LETTER MARK
    "\u2060",  # WORD JOINER
    "\u2062",  # INVISIBLE TIMES
    "\ufeff",  # ZERO WIDTH NO-BREAK SPACE (byte order mark)
    "\u00ad",  # SOFT HYPHEN
    "\U000e0001",  # LANGUAGE TAG
    "\U000e0041",  # TAG LATIN CAPITAL LETTER A
]
FORMAT_CHARS = BIDI_CONTROLS + OTHER_FORMAT_CHARS
assert {unicodedata.category(c) for c in FORMAT_CHARS} == {"Cf"}

# Input fields that hold strings but are not human text (credentials, codes, addresses).
NOT_HUMAN_TEXT = {
    "email", "password", "current_password", "new_password", "refresh_token", "role",
    "domain", "allowed_origins", "content_type", "sha256", "token",
    "redirect_uris", "scopes", "client_type",  # OAuth clients: URIs and enums
}
MULTI_LINE = {"description"}  # refuses the bidirectional controls only


# Every human text field of every request body: (method, path, body around the value). Ids
# that name nothing are fine: a body is checked before anything is looked up.
Target = tuple[str, Callable[[Tenant], str], Callable[[str], dict[str, Any]]]
GALLERY = "{site}/galleries/" + str(uuid.uuid4())
TARGETS: dict[str, Target] = {
    "org name": ("POST", lambda t: "/v1/orgs", lambda v: {"name": v}),
    "org rename": ("PATCH", lambda t: t.org_path, lambda v: {"name": v}),
    "site name": ("POST", lambda t: f"{t.org_path}/sites", lambda v: {"name": v}),
    "site rename": ("PATCH", lambda t: t.site_path, lambda v: {"name": v}),
    "display name": ("POST", lambda t: "/v1/auth/register", lambda v: {
        "email": "new@example.com", "password": "long enough 123", "display_name": v}),
    "api key name": ("POST", lambda t: f"{t.org_path}/api-keys",
                     lambda v: {"name": v, "role": "viewer"}),
    "ingest key name": ("POST", lambda t: f"{t.site_path}/ingest-keys", lambda v: {"name": v}),
    "file name": ("POST", lambda t: f"{t.site_path}/uploads", lambda v: {
        "filename": v + ".png", "content_type": "image/png", "size_bytes": 10}),
    "asset title": ("PATCH", lambda t: f"{t.site_path}/assets/{uuid.uuid4()}",
                    lambda v: {"title": v}),
    "asset alt text": ("PATCH", lambda t: f"{t.site_path}/assets/{uuid.uuid4()}",
                       lambda v: {"alt_text": v}),
    "asset tag": ("PATCH", lambda t: f"{t.site_path}/assets/{uuid.uuid4()}",
                  lambda v: {"tags": ["ok", v]}),
    "gallery title": ("POST", lambda t: f"{t.site_path}/galleries", lambda v: {"title": v}),
    "gallery retitle": ("PATCH", lambda t: GALLERY.format(site=t.site_path),
                        lambda v: {"title": v}),
    "item caption": ("POST", lambda t: GALLERY.format(site=t.site_path) + "/items",
                     lambda v: {"asset_id": str(uuid.uuid4()), "caption": v}),
    "item recaption": ("PATCH", lambda t: f"{GALLERY.format(site=t.site_path)}/items/"
                       f"{uuid.uuid4()}", lambda v: {"caption": v}),
    "gallery description": ("POST", lambda t: f"{t.site_path}/galleries",
                            lambda v: {"title": "t", "description": v}),
    "gallery redescription": ("PATCH", lambda t: GALLERY.format(site=t.site_path),
                              lambda v: {"description": v}),
}


def _field(body: dict[str, Any]) -> str:
    return next(k for k, v in body.items() if "Acme" in str(v))


@pytest.mark.parametrize("target", TARGETS)
def test_format_characters_are_refused_with_a_400_naming_the_field(client, tenant, target):
    method, path, body_of = TARGETS[target]
    multi_line = _field(body_of("Acme")) in MULTI_LINE
    refused = BIDI_CONTROLS if multi_line else FORMAT_CHARS
    headers = {**tenant["org_admin"].headers, "If-Match": "*"}  # PATCH needs If-Match

    def check(char: str) -> None:
        body = body_of(f"Acme{char}Corp")
        response = client.open(path(tenant), method=method, json=body, headers=headers)
        problem = assert_problem(response, 400, errors={_field(body)})
        named = "bidirectional controls" if multi_line else f"U+{ord(char):04X}"
        assert named in str(problem["errors"]), problem["errors"]

    check_each(refused, check)


def test_the_targets_cover_every_field(app):
    """TARGETS names every human text field the walk of the route table finds."""
    targets = {_field(body_of("Acme")) for _, _, body_of in TARGETS.values()}
    assert targets == set(_human_text_fields(app))


def test_a_description_keeps_lines_and_emoji_joiners(client, tenant):
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, joined by U+200D
    description = f"First line\nSecond line {family}\u200b\u00ad"
    response = client.post(f"{tenant.site_path}/galleries", headers=tenant["member"].headers,
                           json={"title": "Family", "description": description})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["description"] == description


def test_names_in_any_script_are_accepted(client, tenant):
    for name in ("Société Générale", "日本語の名前", "Ελληνικά", "עברית", "Party 🎉"):
        response = client.post("/v1/orgs", json={"name": name}, headers=tenant["member"].headers)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["name"] == name


def _human_text_fields(app: Any) -> dict[str, list[fields.Field]]:
    """Every string field of every request body (`@blp.arguments`, location json) that is
    not in NOT_HUMAN_TEXT, by name."""
    found: dict[str, list[fields.Field]] = {}
    for view in app.view_functions.values():
        view_class = getattr(view, "view_class", None)
        for method in getattr(view_class, "methods", None) or ():
            handler = getattr(view_class, method.lower())
            arguments = getattr(handler, "_apidoc", {}).get("arguments", {})
            for parameter in arguments.get("parameters", []):
                if parameter["in"] != "json":
                    continue
                schema = parameter["schema"]
                schema = schema() if isinstance(schema, type) else schema
                for name, field in schema.fields.items():
                    inner = field.inner if isinstance(field, fields.List) else field
                    if isinstance(inner, fields.String) and not isinstance(inner, fields.UUID) \
                            and name not in NOT_HUMAN_TEXT:
                        found.setdefault(name, []).append(field)
    return found


def test_every_human_text_field_is_held_to_the_rule(app):
    found = _human_text_fields(app)
    assert {"name", "title", "filename", "caption", "display_name", "description"} <= set(found)
    failures = []
    for name, fields_ in found.items():
        for field in fields_:
            for char in BIDI_CONTROLS if name in MULTI_LINE else FORMAT_CHARS:
                value = f"Acme{char}Corp"
                try:
                    field.deserialize([value] if isinstance(field, fields.List) else value)
                except ValidationError:
                    continue
                failures.append(f"{name} accepts U+{ord(char):04X}")
    assert not failures, failures


@given(
    st.text(st.characters(exclude_categories=("C", "Z")), min_size=1, max_size=50),
    st.characters(categories=("Cf",)),
    st.integers(min_value=0, max_value=50),
)
def test_text_refuses_any_format_character_anywhere(text: str, char: str, at: int) -> None:
    field = Text()
    assert field.deserialize(text) == text.strip()
    at = min(at, len(text))
    with pytest.raises(ValidationError, match=f"U\\+{ord(char):04X}"):
        field.deserialize(text[:at] + char + text[at:])
