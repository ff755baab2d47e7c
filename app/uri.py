"""How long a request's URI may be, for the app and for gunicorn alike.

gunicorn refuses a request line longer than `limit_request_line` (at most 8190 bytes,
gunicorn.conf.py sets that) before the app sees it; the app refuses a request target
(path and query, percent-encoded) longer than MAX_TARGET_BYTES itself, with a 414
problem+json, whatever server runs it. The query parameters of every operation fit within
it at their documented maximum lengths, percent-encoded, four-byte characters and all:
tests/api/test_uri_limits.py computes that from the OpenAPI document.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

MAX_REQUEST_LINE = 8190  # gunicorn's largest `limit_request_line`
# The method and " HTTP/1.1" fit in what the line has beyond the target.
MAX_TARGET_BYTES = 8000


def target_bytes(environ: dict[str, Any]) -> int:
    """The request target's length as a client sent it (path percent-encoded, query raw)."""
    path = environ.get("PATH_INFO", "").encode("latin-1")  # WSGI: bytes as latin-1
    query = environ.get("QUERY_STRING", "")
    return len(quote(path, safe="/:@!$&'()*+,;=-._~%")) + (1 + len(query) if query else 0)
