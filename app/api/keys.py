"""API keys of an organization and ingest keys of a site. Secrets are shown once."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, author, created, page
from app.auth.current import actor
from app.authz import authorize, authorized
from app.models import ApiKey, IngestKey
from app.needs import per_account
from app.pagination import Page
from app.services import credentials, tenancy
from schemas.keys import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyListArgs,
    ApiKeyPageSchema,
    IngestKeyCreatedSchema,
    IngestKeyCreateSchema,
    IngestKeyListArgs,
    IngestKeyPageSchema,
)

blp = Blueprint("keys", __name__, url_prefix="/v1/orgs/<uuid:org_id>", description="Keys")


def _with_secret(key: ApiKey | IngestKey, secret: str) -> dict[str, Any]:
    return {**{c.key: getattr(key, c.key) for c in key.__table__.columns}, "secret": secret}


@blp.route("/api-keys")
class ApiKeys(MethodView):
    @blp.needs(checks=("manage_api_keys Organization",), lists=("read ApiKey",))
    @blp.arguments(ApiKeyListArgs, location="query")
    @blp.response(200, ApiKeyPageSchema)
    def get(self, args: dict[str, Any], org_id: uuid.UUID) -> Page[ApiKey]:
        """Live API keys of the organization (org_admin). Secrets are never shown again."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "manage_api_keys", org)
        stmt = authorized(credentials.api_keys(org.id), actor(), "read", ApiKey)
        return page(stmt, args)

    @blp.needs(
        limits=(per_account("api-keys"),),
        checks=("manage_api_keys Organization", "create ApiKey"),
    )
    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeyCreatedSchema)
    @blp.alt_response(429, description="Too many keys created; see `Retry-After`.")
    def post(self, data: dict[str, Any], org_id: uuid.UUID) -> Created:
        """Create an API key with a role no higher than the caller's, for the whole
        organization or one of its sites."""
        session = db.session()
        org = tenancy.get_org(session, org_id)
        # Before the site lookup: a key's refusal must not tell which site ids exist.
        authorize(actor(), "manage_api_keys", org)
        site = None if data["site_id"] is None else tenancy.get_site(
            session, org.id, data["site_id"]
        )
        proposed = credentials.proposed_api_key(org, site, data["role"])
        authorize(actor(), "create", proposed)
        key, secret = credentials.create_api_key(
            session, proposed, name=data["name"], expires_at=data["expires_at"],
            by=author(),
        )
        return created(_with_secret(key, secret), ".ApiKeyItem", org_id=org_id,
                       api_key_id=key.id)


@blp.route("/api-keys/<uuid:api_key_id>")
class ApiKeyItem(MethodView):
    @blp.needs(checks=("revoke ApiKey",))
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, api_key_id: uuid.UUID) -> None:
        """Revoke: the key stops working at once."""
        session = db.session()
        org = tenancy.get_org(session, org_id)
        key = credentials.get_api_key(session, org.id, api_key_id)
        authorize(actor(), "revoke", key)  # 404 for whoever may not read keys: a missing id alike
        credentials.revoke(session, key, by=author())


@blp.route("/sites/<uuid:site_id>/ingest-keys")
class IngestKeys(MethodView):
    @blp.needs(checks=("manage_ingest_keys Site",), lists=("read IngestKey",))
    @blp.arguments(IngestKeyListArgs, location="query")
    @blp.response(200, IngestKeyPageSchema)
    def get(
        self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Page[IngestKey]:
        """Live ingest keys of the site (site_admin)."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "manage_ingest_keys", site)
        stmt = authorized(credentials.ingest_keys(site), actor(), "read", IngestKey)
        return page(stmt, args)

    @blp.needs(
        limits=(per_account("ingest-keys"),),
        checks=("manage_ingest_keys Site", "create IngestKey"),
    )
    @blp.arguments(IngestKeyCreateSchema)
    @blp.response(201, IngestKeyCreatedSchema)
    @blp.alt_response(429, description="Too many keys created; see `Retry-After`.")
    def post(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Created:
        """Create an ingest key: it can only send events to this site."""
        session = db.session()
        site = tenancy.get_site(session, org_id, site_id)
        authorize(actor(), "manage_ingest_keys", site)
        authorize(actor(), "create", credentials.proposed_ingest_key(site))
        key, secret = credentials.create_ingest_key(
            session, site, name=data["name"], allowed_origins=data["allowed_origins"],
            by=author(),
        )
        return created(_with_secret(key, secret), ".IngestKeyItem", org_id=org_id,
                       site_id=site_id, ingest_key_id=key.id)


@blp.route("/sites/<uuid:site_id>/ingest-keys/<uuid:ingest_key_id>")
class IngestKeyItem(MethodView):
    @blp.needs(checks=("revoke IngestKey",))
    @blp.response(204)
    def delete(
        self, org_id: uuid.UUID, site_id: uuid.UUID, ingest_key_id: uuid.UUID
    ) -> None:
        """Revoke: the key stops working at once."""
        session = db.session()
        site = tenancy.get_site(session, org_id, site_id)
        key = credentials.get_ingest_key(session, site, ingest_key_id)
        authorize(actor(), "revoke", key)  # 404 for whoever may not read keys: a missing id alike
        credentials.revoke(session, key, by=author())
