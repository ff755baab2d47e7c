"""OAuth clients of an organization (org_admins; people only). Secrets are shown once."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, created, page
from app.auth.current import actor
from app.authz import authorize, authorized
from app.errors import Conflict
from app.models import OAuthClient
from app.needs import per_account
from app.pagination import Page
from app.services import oauth_clients, tenancy
from schemas.oauth import (
    OAuthClientCreatedSchema,
    OAuthClientCreateSchema,
    OAuthClientListArgs,
    OAuthClientPageSchema,
    OAuthClientSchema,
    OAuthClientSecretSchema,
    OAuthClientUpdateSchema,
)

blp = Blueprint("oauth_clients", __name__, url_prefix="/v1/orgs/<uuid:org_id>",
                description="OAuth clients")


def _client(org_id: uuid.UUID, client_id: uuid.UUID) -> OAuthClient:
    session = db.session()
    org = tenancy.get_org(session, org_id)
    return oauth_clients.get(session, org.id, client_id)


@blp.route("/oauth-clients")
class OAuthClients(MethodView):
    @blp.needs(checks=("manage_oauth_clients Organization",), lists=("read OAuthClient",))
    @blp.arguments(OAuthClientListArgs, location="query")
    @blp.response(200, OAuthClientPageSchema)
    def get(self, args: dict[str, Any], org_id: uuid.UUID) -> Page[OAuthClient]:
        """Live OAuth clients of the organization (org_admin). Secrets are never shown again."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "manage_oauth_clients", org)
        stmt = authorized(oauth_clients.clients(org.id), actor(), "read", OAuthClient)
        return page(stmt, args)

    @blp.needs(
        limits=(per_account("oauth-clients"),),
        checks=("manage_oauth_clients Organization", "create OAuthClient"),
    )
    @blp.arguments(OAuthClientCreateSchema)
    @blp.response(201, OAuthClientCreatedSchema)
    @blp.alt_response(429, description="Too many clients registered; see `Retry-After`.")
    def post(self, data: dict[str, Any], org_id: uuid.UUID) -> Created:
        """Register an OAuth client: public (PKCE, no secret) or confidential (a secret,
        shown once), with exact redirect URIs and the scopes it may ask for."""
        session = db.session()
        org = tenancy.get_org(session, org_id)
        # Before the site lookup: a refusal must not tell which site ids exist.
        authorize(actor(), "manage_oauth_clients", org)
        site = None if data["site_id"] is None else tenancy.get_site(
            session, org.id, data["site_id"])
        proposed = oauth_clients.proposed(org, site, data.get("role"))
        authorize(actor(), "create", proposed)
        client, secret = oauth_clients.create(
            session, proposed, name=data["name"], client_type=data["client_type"],
            redirect_uris=data["redirect_uris"], scopes=data["scopes"], created_by=actor().id,
        )
        body = {**{c.key: getattr(client, c.key) for c in client.__table__.columns},
                "client_secret": secret}
        return created(body, ".OAuthClientItem", org_id=org_id, oauth_client_id=client.id)


@blp.route("/oauth-clients/<uuid:oauth_client_id>")
class OAuthClientItem(MethodView):
    @blp.needs(checks=("read OAuthClient",))
    @blp.response(200, OAuthClientSchema)
    def get(self, org_id: uuid.UUID, oauth_client_id: uuid.UUID) -> OAuthClient:
        """One live OAuth client (org_admin)."""
        client = _client(org_id, oauth_client_id)
        authorize(actor(), "read", client)  # 404 for who may not read it, as a missing id
        return client

    @blp.needs(checks=("update OAuthClient",))
    @blp.arguments(OAuthClientUpdateSchema)
    @blp.response(200, OAuthClientSchema)
    def patch(self, data: dict[str, Any], org_id: uuid.UUID,
              oauth_client_id: uuid.UUID) -> OAuthClient:
        """Rename the client or replace its redirect URIs."""
        client = _client(org_id, oauth_client_id)
        authorize(actor(), "update", client)  # 404 for who may not read it, as a missing id
        oauth_clients.update_client(db.session(), client, data)
        return client

    @blp.needs(checks=("revoke OAuthClient",))
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, oauth_client_id: uuid.UUID) -> None:
        """Revoke: the client and every token it obtained stop working at once."""
        client = _client(org_id, oauth_client_id)
        authorize(actor(), "revoke", client)  # 404 for who may not read it, as a missing id
        oauth_clients.revoke(db.session(), client)


@blp.route("/oauth-clients/<uuid:oauth_client_id>/secret")
class OAuthClientSecret(MethodView):
    @blp.needs(limits=(per_account("oauth-clients"),), checks=("rotate_secret OAuthClient",))
    @blp.response(200, OAuthClientSecretSchema)
    @blp.alt_response(409, description="A public client has no secret.")
    @blp.alt_response(429, description="Too many secrets made; see `Retry-After`.")
    def post(self, org_id: uuid.UUID, oauth_client_id: uuid.UUID) -> dict[str, str]:
        """A new secret for a confidential client (shown once); the old one stops working."""
        client = _client(org_id, oauth_client_id)
        authorize(actor(), "rotate_secret", client)  # 404 for who may not read it, as a missing id
        if client.secret_hash is None:
            raise Conflict("A public client has no secret to rotate.")
        return {"client_secret": oauth_clients.rotate_secret(db.session(), client)}
