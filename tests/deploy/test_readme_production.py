"""README's production section, run as written: its ```sh blocks, in order, are the script.

Only what must differ on a shared test server is replaced: the role and database names
(a unique `tenant_api_...` prefix), the hosts (this PostgreSQL, this Redis, moto's S3
server), the key file's directory and the port. The last block (gunicorn) keeps running;
then a client registers, creates an organization and a site, mints an API key and an
ingest key and uses them, over HTTP. The database and both roles are dropped afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from sqlalchemy import create_engine, text

from tests.support import server_url
from tests.support.nodes import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent.parent
SECTION = "## Production"


def readme_blocks() -> list[str]:
    """The ```sh blocks of README's production section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)


@pytest.fixture
def names() -> Iterator[str]:
    """A unique prefix for the roles and the database; all three dropped at the end."""
    prefix = f"tenant_api_{uuid.uuid4().hex[:8]}"
    yield prefix
    admin = create_engine(server_url().set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {prefix} WITH (FORCE)"))
        for role in ("owner", "app"):
            conn.execute(text(f"DROP ROLE IF EXISTS {prefix}_{role}"))
    admin.dispose()


def substituted(script: str, names: str, s3_endpoint: str, key_dir: Path, port: int) -> str:
    server = server_url()
    admin = server.username + (f":{server.password}" if server.password else "")
    database = f"{server.host or '127.0.0.1'}:{server.port or 5432}"
    replacements = [
        ("tenant_api", names),
        ("postgres@db.internal", f"{admin}@{database}"),
        ("db.internal", database),
        ("redis://redis.internal:6379/0", "redis://127.0.0.1:6379/0"),
        ("https://s3.eu-west-1.amazonaws.com", s3_endpoint),
        ("/var/lib/tenant-api", str(key_dir)),
        ("BIND=127.0.0.1:8000", f"BIND=127.0.0.1:{port}"),
    ]
    for old, new in replacements:
        assert old in script, f"README's production section no longer mentions {old}"
        script = script.replace(old, new)
    return script


def call(method: str, url: str, expected: int, **kw: Any) -> Any:
    response = requests.request(method, url, timeout=30, **kw)
    assert response.status_code == expected, (method, url, response.status_code, response.text)
    return response.json() if response.content else None


@pytest.mark.slow  # 15-30 s: three app starts (migrate, keys add, gunicorn's workers)
def test_the_readme_production_setup_serves_the_api(names, s3_endpoint, tmp_path):
    blocks = readme_blocks()
    assert len(blocks) == 5, "roles and database, environment, migrate, first key, gunicorn"
    assert blocks[-1].strip() == "gunicorn -c gunicorn.conf.py wsgi:app"
    port = free_port()
    key_dir = tmp_path / "keys"
    script = substituted("\n".join(blocks), names, s3_endpoint, key_dir, port)
    # The operator's bucket exists before the app starts (production never creates it).
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-1",
                 aws_access_key_id="test", aws_secret_access_key="test").create_bucket(
        Bucket="tenant-api-uploads", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    # What an operator's shell has: flask and gunicorn on PATH, nothing of this test run.
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    log = tmp_path / "script.log"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(process, base, log)
        ready_after = time.monotonic() - started
        key_file = key_dir / "jwt-keys.json"
        assert key_file.stat().st_mode & 0o777 == 0o600

        email, password = f"ops-{uuid.uuid4().hex[:8]}@example.com", "a long enough password"
        call("POST", f"{base}/v1/auth/register", 202, json={"email": email, "password": password})
        token = call("POST", f"{base}/v1/auth/login", 200,
                     json={"email": email, "password": password})["access_token"]
        me = {"Authorization": f"Bearer {token}"}
        org = call("POST", f"{base}/v1/orgs", 201, json={"name": "Ops"}, headers=me)
        orgs = f"{base}/v1/orgs/{org['id']}"
        # Reading one's own grants goes through a SECURITY DEFINER function.
        site = call("POST", f"{orgs}/sites", 201, json={"name": "Shop"}, headers=me)
        sites = f"{orgs}/sites/{site['id']}"

        api_key = call("POST", f"{orgs}/api-keys", 201, headers=me,
                       json={"name": "ci", "role": "member", "site_id": site["id"]})
        machine = {"Authorization": f"Bearer {api_key['secret']}"}
        assert call("GET", sites, 200, headers=machine)["id"] == site["id"]

        ingest_key = call("POST", f"{sites}/ingest-keys", 201, json={"name": "web"}, headers=me)
        event = {"event_id": str(uuid.uuid4()), "name": "page.view",
                 "timestamp": datetime.now(UTC).isoformat(), "distinct_id": "visitor-1"}
        batch = call("POST", f"{base}/v1/events/batch", 200, json={"events": [event]},
                     headers={"Authorization": f"Bearer {ingest_key['secret']}"})
        assert batch["accepted"] == 1, batch
        listed = call("GET", f"{sites}/events", 200, headers=machine)
        assert [e["event_id"] for e in listed["items"]] == [event["event_id"]]
        print(f"README's production setup ready in {ready_after:.1f} s, "
              f"API used by {time.monotonic() - started:.1f} s")
    finally:
        stop(process)
