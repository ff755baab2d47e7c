"""Sending event batches through the API, as the event tests do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

BATCH = "/v1/events/batch"
MISSING = object()


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def event(**fields: Any) -> dict[str, Any]:
    base = {
        "event_id": str(uuid.uuid4()),
        "name": "page.view",
        "timestamp": ago(minutes=1),
        "distinct_id": "visitor-1",
        "properties": {"path": "/"},
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not MISSING}


def send(
    client: Any, key: Any, events: list[Any] | None = None, *, body: Any = MISSING,
    data: bytes | None = None, headers: dict[str, str] | None = None,
) -> Any:
    if data is None:
        data = orjson.dumps({"events": events} if body is MISSING else body)
    sent = {"Content-Type": "application/json", **(key.headers if key else {}), **(headers or {})}
    return client.post(BATCH, data=data, headers=sent)


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"accepted", "duplicates", "rejected"}, body
    return body
