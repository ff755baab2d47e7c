"""Idempotency keys for authenticated POSTs (`Idempotency-Key`, 1 to 255 characters).

Per (organization, caller, method, route, key):
- the first request claims the key in a transaction of its own, committed at once, so a
  concurrent duplicate sees the claim and answers 409;
- its response is recorded in the request's own transaction, so the work and the record
  of it commit together (or neither does: the claim then lapses after LEASE and the key
  can be retried);
- a replay with the same payload gets the recorded status and body, with
  `Idempotent-Replayed: true`; the same key with another payload answers 422 (the one
  422 of the API); a malformed key is invalid input, a 400;
- validation failures (400), throttling (429) and server errors are not recorded:
  the claim is released, so the client can correct and retry with the same key.
Records expire after IDEMPOTENCY_TTL_SECONDS (default 24 h). A new key's `secret` is
never recorded: its replay says it was shown once.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta
from typing import Any

import orjson
from flask import Flask, Response, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import db
from app.db import set_scope, utcnow
from app.errors import BadRequest, Conflict, Unprocessable
from app.models import IdempotencyRecord

HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
LEASE = timedelta(seconds=60)  # a claim older than this belongs to a request that died
NOT_RECORDED = {400, 429}

DOC_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    # The pattern is KEY's: without it the document allows keys the API refuses (400).
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    "description": "Makes a retry safe: the first response is replayed "
    "(`Idempotent-Replayed: true`); the same key with another payload answers 422, "
    "a key still in flight 409.",
}


def init_app(app: Flask) -> None:
    """Register the hooks; after the API (authentication and scope come first) and after
    the unit of work (so the record is written before the request commits)."""
    app.before_request(_claim_or_replay)
    app.after_request(_record)


def _scope() -> tuple[uuid.UUID | None, str]:
    session = db.session()
    org_id = session.info.get("org_id")
    actor = g.actor
    return org_id, f"{actor.kind}:{actor.id}"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _claim_or_replay() -> Response | None:
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST" or g.get("actor") is None:
        return None
    if not KEY.fullmatch(key):
        raise BadRequest(
            f"{HEADER} is 1 to 255 printable ASCII characters.",
            errors={HEADER: ["1 to 255 printable ASCII characters, no spaces."]},
        )
    org_id, principal = _scope()
    ident = {
        "scope": str(org_id or ""), "principal": principal, "method": request.method,
        "route": str(request.url_rule), "key": key,
    }
    fingerprint = _fingerprint()
    ttl = current_app.extensions["settings"].idempotency_ttl_seconds
    # Authentication may have written already (a key's `last_used_at`): commit that
    # first, or SQLite, which allows one writer, would block the claim until it times out.
    db.session().commit()
    with db.separate_session() as session:
        set_scope(session, org_id=org_id, user_id=None)
        record = _claim(session, org_id, ident, fingerprint, ttl)
    if record is None:
        g.idempotency = (ident, org_id)  # ours: _record fills it in
        return None
    if record.fingerprint != fingerprint:
        raise Unprocessable(
            f"This {HEADER} was used with another request.",
            errors={HEADER: ["Already used with a different payload."]},
        )
    if record.status is None:
        raise Conflict(f"A request with this {HEADER} is still in progress.",
                       headers={"Retry-After": "1"})
    response = Response(record.body or "", status=record.status, mimetype=record.content_type)
    if record.location:
        response.headers["Location"] = record.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _claim(
    session: Session, org_id: uuid.UUID | None, ident: dict[str, Any], fingerprint: str,
    ttl: int,
) -> IdempotencyRecord | None:
    """Claim the key (None), or return the record that holds it."""
    now = utcnow()
    existing = session.scalar(select(IdempotencyRecord).filter_by(**ident))
    if existing is not None and (
        existing.expires_at <= now
        or (existing.status is None and existing.updated_at <= now - LEASE)
    ):
        session.delete(existing)
        session.flush()
        existing = None
    if existing is not None:
        return existing
    claim = IdempotencyRecord(
        org_id=org_id, fingerprint=fingerprint, status=None,
        expires_at=now + timedelta(seconds=ttl), **ident,
    )
    try:
        with session.begin_nested():
            session.add(claim)
    except IntegrityError:  # a concurrent request claimed it first
        return session.scalar(select(IdempotencyRecord).filter_by(**ident))
    return None


def _record(response: Response) -> Response:
    claimed = g.pop("idempotency", None)
    if claimed is None:
        return response
    ident, org_id = claimed
    code = response.status_code
    if code < 400:  # recorded with the work, in the request's own transaction
        session = db.session()
        # The scope it was claimed under (creating an organization moves the request's).
        set_scope(session, org_id=org_id, user_id=session.info.get("user_id"))
        _fill(session, ident, response)
        return response
    # The request's transaction will roll back: end it first (SQLite allows one writer),
    # then release the key, or record the refusal, apart.
    db.end_request_session()
    with db.separate_session() as apart:
        set_scope(apart, org_id=org_id, user_id=None)
        if code >= 500 or code in NOT_RECORDED:
            apart.execute(delete(IdempotencyRecord).filter_by(**ident))
        else:
            _fill(apart, ident, response)
    return response


def _fill(session: Session, ident: dict[str, Any], response: Response) -> None:
    record = session.scalar(select(IdempotencyRecord).filter_by(**ident))
    if record is not None:
        record.status = response.status_code
        record.content_type = response.mimetype
        record.body = _without_secrets(response)
        record.location = response.headers.get("Location")


SECRET_FIELDS = ("secret",)  # a new key's secret: shown once, stored only as a hash
NOT_REPLAYED = "(shown once: not replayed)"


def _without_secrets(response: Response) -> str:
    """The body to record, with secrets replaced: a replay must not reveal them again, and
    the record must not keep them in plaintext."""
    body = response.get_data(as_text=True)
    if response.mimetype != "application/json" or not any(f in body for f in SECRET_FIELDS):
        return body
    data = orjson.loads(body)
    if isinstance(data, dict):
        for name in SECRET_FIELDS:
            if name in data:
                data[name] = NOT_REPLAYED
    return orjson.dumps(data).decode()


def purge_expired(session: Session) -> int:
    """Delete the records past their expiry (`flask idempotency purge`, from cron)."""
    stmt = delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
    return session.execute(stmt).rowcount or 0
