"""Uploads (issue 4): POST .../uploads signs a presigned POST, POST .../assets/{id}/complete
verifies the stored object for real (moto's S3 server over HTTP), `flask assets purge`
removes abandoned and deleted objects; cross-site isolation and no credentials in logs.
The asset endpoints themselves (list, get, patch, delete, download-url) are in
test_assets.py."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select, text, update

from app import create_app
from app.media_types import extensions
from app.models import Asset
from app.observability import JsonFormatter, configure_logging
from app.services.assets import final_key, upload_key
from tests.support import Tenant, World, as_administrator
from tests.support.galleries import add_item, create_gallery, galleries_path
from tests.support.http import (
    PROBLEM_KEYS,
    ROLES,
    RoleCase,
    assert_problem,
    check_each,
    check_role_case,
    role_table,
)
from tests.support.uploads import (
    ASSET_FIELDS,
    PNG,
    asset_path,
    assets_path,
    complete,
    download_url,
    object_exists,
    policy_of,
    put_object,
    s3,
    send,
    sha256_of,
    start,
    started,
    stored,
    stored_asset,
    uploads_path,
)

pytestmark = pytest.mark.portable


def assert_refused(response, status: int, field: str) -> dict:
    """A 413/415 problem: the usual shape, plus `errors` naming the refused field."""
    body = json.loads(response.get_data(as_text=True))
    assert response.status_code == status, body
    assert response.mimetype == "application/problem+json"
    assert set(body) == PROBLEM_KEYS | {"errors"}, body
    assert body["status"] == status and body["detail"] and body["title"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert list(body["errors"]) == [field] and body["errors"][field], body
    return body


def fetch(client, tenant: Tenant, person, asset_id) -> bytes:
    """The asset's bytes, through its presigned download URL."""
    got = download_url(client, tenant, person, asset_id)
    assert got.status_code == 200, got.get_json()
    response = requests.get(got.get_json()["url"], timeout=10)
    assert response.status_code == 200
    return response.content


def wait_for(condition, timeout: float = 10) -> bool:
    """Poll `condition` (another thread's progress), up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def lock_waits(world: World) -> int:
    """Sessions of this database waiting on a lock. Read as the server's administrator:
    pg_stat_activity hides other roles' waits from the (non-superuser) owner."""
    url = as_administrator(world.app.extensions["settings"].owner_database_url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'")) or 0
    finally:
        engine.dispose()


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- POST .../uploads --------------------------------------------------------------------------


def test_upload_returns_pending_asset_and_presigned_post(app, client, world, tenant, s3_endpoint):
    member = tenant["member"]
    before = datetime.now(UTC).replace(microsecond=0)
    response = start(client, tenant, member, size=4321, content_type="image/webp",
                     filename="holiday.webp")
    after = datetime.now(UTC)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"asset", "upload"}

    asset = body["asset"]
    assert set(asset) == ASSET_FIELDS  # the storage key is never part of an asset
    assert asset["status"] == "pending"
    assert asset["site_id"] == str(tenant.site.id)
    assert (asset["filename"], asset["content_type"], asset["size_bytes"]) == (
        "holiday.webp", "image/webp", 4321)
    assert asset["sha256"] is None and asset["completed_at"] is None
    assert asset["created_by"] == str(member.id)
    assert (asset["title"], asset["alt_text"], asset["tags"]) == (None, None, [])

    post = body["upload"]
    assert set(post) == {"url", "fields", "expires_at"}
    storage = app.extensions["storage"]
    assert post["url"] == f"{s3_endpoint}/{storage.bucket}"
    key = post["fields"]["key"]
    # An upload key: the form can never name the key a completed asset is served from.
    assert key == f"uploads/orgs/{tenant.org.id}/sites/{tenant.site.id}/{asset['id']}"
    assert "holiday" not in key  # chosen by the server, not from the client's name
    assert stored(world, asset["id"]).key == key
    assert stored(world, asset["id"]).status == "pending"

    fields = post["fields"]
    assert set(fields) == {
        "Content-Type", "key", "policy", "x-amz-algorithm", "x-amz-credential",
        "x-amz-date", "x-amz-signature",
    }
    assert fields["Content-Type"] == "image/webp"

    # moto does not enforce the policy: decode it and check every condition.
    policy = policy_of(post)
    assert set(policy) == {"expiration", "conditions"}
    conditions = sorted(json.dumps(c, sort_keys=True) for c in policy["conditions"])
    assert conditions == sorted(json.dumps(c, sort_keys=True) for c in [
        {"bucket": storage.bucket},
        {"key": key},
        ["eq", "$Content-Type", "image/webp"],
        ["content-length-range", 4321, 4321],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": fields["x-amz-credential"]},
        {"x-amz-date": fields["x-amz-date"]},
    ])
    ttl = app.extensions["settings"].upload_url_ttl_seconds
    assert ttl == 300
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=ttl - 1) <= expiration <= after + timedelta(seconds=ttl)
    assert abs(_utc(post["expires_at"]) - expiration) < timedelta(seconds=2)


