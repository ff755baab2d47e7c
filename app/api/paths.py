"""Path parameters: a malformed id is invalid input (400 naming it); a well-formed id that
names nothing is a 404.

Routes declare their ids with werkzeug's `uuid` converter, so a segment that is not a
UUID matches no route: a 404 from routing. When that happens, the path is matched once
more against the same rules with every `uuid` parameter accepting any segment; a route
found that way names the parameters that kept it from matching. Routing itself is
unchanged: static segments still win (`.../items/order`), and 405s keep their `Allow`.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, UUIDConverter

MESSAGE = "Not a valid UUID."
_UUID = re.compile(UUIDConverter.regex)  # exactly what the `uuid` converter routes


class _Segment(str):
    """A segment found where a route expects a UUID."""


class _AnySegment(BaseConverter):
    regex = r"[^/]+"

    def to_python(self, value: str) -> Any:
        return _Segment(value)


def malformed(app: Flask, request: Request) -> dict[str, list[str]]:
    """Parameter -> messages for a request no route matched because of malformed ids;
    empty when the path is not one of the API's."""
    relaxed: Map | None = app.extensions.get("relaxed_url_map")
    if relaxed is None:  # the rules are final once the app is built
        relaxed = Map(
            [rule.empty() for rule in app.url_map.iter_rules()],
            converters={"uuid": _AnySegment},
            strict_slashes=app.url_map.strict_slashes,
            merge_slashes=app.url_map.merge_slashes,
        )
        app.extensions["relaxed_url_map"] = relaxed
    try:
        _, args = relaxed.bind("localhost").match(request.path, request.method)
    except HTTPException:  # still no route (or a redirect, or another method's): a 404 it is
        return {}
    return {
        name: [MESSAGE]
        for name, value in args.items()
        if isinstance(value, _Segment) and not _UUID.fullmatch(value)
    }
