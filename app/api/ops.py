"""Liveness and readiness probes."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields
from sqlalchemy import text

from app import db
from app.api import Blueprint
from app.errors import ApiError

blp = Blueprint("ops", __name__, description="Health checks")


class HealthSchema(Schema):
    status = fields.String(required=True)


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
    @blp.alt_response(503, description="A dependency is unavailable.")
    def get(self) -> dict[str, str]:
        """The process can serve requests: the database answers."""
        try:
            with db.sql_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise ApiError.of(
                503, "The database is unavailable.", headers={"Retry-After": "5"}
            ) from exc
        return {"status": "ready"}