def test_each_upload_gets_its_own_key(client, tenant):
    one = started(client, tenant, tenant["member"])
    two = started(client, tenant, tenant["member"])
    assert one["asset"]["id"] != two["asset"]["id"]
    assert one["upload"]["fields"]["key"] != two["upload"]["fields"]["key"]


def test_size_limit(app, client, world, tenant):
    limit = app.extensions["settings"].upload_max_bytes
    body = assert_refused(start(client, tenant, tenant["member"], size=limit + 1), 413,
                          "size_bytes")
    assert str(limit) in body["detail"]
    response = start(client, tenant, tenant["member"], size=limit)
    assert response.status_code == 201, response.get_json()
    assert policy_of(response.get_json()["upload"])["conditions"][1] == [
        "content-length-range", limit, limit]
    with world.maker() as session:  # only the accepted one was recorded
        assert session.scalar(select(func.count()).select_from(Asset)) == 1


def test_content_type_allowlist(app, client, world, tenant):
    allowed = app.extensions["settings"].upload_content_types
    for content_type in ("text/html", "image/svg+xml", "application/octet-stream",
                         "application/x-msdownload"):
        assert content_type not in allowed
        assert_refused(start(client, tenant, tenant["member"], content_type=content_type), 415,
                       "content_type")
    for content_type in allowed:
        response = start(client, tenant, tenant["member"], content_type=content_type)
        assert response.status_code == 201, (content_type, response.get_json())
    with world.maker() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == len(allowed)


BAD_FILENAMES = [
    "../photo.png", "a/b.png", "/etc/passwd", "dir\\photo.png", "..\\..\\x.png", "", "   ",
    ".", "..", "x" * 256, "a\x00b.png", "two\nlines.png", "tab\t.png", "\x1b[31m.png",
    "del\x7f.png", "c1\x85.png", None, 5, ["a.png"],
]
BAD_SIZES = [0, -1, 1.5, "10", "ten", None, True, [10], {"n": 1}]
BAD_SHA256 = [
    "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, sha256_of(PNG).upper(), 64, ["0" * 64],
    " " + "0" * 63,
]


@pytest.mark.parametrize(("field", "values"), [
    ("filename", BAD_FILENAMES),
    ("size_bytes", BAD_SIZES),
    ("sha256", BAD_SHA256),
    ("content_type", ["", "image", "IMAGE/PNG", "image/png; charset=x", "a b/c", 7, None]),
])
def test_bad_upload_requests_are_400(client, world, tenant, field, values):
    valid = {"filename": "photo.png", "content_type": "image/png", "size_bytes": 10}

    def check(value):
        response = client.post(uploads_path(tenant), json={**valid, field: value},
                               headers=tenant["member"].headers)
        assert_problem(response, 400, errors=[field])

    check_each(values, check)
    with world.maker() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 0


def test_unknown_and_missing_fields_are_400(client, tenant):
    valid = {"filename": "photo.png", "content_type": "image/png", "size_bytes": 10}
    for extra in ({"key": "orgs/other/x"}, {"status": "ready"}, {"bucket": "other"}):
        response = client.post(uploads_path(tenant), json={**valid, **extra},
                               headers=tenant["member"].headers)
        assert_problem(response, 400, errors=list(extra))
    for missing in valid:
        body = {k: v for k, v in valid.items() if k != missing}
        response = client.post(uploads_path(tenant), json=body, headers=tenant["member"].headers)
        assert_problem(response, 400, errors=[missing])


def test_unicode_filename_is_accepted_and_kept(client, tenant):
    body = started(client, tenant, tenant["member"], filename="Résumé, été 2024.pdf",
                   content_type="application/pdf")
    assert body["asset"]["filename"] == "Résumé, été 2024.pdf"
    assert "Résumé" not in body["upload"]["fields"]["key"]
    longest = "x" * 251 + ".png"
    assert started(client, tenant, tenant["member"], filename=longest)["asset"]["filename"] == (
        longest)



