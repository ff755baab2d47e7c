"""SQLAlchemy models, one module per aggregate."""

from app.db import Base
from app.models.audit import AuditEvent
from app.models.identity import AuthSession, User
from app.models.tenancy import (
    ORG_ROLES,
    SITE_ROLES,
    Organization,
    OrgMembership,
    Site,
    SiteMembership,
)

__all__ = [
    "ORG_ROLES",
    "SITE_ROLES",
    "AuditEvent",
    "AuthSession",
    "Base",
    "OrgMembership",
    "Organization",
    "Site",
    "SiteMembership",
    "User",
]
