"""SQLAlchemy models, one module per aggregate."""

from app.db import Base
from app.models.assets import ASSET_STATUSES, Asset
from app.models.audit import AuditEvent
from app.models.credentials import ApiKey, IngestKey
from app.models.events import Event
from app.models.galleries import Gallery, GalleryItem
from app.models.idempotency import IdempotencyRecord
from app.models.identity import AccountToken, AuthSession, RefreshToken, User
from app.models.invitations import Invitation
from app.models.mail import OutboxMessage
from app.models.oauth import OAuthClient, OAuthCode
from app.models.tenancy import (
    ORG_ROLES,
    SITE_ROLES,
    Organization,
    OrgMembership,
    Site,
    SiteMembership,
)

__all__ = [
    "ASSET_STATUSES",
    "ORG_ROLES",
    "SITE_ROLES",
    "AccountToken",
    "ApiKey",
    "Asset",
    "AuditEvent",
    "AuthSession",
    "Base",
    "Event",
    "Gallery",
    "GalleryItem",
    "IdempotencyRecord",
    "IngestKey",
    "Invitation",
    "OAuthClient",
    "OAuthCode",
    "OrgMembership",
    "Organization",
    "OutboxMessage",
    "RefreshToken",
    "Site",
    "SiteMembership",
    "User",
]
