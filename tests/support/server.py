"""The app under gunicorn, as production serves it: its own process, real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment_of(app: Any, **extra: str) -> dict[str, str]:
    """The variables that configure a process like the suite's `app` (same database, keys,
    storage)."""
    settings = app.extensions["settings"]
    return {
        "PATH": os.environ["PATH"], "LANG": "C.UTF-8",
        "DATABASE_URL": settings.database_url,
        "MIGRATION_DATABASE_URL": settings.migration_database_url,
        "INSTANCE_PATH": settings.instance_path,
        "JWT_KEYS": json.dumps(settings.jwt_keys),
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "RATELIMIT_ENABLED": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@contextlib.contextmanager
def gunicorn(app: Any, log: Path, **extra: str) -> Iterator[str]:
    """gunicorn with gunicorn.conf.py and one worker (unless `extra` says otherwise),
    configured like `app`; yields its URL."""
    port = free_port()
    env = environment_of(app, BIND=f"127.0.0.1:{port}", **{"WEB_CONCURRENCY": "1", **extra})
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-4000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)  # polling a server that is starting
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
