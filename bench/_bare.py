"""The baseline of bench/endpoints.py and bench/ingest.py: a bare Flask app answering what
the API's endpoints answer (the same JSON) with hand-written SQL over one psycopg
connection per worker, as the database's administrator (no row-level security, no
authentication, no validation, no policy): what the endpoints would cost written by hand
with none of the framework.

    gunicorn -c gunicorn.conf.py bench._bare:app    (BARE_DATABASE_URL: a libpq conninfo)
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask, jsonify, request

from app import sigv4
from app.config import Settings
from app.storage import _get_query, signing_window

app = Flask(__name__)
_conns: dict[bool, psycopg.Connection[Any]] = {}  # by autocommit
_settings = Settings.from_env()
_target = sigv4.PathStyle(base=_settings.s3_endpoint_url, bucket=_settings.s3_bucket,
                          region=_settings.s3_region)


class _Credentials:
    access_key = _settings.s3_access_key_id
    secret_key = _settings.s3_secret_access_key
    token = None


GALLERY = ("SELECT id, site_id, title, description, cover_asset_id, item_count, created_by,"
           " created_at, updated_at FROM galleries")
COVERS = ("SELECT id, key, filename, content_type FROM assets WHERE id = ANY(%s)"
          " AND status = 'ready' AND deleted_at IS NULL")


def conn(autocommit: bool = False) -> psycopg.Connection[Any]:
    if autocommit not in _conns or _conns[autocommit].closed:
        _conns[autocommit] = psycopg.connect(os.environ["BARE_DATABASE_URL"],
                                             autocommit=autocommit)
    return _conns[autocommit]


def _urls(cur: psycopg.Cursor[Any], ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    ttl = _settings.download_url_ttl_seconds
    window = signing_window(ttl)
    start = int(time.time()) // window * window
    return {
        asset_id: sigv4.presign_get(_target, key, _get_query(filename, content_type),
                                    _Credentials(), signed_at=start, expires=ttl)
        for asset_id, key, filename, content_type in cur.execute(COVERS, (ids,))
    }


def _gallery(row: tuple[Any, ...], urls: dict[uuid.UUID, str]) -> dict[str, Any]:
    gid, site_id, title, description, cover, count, created_by, created, updated = row
    return {"id": str(gid), "site_id": str(site_id), "title": title, "description": description,
            "cover_asset_id": str(cover) if cover else None,
            "cover_url": urls.get(cover) if cover else None, "item_count": count,
            "created_by": str(created_by) if created_by else None,
            "created_at": created.isoformat(), "updated_at": updated.isoformat()}


@app.get("/orgs/<uuid:org_id>/sites/<uuid:site_id>/galleries")
def galleries(org_id: uuid.UUID, site_id: uuid.UUID) -> Any:
    with conn().transaction(), conn().cursor() as cur:
        rows = cur.execute(
            f"{GALLERY} WHERE org_id = %s AND site_id = %s AND deleted_at IS NULL"
            " ORDER BY created_at DESC, id DESC LIMIT 21", (org_id, site_id)).fetchall()
        urls = _urls(cur, list({r[4] for r in rows[:20] if r[4]}))
    return jsonify({"items": [_gallery(r, urls) for r in rows[:20]],
                    "next_cursor": "x" if len(rows) > 20 else None})


@app.get("/orgs/<uuid:org_id>/sites/<uuid:site_id>/galleries/<uuid:gallery_id>")
def gallery(org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID) -> Any:
    with conn().transaction(), conn().cursor() as cur:
        row = cur.execute(f"{GALLERY} WHERE org_id = %s AND site_id = %s AND id = %s"
                          " AND deleted_at IS NULL", (org_id, site_id, gallery_id)).fetchone()
        if row is None:
            return jsonify({"status": 404}), 404
        urls = _urls(cur, [row[4]] if row[4] else [])
    return jsonify(_gallery(row, urls))


@app.post("/orgs/<uuid:org_id>/sites/<uuid:site_id>/galleries")
def create(org_id: uuid.UUID, site_id: uuid.UUID) -> Any:
    body = request.get_json()
    now = datetime.now(UTC)
    with conn().transaction(), conn().cursor() as cur:
        row = cur.execute(
            "INSERT INTO galleries (id, org_id, site_id, title, description, cover_asset_id,"
            " created_by, item_count, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, NULL, %s, 0, %s, %s)"
            " RETURNING id, site_id, title, description, cover_asset_id, item_count,"
            " created_by, created_at, updated_at",
            (uuid.uuid4(), org_id, site_id, body["title"], body.get("description", ""),
             uuid.UUID(request.headers["X-User"]), now, now)).fetchone()
    assert row is not None
    return jsonify(_gallery(row, {})), 201


# The event batch's INSERT, fed the body as it came: PostgreSQL reads the events itself.
EVENTS = """
INSERT INTO events (org_id, site_id, event_id, name, ts, received_at, distinct_id, properties)
SELECT %s, %s, e.event_id, e.name, e."timestamp", %s, e.distinct_id, e.properties
FROM jsonb_to_recordset(%s::jsonb -> 'events')
     AS e(event_id uuid, name text, "timestamp" timestamptz, distinct_id text, properties jsonb)
ON CONFLICT DO NOTHING
"""


@app.post("/v1/events/batch")
def events_batch() -> Any:
    """The API's event batch with none of its work: no key, no limit, no validation. One
    statement in autocommit, its own transaction: one round trip, as the API's."""
    cur = conn(autocommit=True).execute(EVENTS, (
        uuid.UUID(request.headers["X-Org"]), uuid.UUID(request.headers["X-Site"]),
        datetime.now(UTC), request.get_data(as_text=True)))
    return jsonify({"accepted": cur.rowcount})


@app.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


@app.get("/me")
def me() -> Any:
    user_id = uuid.UUID(request.headers["X-User"])
    with conn().transaction(), conn().cursor() as cur:
        row = cur.execute("SELECT id, email, display_name, created_at, email_verified_at"
                          " FROM users WHERE id = %s AND deleted_at IS NULL",
                          (user_id,)).fetchone()
        grants = cur.execute("SELECT org_id, site_id, role FROM app_user_grants(%s)",
                             (user_id,)).fetchall()
    assert row is not None
    return jsonify({"id": str(row[0]), "email": row[1], "display_name": row[2],
                    "created_at": row[3].isoformat(), "email_verified": row[4] is not None,
                    "memberships": [{"org_id": str(o), "site_id": str(s) if s else None,
                                     "role": r} for o, s, r in grants]})
