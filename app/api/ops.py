"""Liveness and readiness probes."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields

from app import db, ratelimit, readiness
from app.api import Blueprint
from app.errors import Unavailable

blp = Blueprint("ops", __name__, description="Health checks")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


@blp.route("/healthz")
class Health(MethodView):
    @blp.needs(public=True)
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.needs(public=True)
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, description="A dependency is unavailable: `errors` names it "
                      "(`database`, `ratelimit`, `storage`) with `unavailable` or `timeout`.")
    def get(self) -> dict[str, str]:
        """The process can serve requests: every dependency answers in time.

        The database, the rate-limit counters' storage (when shared) and the bucket."""
        timeout = current_app.extensions["settings"].readiness_timeout_seconds
        checks = {
            "database": readiness.database(db.sql_engine(), timeout * 1000),
            "storage": current_app.extensions["storage"].reachable,
        }
        counters = ratelimit.storage_check()
        if counters is not None:
            checks["ratelimit"] = counters
        failed = readiness.failures(checks, timeout)
        if failed:
            raise Unavailable(f"Not ready: {', '.join(sorted(failed))}.",
                              errors={name: [reason] for name, reason in failed.items()})
        return {"status": "ready"}
