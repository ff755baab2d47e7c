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
from typing import TYPE_CHECKING, Any

import orjson
from flask import Response, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import UnitOfWork, rowcount, utcnow
from app.errors import BadRequest, Conflict, Unprocessable
from app.models import IdempotencyRecord

if TYPE_CHECKING:  # annotations only: nothing here can test an actor's class
    from app.authz.actors import Principal

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


def _principal(actor: Principal) -> str:
    return f"{actor.kind}:{actor.id}"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def claim_or_replay(unit: UnitOfWork, actor: Principal) -> Response | None:
    """Pipeline step 6: claim the request's key apart (committed at once, so a concurrent
    duplicate sees it), or answer with the recorded response."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return None
    if not KEY.fullmatch(key):
        raise BadRequest(
            f"{HEADER} is 1 to 255 printable ASCII characters.",
            errors={HEADER: ["1 to 255 printable ASCII characters, no spaces."]},
        )
    ident = {
        "scope": str(unit.org_id or ""), "principal": _principal(actor),
        "method": request.method, "route": str(request.url_rule), "key": key,
    }
    fingerprint = _fingerprint()
    ttl = current_app.extensions["settings"].idempotency_ttl_seconds
    with unit.apart() as session:
        record = _claim(session, unit.org_id, ident, fingerprint, ttl)
    if record is None:
        g.claim = (ident, unit.org_id)  # ours: `record` or `release` ends it
        return None
    if record.fingerprint != fingerprint:
        raise Unprocessable(
            f"This {HEADER} was used with another request.",
            errors={HEADER: ["Already used with a different payload."]},
        )
    if record.status is None:
        # No Retry-After: it belongs to 429 and 503 alone (app/observability.py).
        raise Conflict(f"A request with this {HEADER} is still in progress; retry shortly.")
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


def record(unit: UnitOfWork, response: Response) -> None:
    """Pipeline step 7, on success: the response is recorded in the request's own
    transaction, so the work and its record commit together (or neither does: the claim
    then lapses after LEASE and the key can be retried)."""
    claimed = g.get("claim")
    if claimed is None:
        return
    ident, org_id = claimed
    if org_id != unit.org_id:
        # The request moved into an organization it created (POST /v1/orgs): the record
        # is written where the key was claimed, in the same transaction as the work.
        unit.scope(org_id=org_id, user_id=unit.user_id)
    _fill(unit.session, ident, response)


def release(unit: UnitOfWork, response: Response | None) -> None:
    """Pipeline step 7, on failure (after the rollback): validation failures, throttling
    and server errors (`response` None: the commit itself failed) release the key for a
    retry; other refusals are recorded."""
    claimed = g.pop("claim", None)
    if claimed is None:
        return
    ident, org_id = claimed
    with unit.apart(org_id=org_id) as session:
        if response is None or response.status_code >= 500 or (
            response.status_code in NOT_RECORDED
        ):
            session.execute(delete(IdempotencyRecord).filter_by(**ident))
        else:
            _fill(session, ident, response)


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
    return rowcount(session.execute(stmt))
