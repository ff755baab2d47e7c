"""Examples for the OpenAPI document: one realistic value per property name, written once
(a demo photography business), placed on every schema property that has none. A
property whose meaning differs by schema has its own entry under (schema, property).
tests/test_client_generation.py checks that each example is valid for its property."""

from __future__ import annotations

from typing import Any

ORG = "0b7c4a8e-2f0d-4d5c-9a57-3e1f6c2b8d10"
SITE = "5a1e9c3f-7b24-4e8a-b6d2-91c0f4e7a352"
USER = "c2d9f7a1-4b3e-4f60-8d15-6e7a0b9c1d24"
ASSET = "e4f1a2b3-c5d6-4e7f-8a9b-0c1d2e3f4a5b"
GALLERY = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
WHEN = "2026-06-01T09:30:00+00:00"

BY_NAME: dict[str, Any] = {
    "id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
    "org_id": ORG, "site_id": SITE, "user_id": USER, "actor_id": USER, "created_by": USER,
    "asset_id": ASSET, "cover_asset_id": ASSET, "gallery_id": GALLERY,
    "event_id": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    "created_at": WHEN, "updated_at": WHEN, "completed_at": WHEN, "timestamp": WHEN,
    "received_at": "2026-06-01T09:30:01+00:00", "last_used_at": "2026-06-02T14:05:00+00:00",
    "expires_at": "2026-06-01T09:35:00+00:00", "bucket": "2026-06-01T00:00:00+00:00",
    "email": "ana@example.com", "display_name": "Ana Lima", "email_verified": True,
    "invited_by": USER, "token": "Zp3kQ8vN2rT6yW1bX5cJ9mH4fL7dS0aGq2Ve",
    "password": "correct horse battery staple", "current_password": "correct horse battery",
    "new_password": "correct horse battery staple",
    "name": "Lima Photography", "title": "Summer weddings 2026",
    "description": "Our favourite ceremonies of the season.",
    "domain": "photos.example.com", "caption": "First dance at Quinta da Serra",
    "alt_text": "A couple dancing under string lights", "tags": ["wedding", "summer"],
    "filename": "first-dance.jpg", "content_type": "image/jpeg", "size_bytes": 2481764,
    "sha256": "9b74c9897bac770ffc029102a200c5de0c8b7e1f4d2a6a1e3b7c5d9f2e4a6c8b",
    "position": 0, "item_count": 24, "count": 312, "accepted": 2, "duplicates": 0,
    "index": 3, "allowed_origins": ["https://photos.example.com"],
    "distinct_id": "visitor-4821", "properties": {"path": "/galleries/summer-2026"},
    "event": "authz.denied", "action": "update", "resource_type": "Gallery",
    "resource_id": GALLERY, "actor_type": "user", "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)",
    "current": True, "interval": "day", "access_token": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOi...",
    "refresh_token": "rt_4m9QvT2xK7pLw8ZcYb1NdR5sHfJ3gE6u", "expires_in": 900,
    "token_type": "Bearer", "next_cursor": None, "role": "member",
    "url": "https://tenant-api.s3.eu-west-1.amazonaws.com/", "download_url": None,
    "cover_url": None,
    "redirect_uris": ["https://app.example.com/oauth/callback"], "scopes": ["read"],
    "client_secret": "Kx8vQ2mN7pL4wZcYb1NdR5sHfJ3gE6uTa0Qh7vX9mK4",
}
BY_SCHEMA: dict[tuple[str, str], Any] = {
    ("Event", "name"): "page.view", ("EventRead", "name"): "page.view",
    ("StatsRow", "name"): "page.view", ("ApiKeyCreate", "name"): "nightly-export",
    ("ApiKey", "name"): "nightly-export", ("ApiKeyCreated", "name"): "nightly-export",
    ("IngestKeyCreate", "name"): "website", ("IngestKey", "name"): "website",
    ("IngestKeyCreated", "name"): "website",
    ("OAuthClientCreate", "name"): "Lima Albums app", ("OAuthClient", "name"): "Lima Albums app",
    ("OAuthClientCreated", "name"): "Lima Albums app",
    ("ApiKeyCreated", "secret"): "sk_2Qh7vX9mK4pL8wZcYb1NdR5sHfJ3gE6uTa0",
    ("IngestKeyCreated", "secret"): "ik_8Lw3nB6vC1xZ5qR9tY2uI7oP4aS0dF",
    ("EventBatch", "key"): "ik_8Lw3nB6vC1xZ5qR9tY2uI7oP4aS0dF",
    ("Accepted", "message"): "Check your inbox: we sent a message to this address.",
    ("DownloadUrl", "url"): "https://tenant-api.s3.eu-west-1.amazonaws.com/orgs/.../first-dance"
                            ".jpg?X-Amz-Signature=...",
    ("Health", "status"): "ok", ("Session", "current"): True,
    ("Problem", "type"): "https://errors.tenant-api.dev/bad-request",
    ("Problem", "title"): "Bad Request", ("Problem", "status"): 400,
    ("Problem", "detail"): "The request is invalid; see `errors`.",
    ("Problem", "errors"): {"name": ["Missing data for required field."]},
    ("Rejected", "errors"): {"timestamp": ["Not a valid datetime."]},
    ("PresignedPost", "fields"): {"key": "uploads/...", "Content-Type": "image/jpeg",
                                  "policy": "eyJleHBpcmF0aW9uIjoi...",
                                  "x-amz-signature": "..."},
    ("AuditEvent", "before"): {"user_id": USER, "role": "member"},
    ("AuditEvent", "after"): {"user_id": USER, "role": "site_admin"},
    ("ItemOrder", "item_ids"): ["3a2b1c0d-9e8f-4a7b-b6c5-d4e3f2a1b0c9",
                                "0c9b8a7d-6e5f-4d3c-a2b1-f0e9d8c7b6a5"],
}


def add_examples(schemas: dict[str, dict[str, Any]]) -> None:
    for schema_name, schema in schemas.items():
        for prop_name, prop in schema.get("properties", {}).items():
            if "example" in prop or "$ref" in prop or (
                    prop.get("type") == "array" and "$ref" in prop.get("items", {})):
                continue
            if "enum" in prop:
                prop["example"] = next(v for v in prop["enum"] if v is not None)
            elif (schema_name, prop_name) in BY_SCHEMA:
                prop["example"] = BY_SCHEMA[(schema_name, prop_name)]
            elif prop_name in BY_NAME and (BY_NAME[prop_name] is not None or prop.get(
                    "nullable")):
                prop["example"] = BY_NAME[prop_name]