@pytest.mark.parametrize(("filename", "content_type"), [
    ("photo.jpg", "image/jpeg"), ("photo.JPG", "image/jpeg"), ("photo.jpeg", "image/jpeg"),
    ("photo.png", "image/png"), ("holiday.2024.webp", "image/webp"), ("anim.gif", "image/gif"),
    ("photo.avif", "image/avif"), ("clip.mp4", "video/mp4"), ("SCAN.PDF", "application/pdf"),
    ("report.exe.pdf", "application/pdf"),  # the last extension decides
])
def test_a_file_name_agreeing_with_its_content_type_is_accepted(client, tenant, filename,
                                                                content_type):
    body = started(client, tenant, tenant["member"], filename=filename,
                   content_type=content_type)
    assert body["asset"]["filename"] == filename


@pytest.mark.parametrize(("filename", "content_type"), [
    ("photo.jpg", "image/png"), ("photo.png", "image/jpeg"), ("photo.jpe", "image/jpeg"),
    ("invoice.pdf.exe", "application/pdf"), ("photo", "image/png"), (".png", "image/png"),
    ("photo.png.", "image/png"), ("photo. png", "image/png"), ("photo.png_", "image/png"),
    ("clip.mov", "video/mp4"), ("page.html", "application/pdf"), ("logo.svg", "image/png"),
])
def test_a_file_name_disagreeing_with_its_content_type_is_400(client, world, tenant, filename,
                                                              content_type):
    response = start(client, tenant, tenant["member"], filename=filename,
                     content_type=content_type)
    problem = assert_problem(response, 400, errors={"filename"})
    assert content_type in problem["errors"]["filename"][0], problem
    with world.maker() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 0


def test_the_extensions_of_each_allowed_type(app):
    """The table (app/media_types.py) as the API applies it to the default allowlist."""
    assert {t: extensions(t) for t in app.extensions["settings"].upload_content_types} == {
        "image/jpeg": (".jpg", ".jpeg"), "image/png": (".png",), "image/webp": (".webp",),
        "image/gif": (".gif",), "image/avif": (".avif",), "video/mp4": (".mp4",),
        "application/pdf": (".pdf",),
    }
    assert extensions("text/csv") == (".csv",)  # a type an operator adds: Python's table

# -- complete ----------------------------------------------------------------------------------


def test_real_upload_then_complete(app, client, world, tenant):
    member = tenant["member"]
    body = started(client, tenant, member)
    asset_id = body["asset"]["id"]
    send(body["upload"], PNG)
    response = complete(client, tenant, member, asset_id)
    assert response.status_code == 200, response.get_json()
    done = response.get_json()
    assert set(done) == ASSET_FIELDS
    assert done["status"] == "ready" and done["completed_at"] is not None
    row = stored(world, asset_id)
    assert row.status == "ready" and row.completed_at is not None
    assert object_exists(app, row.key)

    again = complete(client, tenant, member, asset_id)  # idempotent
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "ready"
    assert again.get_json()["completed_at"] == done["completed_at"]

    got = client.get(asset_path(tenant, asset_id), headers=tenant["viewer"].headers)
    assert got.status_code == 200 and got.get_json()["status"] == "ready"


