"""The app as separate gunicorn masters in production mode, on this run's PostgreSQL
database, a Redis database of their own and moto's S3: what several hosts look like."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.support import APP_ROLE, as_role

ROOT = Path(__file__).resolve().parent.parent.parent
# The nodes' limits, on the local Redis; emptied by `empty_limits`. One database per
# pytest-xdist worker: one worker's emptying must not reset the other's counts.
REDIS_DB = 13 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server's process ended ({process.returncode}):\n"
                        f"{log.read_text()[-4000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.25)  # polling a server that is starting: no expiry is being waited on
    pytest.fail(f"gunicorn was not ready within 120 s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # bash and gunicorn (master and workers)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def empty_limits() -> None:
    redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()


def node_env(app: Any, database_url: str, s3_endpoint: str, home: Path,
             **overrides: str) -> dict[str, str]:
    """Environment of a production node sharing the test app's database and signing keys
    (tokens the test client mints are valid there)."""
    settings = app.extensions["settings"]
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(home), "LANG": "C.UTF-8", "INSTANCE_PATH": str(home),
        "APP_ENV": "production", "PUBLIC_BASE_URL": "https://api.test",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": as_role(database_url, APP_ROLE),
        "MIGRATION_DATABASE_URL": database_url,
        "JWT_KEYS": json.dumps(settings.jwt_keys),
        "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "S3_ENDPOINT_URL": s3_endpoint, "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
        "WEB_CONCURRENCY": "1", "LOG_LEVEL": "warning",
        **overrides,
    }


@dataclass
class Node:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        stop(self.process)



def start_node(env: dict[str, str], log: Path) -> Node:
    """A gunicorn master (and its workers) in a session of its own, once it is ready."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
            env={**env, "BIND": f"127.0.0.1:{port}"}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node = Node(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(process, node.url, log)
    except BaseException:
        node.stop()
        raise
    return node