def test_the_upload_form_cannot_swap_verified_bytes(client, world, tenant):
    """The presigned POST stays valid for minutes after `complete`: sent again with other
    bytes of the same size and type, it must not reach what was verified and is served."""
    member = tenant["member"]
    body = started(client, tenant, member, sha256=sha256_of(PNG))
    asset_id = body["asset"]["id"]
    send(body["upload"], PNG)
    assert complete(client, tenant, member, asset_id).status_code == 200

    swapped = bytes(reversed(PNG))
    assert len(swapped) == len(PNG) and swapped != PNG
    send(body["upload"], swapped)  # the same form, still within its life
    assert complete(client, tenant, member, asset_id).status_code == 200

    got = download_url(client, tenant, member, asset_id)
    assert got.status_code == 200, got.get_json()
    fetched = requests.get(got.get_json()["url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert sha256_of(fetched.content) == stored(world, asset_id).sha256 == sha256_of(PNG)


def test_a_failed_verification_leaves_nothing_at_the_final_key(app, client, world, tenant):
    member = tenant["member"]
    body = started(client, tenant, member, sha256=sha256_of(PNG))
    asset_id = body["asset"]["id"]
    send(body["upload"], bytes(reversed(PNG)))  # same size and type, other bytes
    problem = assert_problem(complete(client, tenant, member, asset_id), 409, errors=["sha256"])
    assert problem["type"].endswith("/upload-mismatch")
    row = stored(world, asset_id)
    assert (row.status, row.key) == ("pending", body["upload"]["fields"]["key"])
    assert not object_exists(app, final_key(row))
    # The client may upload again with the same form and complete.
    send(body["upload"], PNG)
    assert complete(client, tenant, member, asset_id).status_code == 200
    row = stored(world, asset_id)
    assert row.status == "ready" and row.key == final_key(row)
    assert object_exists(app, row.key)
    assert not object_exists(app, body["upload"]["fields"]["key"])  # removed once copied
    assert fetch(client, tenant, member, asset_id) == PNG


def test_complete_checks_the_copy_an_earlier_attempt_left(app, client, world, tenant):
    """An attempt whose commit failed after it removed the upload object left its copy
    behind: completing again checks that copy (only `complete` writes final keys)."""
    member = tenant["member"]
    body = started(client, tenant, member, sha256=sha256_of(PNG))
    send(body["upload"], PNG)
    row = stored(world, body["asset"]["id"])
    assert s3(app).copy(row.key, final_key(row))
    s3(app).delete(row.key)
    response = complete(client, tenant, member, row.id)
    assert response.status_code == 200, response.get_json()
    assert fetch(client, tenant, member, row.id) == PNG


def test_an_upload_signed_before_upload_keys_completes_in_place(app, client, world, tenant):
    """Rows from before uploads had keys of their own point at the final key already."""
    member = tenant["member"]
    legacy = stored_asset(app, world, tenant.site, member, status="pending")
    with world.maker() as session, session.begin():
        row = session.get(Asset, legacy.id)
        s3(app).copy(row.key, final_key(row))
        s3(app).delete(row.key)
        row.key = final_key(row)
    response = complete(client, tenant, member, legacy.id)
    assert response.status_code == 200, response.get_json()
    assert stored(world, legacy.id).key == final_key(stored(world, legacy.id))
    assert fetch(client, tenant, member, legacy.id) == PNG


def test_concurrent_completes_wait_for_each_other(app, world, tenant, is_postgres):
    """`complete` locks the asset: one arriving while another holds it waits, then finds
    the asset ready, and does not copy over what the first verified."""
    if not is_postgres:
        pytest.skip("row locks are PostgreSQL's")
    member = tenant["member"]
    client = app.test_client()
    body = started(client, tenant, member, sha256=sha256_of(PNG))
    asset_id = uuid.UUID(body["asset"]["id"])
    send(body["upload"], PNG)
    result: list[Any] = []
    with world.maker() as session, session.begin():  # the first complete, by hand
        first = session.scalars(select(Asset).where(Asset.id == asset_id).with_for_update()).one()
        assert s3(app).copy(first.key, final_key(first))
        send(body["upload"], bytes(reversed(PNG)))  # the form is used again meanwhile
        second = threading.Thread(
            target=lambda: result.append(complete(app.test_client(), tenant, member, asset_id)))
        second.start()
        assert wait_for(lambda: lock_waits(world) > 0), "the second complete did not wait"
        first.key, first.status, first.completed_at = final_key(first), "ready", datetime.now(UTC)
    second.join(timeout=30)
    assert not second.is_alive() and result[0].status_code == 200, result[0].get_json()
    assert result[0].get_json()["status"] == "ready"
    assert fetch(client, tenant, member, asset_id) == PNG


@pytest.fixture
def storage_down(app: Any, tmp_path: Any) -> Iterator[Any]:
    """The app with its storage at a port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = app.extensions["settings"]
    down = create_app({
        "database_url": base.database_url,
        "migration_database_url": base.migration_database_url,
        "instance_path": str(tmp_path / "instance"),
        "jwt_keys": base.jwt_keys,
        "ratelimit_enabled": False,
        "s3_endpoint_url": f"http://127.0.0.1:{port}",
        "s3_max_attempts": 1,
        "log_level": "CRITICAL",
    })
    down.config["TESTING"] = True
    yield down
    down.extensions["actor_cache"].close()
    down.extensions["db.engine"].dispose()


def test_storage_unavailable_is_503_with_retry_after(client, world, tenant, storage_down):
    member = tenant["member"]
    body = started(client, tenant, member)
    send(body["upload"], PNG)
    response = complete(storage_down.test_client(), tenant, member, body["asset"]["id"])
    problem = assert_problem(response, 503)
    assert response.headers["Retry-After"].isdigit()
    endpoint = storage_down.extensions["settings"].s3_endpoint_url
    assert endpoint.split("//")[1] not in response.get_data(as_text=True)
    assert "storage" in problem["detail"].lower()
    assert stored(world, body["asset"]["id"]).status == "pending"
    # Storage back: the same asset completes.
    assert complete(client, tenant, member, body["asset"]["id"]).status_code == 200


@pytest.mark.parametrize("stored_bytes", [PNG + b"x", PNG[:-1], b"x"],
                         ids=["more", "less", "tiny"])
def test_complete_refuses_wrong_size(client, world, tenant, stored_bytes):
    member = tenant["member"]
    body = started(client, tenant, member, PNG)
    send(body["upload"], stored_bytes)  # moto does not enforce content-length-range
    problem = assert_problem(complete(client, tenant, member, body["asset"]["id"]), 409,
                             errors=["size_bytes"])
    assert problem["type"].endswith("/upload-mismatch"), problem
    assert str(len(stored_bytes)) in problem["errors"]["size_bytes"][0]
    assert stored(world, body["asset"]["id"]).status == "pending"
    assert stored(world, body["asset"]["id"]).completed_at is None


def test_complete_refuses_wrong_content_type(client, world, tenant):
    member = tenant["member"]
    body = started(client, tenant, member, content_type="image/png")
    send(body["upload"], PNG, content_type="text/html")
    problem = assert_problem(complete(client, tenant, member, body["asset"]["id"]), 409,
                             errors=["content_type"])
    assert problem["type"].endswith("/upload-mismatch"), problem
    assert stored(world, body["asset"]["id"]).status == "pending"


def test_complete_refuses_missing_object(client, world, tenant):
    member = tenant["member"]
    body = started(client, tenant, member)
    problem = assert_problem(complete(client, tenant, member, body["asset"]["id"]), 409)
    assert stored(world, body["asset"]["id"]).status == "pending"
    # Uploading afterwards still works: the asset was left as it was.
    send(body["upload"], PNG)
    assert complete(client, tenant, member, body["asset"]["id"]).status_code == 200
    assert problem["type"].endswith("/upload-missing"), problem


def test_complete_checks_the_declared_sha256(client, world, tenant):
    member = tenant["member"]
    good = started(client, tenant, member, sha256=sha256_of(PNG))
    assert good["asset"]["sha256"] == sha256_of(PNG)
    send(good["upload"], PNG)
    response = complete(client, tenant, member, good["asset"]["id"])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ready"

    other = bytes(reversed(PNG))  # same size and type, other bytes
    bad = started(client, tenant, member, sha256=sha256_of(PNG))
    send(bad["upload"], other)
    problem = assert_problem(complete(client, tenant, member, bad["asset"]["id"]), 409,
                             errors=["sha256"])
    assert problem["type"].endswith("/upload-mismatch"), problem
    assert stored(world, bad["asset"]["id"]).status == "pending"



def test_complete_documents_both_conflicts(client):
    """The mismatch is about what storage holds, not about the request: a 409 beside
    `upload-missing`, not a validation error."""
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/v1/orgs/{org_id}/sites/{site_id}/assets/{asset_id}/complete"]
    conflict = operation["post"]["responses"]["409"]
    assert "upload-missing" in conflict["description"]
    assert "upload-mismatch" in conflict["description"]
    assert set(conflict["content"]) == {"application/problem+json"}

def test_complete_of_unknown_or_deleted_asset_is_404(app, client, world, tenant):
    member = tenant["member"]
    assert_problem(complete(client, tenant, member, uuid.uuid4()), 404)
    deleted = stored_asset(app, world, tenant.site, member, status="pending",
                           deleted_at=datetime.now(UTC))
    assert_problem(complete(client, tenant, member, deleted.id), 404)
    assert stored(world, deleted.id).status == "pending"


def test_only_uploader_or_site_admin_completes(app, client, world, tenant):
    """Another member and a viewer are refused even when the object is perfect."""
    uploader = tenant["site_member"]
    body = started(client, tenant, uploader)
    send(body["upload"], PNG)
    asset_id = body["asset"]["id"]
    for role in ("member", "viewer", "site_viewer"):
        assert_problem(complete(client, tenant, tenant[role], asset_id), 403)
        assert stored(world, asset_id).status == "pending"
    assert_problem(complete(client, tenant, tenant["outsider"], asset_id), 404)
    assert complete(client, tenant, tenant["site_site_admin"], asset_id).status_code == 200
    assert stored(world, asset_id).status == "ready"


def test_uploader_who_lost_the_member_role_cannot_complete(app, client, world, tenant):
    from app.models import SiteMembership

    uploader = tenant["site_member"]
    body = started(client, tenant, uploader)
    send(body["upload"], PNG)
    with world.maker() as session, session.begin():
        session.execute(update(SiteMembership).where(SiteMembership.user_id == uploader.id)
                        .values(role="viewer"))
    app.extensions["actor_cache"].invalidate("*")
    assert_problem(complete(client, tenant, uploader, body["asset"]["id"]), 403)
    assert stored(world, body["asset"]["id"]).status == "pending"


# -- role table: upload and complete -----------------------------------------------------------


@dataclass
class UploadTenant(Tenant):
    pending: uuid.UUID | None = None  # uploaded by `member`, object stored, not completed


@pytest.fixture
def ut(app, world: World, tenant: Tenant) -> UploadTenant:
    pending = stored_asset(app, world, tenant.site, tenant["member"], status="pending")
    return UploadTenant(tenant.org, tenant.site, tenant.people, pending=pending.id)


def _count_assets(client, t):
    with World(client.application).maker() as session:
        return session.scalar(select(func.count()).select_from(Asset).where(
            Asset.site_id == t.site.id))


def _status(client, t):
    with World(client.application).maker() as session:
        return session.get(Asset, t.pending).status


CASES = {
    "upload": RoleCase(
        send=lambda c, t, p, h: start(c, t, p, headers=h),
        authz=("upload", "Site"),
        state=_count_assets,
    ),
    "complete": RoleCase(
        send=lambda c, t, p, h: complete(c, t, p, t.pending, headers=h),
        authz=("complete", "Asset"),
        state=_status,
        resource_id=lambda c, t: t.pending,
    ),
}
ROLE_TABLE = {
    # org_admin, site_admin, member, viewer, site_site_admin, site_member, site_viewer, outsider
    "upload": (201, 201, 201, 403, 201, 201, 403, 404),
    "complete": (200, 200, 200, 403, 200, 403, 403, 404),
}
assert len(ROLES) == 8


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_role_table(client, ut, action, role, expected):
    check_role_case(client, ut, CASES[action], role, expected)


# -- flask assets purge ------------------------------------------------------------------------


def test_purge_removes_abandoned_and_deleted_objects(app, world, tenant):
    member = tenant["member"]
    now = datetime.now(UTC)
    old_pending = stored_asset(app, world, tenant.site, member, status="pending",
                               created_at=now - timedelta(hours=2))
    fresh_pending = stored_asset(app, world, tenant.site, member, status="pending")
    deleted_ready = stored_asset(app, world, tenant.site, member, deleted_at=now)
    old_ready = stored_asset(app, world, tenant.site, member,
                             created_at=now - timedelta(days=30))
    live = stored_asset(app, world, tenant.site, member)
    for asset in (old_pending, fresh_pending, deleted_ready, old_ready, live):
        assert object_exists(app, asset.key)

    result = app.test_cli_runner().invoke(
        args=["assets", "purge", "--pending-older-than", "3600"])
    assert result.exit_code == 0, result.output
    assert "purged 2 asset(s)" in result.output

    for gone in (old_pending, deleted_ready):
        assert not object_exists(app, gone.key)
        row = stored(world, gone.id)
        assert row.purged_at is not None and row.deleted_at is not None
    for kept in (fresh_pending, old_ready, live):
        assert object_exists(app, kept.key)
        row = stored(world, kept.id)
        assert row.purged_at is None and row.deleted_at is None
    assert stored(world, fresh_pending.id).status == "pending"

    again = app.test_cli_runner().invoke(args=["assets", "purge", "--pending-older-than", "3600"])
    assert again.exit_code == 0 and "purged 0 asset(s)" in again.output


def test_purge_default_age_is_the_setting(app, world, tenant):
    age = app.extensions["settings"].purge_pending_after_seconds
    now = datetime.now(UTC)
    older = stored_asset(app, world, tenant.site, None, status="pending",
                         created_at=now - timedelta(seconds=age + 60))
    younger = stored_asset(app, world, tenant.site, None, status="pending",
                           created_at=now - timedelta(seconds=age - 600))
    result = app.test_cli_runner().invoke(args=["assets", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged 1 asset(s)" in result.output
    assert not object_exists(app, older.key) and object_exists(app, younger.key)


def test_api_delete_then_purge_removes_the_object(app, client, world, tenant):
    member = tenant["member"]
    body = started(client, tenant, member)
    send(body["upload"], PNG)
    assert complete(client, tenant, member, body["asset"]["id"]).status_code == 200
    key = stored(world, body["asset"]["id"]).key
    assert client.delete(asset_path(tenant, body["asset"]["id"]),
                         headers=member.headers).status_code == 204
    assert object_exists(app, key)  # soft delete: the object waits for the purge
    assert stored(world, body["asset"]["id"]).purged_at is None
    result = app.test_cli_runner().invoke(args=["assets", "purge"])
    assert result.exit_code == 0 and "purged 1 asset(s)" in result.output
    assert not object_exists(app, key)
    assert stored(world, body["asset"]["id"]).purged_at is not None


def test_purge_removes_leftover_upload_objects(app, client, world, tenant):
    member = tenant["member"]
    storage = s3(app)
    for keys in storage.keys("uploads/"):  # other tests' leftovers would count too
        for key in keys:
            storage.delete(key)
    now = datetime.now(UTC)
    # A completed asset whose form was used again after `complete`.
    body = started(client, tenant, member)
    send(body["upload"], PNG)
    assert complete(client, tenant, member, body["asset"]["id"]).status_code == 200
    send(body["upload"], bytes(reversed(PNG)))
    ready = stored(world, body["asset"]["id"])
    resent = body["upload"]["fields"]["key"]
    # A deleted asset with its upload object, an abandoned upload with a final copy a
    # failed delete left, a live upload, an object of no asset, and one the app never made.
    deleted = stored(world, stored_asset(app, world, tenant.site, member, deleted_at=now).id)
    put_object(app, upload_key(deleted), PNG)
    abandoned = stored(world, stored_asset(app, world, tenant.site, member, status="pending",
                                           created_at=now - timedelta(days=2)).id)
    put_object(app, final_key(abandoned), PNG)
    live = stored_asset(app, world, tenant.site, member, status="pending")
    orphan = f"uploads/orgs/{uuid.uuid4()}/sites/{uuid.uuid4()}/{uuid.uuid4()}"
    foreign = "uploads/README"
    for key in (orphan, foreign):
        put_object(app, key, PNG)

    result = app.test_cli_runner().invoke(args=["assets", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged 2 asset(s), 2 leftover upload(s)" in result.output, result.output
    for gone in (resent, orphan, upload_key(deleted), final_key(deleted), abandoned.key,
                 final_key(abandoned)):
        assert not object_exists(app, gone), gone
    for kept in (ready.key, live.key, foreign):
        assert object_exists(app, kept), kept
    assert stored(world, ready.id).purged_at is None
    assert fetch(client, tenant, member, ready.id) == PNG
    storage.delete(foreign)


# -- isolation between sites -------------------------------------------------------------------


@pytest.fixture
def other_site(app, world, tenant):
    """A second site of the same organization, with a ready and a pending asset (objects
    stored), both uploaded by the org member (who may act on every site of the org)."""
    site = world.site(tenant.org, "Other site")
    ready = stored_asset(app, world, site, tenant["member"])
    pending = stored_asset(app, world, site, tenant["member"], status="pending")
    return site, ready, pending


def test_other_sites_asset_is_invisible_through_this_site(app, client, world, tenant,
                                                          other_site):
    site, ready, pending = other_site
    for role in ("org_admin", "member"):  # they hold roles on both sites
        person = tenant[role]
        for asset in (ready, pending):
            assert_problem(client.get(asset_path(tenant, asset.id), headers=person.headers), 404)
            assert_problem(complete(client, tenant, person, asset.id), 404)
            assert_problem(download_url(client, tenant, person, asset.id), 404)
            assert_problem(client.patch(asset_path(tenant, asset.id), json={"title": "x"},
                                        headers=person.headers), 404)
            assert_problem(client.delete(asset_path(tenant, asset.id), headers=person.headers),
                           404)
        listed = client.get(assets_path(tenant), query_string={"limit": 100},
                            headers=person.headers)
        assert listed.status_code == 200 and listed.get_json()["items"] == []
    assert stored(world, pending.id).status == "pending"
    assert stored(world, ready.id).deleted_at is None and stored(world, ready.id).title is None
    # Through its own path the same asset is there (the 404s were not for a missing row).
    own = f"/v1/orgs/{tenant.org.id}/sites/{site.id}/assets/{ready.id}"
    assert client.get(own, headers=tenant["member"].headers).status_code == 200


def test_site_only_roles_do_not_reach_other_sites(app, client, tenant, other_site):
    site, ready, pending = other_site
    base = f"/v1/orgs/{tenant.org.id}/sites/{site.id}"
    for role in ("site_site_admin", "site_member", "site_viewer"):
        person = tenant[role]
        for path in (f"{base}/assets/{ready.id}", f"{base}/assets/{ready.id}/download-url",
                     f"{base}/assets"):
            assert client.get(path, headers=person.headers).status_code in (403, 404)
        assert client.post(f"{base}/assets/{pending.id}/complete",
                           headers=person.headers).status_code in (403, 404)
        assert client.post(f"{base}/uploads", json={
            "filename": "a.png", "content_type": "image/png", "size_bytes": 1},
            headers=person.headers).status_code in (403, 404)


def test_other_organizations_asset_is_invisible(app, client, world, tenant):
    other = world.tenant("Other org")
    foreign = stored_asset(app, world, other.site, other["member"])
    person = tenant["org_admin"]
    assert_problem(client.get(asset_path(tenant, foreign.id), headers=person.headers), 404)
    assert_problem(download_url(client, tenant, person, foreign.id), 404)
    assert_problem(complete(client, tenant, person, foreign.id), 404)


def test_other_sites_asset_cannot_be_attached(app, client, world, tenant, other_site):
    _, ready, _ = other_site
    member = tenant["member"]
    own = stored_asset(app, world, tenant.site, member)
    gallery = create_gallery(client, tenant, member)
    assert_problem(add_item(client, tenant, gallery["id"], member, ready.id), 400,
                   errors=["asset_id"])
    response = client.post(galleries_path(tenant),
                           json={"title": "Cover", "cover_asset_id": str(ready.id)},
                           headers=member.headers)
    assert_problem(response, 400, errors=["cover_asset_id"])
    # The same calls with an asset of this site work.
    assert add_item(client, tenant, gallery["id"], member, own.id).status_code == 201
    response = client.post(galleries_path(tenant),
                           json={"title": "Cover", "cover_asset_id": str(own.id)},
                           headers=member.headers)
    assert response.status_code == 201, response.get_json()


# -- logs --------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        # moto's S3 server runs in this process, on its own threads, and logs every request
        # line it serves (signatures included): that is the storage's log, not the app's.
        if record.thread == self.thread:
            self.lines.append(self.format(record))


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_no_presigned_url_or_signature_in_logs(app, client, tenant, level):
    root = logging.getLogger()
    capture = _Capture()
    old_level = logging.getLevelName(root.level)
    root.addHandler(capture)
    configure_logging(level)  # what LOG_LEVEL does at start-up
    try:
        member = tenant["member"]
        body = started(client, tenant, member, sha256=sha256_of(PNG))
        send(body["upload"], PNG)
        done = complete(client, tenant, member, body["asset"]["id"])
        assert done.status_code == 200
        got = download_url(client, tenant, member, body["asset"]["id"])
        assert got.status_code == 200
        wrong = started(client, tenant, member)
        send(wrong["upload"], PNG + b"x")
        assert complete(client, tenant, member, wrong["asset"]["id"]).status_code == 409
    finally:
        root.removeHandler(capture)
        configure_logging(old_level)
    assert capture.lines, "nothing was logged: the capture does not work"
    text = "\n".join(capture.lines)
    url = got.get_json()["url"]
    secrets = [
        url, url.split("?", 1)[1], url.split("X-Amz-Signature=")[1],
        body["upload"]["fields"]["policy"], body["upload"]["fields"]["x-amz-signature"],
        wrong["upload"]["fields"]["policy"], wrong["upload"]["fields"]["x-amz-signature"],
    ]
    for secret in secrets:
        assert secret not in text, secret
    assert "X-Amz-Signature" not in text and "x-amz-signature" not in text.lower()
