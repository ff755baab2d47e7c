"""`flask demo` as README runs it: it says so and moves when the local S3 port is taken by
another program, refuses a taken API address naming BIND, and SIGTERM stops gunicorn and
the S3 server it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
FLASK = str(Path(sys.executable).parent / "flask")


@pytest.fixture
def squatter() -> Iterator[int]:
    """Another program holding a port (it accepts connections and answers nothing)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "S3_ENDPOINT_URL", "BIND", "DEMO_S3_PORT")}
    return {**env, "INSTANCE_PATH": str(tmp_path / "instance"), "WEB_CONCURRENCY": "1",
            "LOG_LEVEL": "WARNING", **extra}


def run_demo(env: dict[str, str], log: Path) -> subprocess.Popen[Any]:
    with log.open("wb") as out:
        return subprocess.Popen([FLASK, "--app", "wsgi", "demo"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def child_pids(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # migrates SQLite, starts moto and gunicorn: ~10 s
def test_a_taken_s3_port_is_said_and_avoided_and_sigterm_stops_everything(tmp_path, squatter):
    port = free_port()
    log = tmp_path / "demo.log"
    demo = run_demo(demo_env(tmp_path, BIND=f"127.0.0.1:{port}", DEMO_S3_PORT=str(squatter)),
                    log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert demo.poll() is None, log.read_text()
            try:
                # /readyz checks the bucket: the app talks to the S3 server the demo started.
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # polling a server that is starting
        output = log.read_text()
        assert f"port {squatter} is taken by another program" in output, output
        s3_port = int(output.split("local S3 (moto) at http://127.0.0.1:")[1].split(",")[0])
        assert s3_port != squatter and listening(s3_port)
        children = child_pids(demo.pid)
        assert len(children) == 2, children  # moto and gunicorn's master

        demo.send_signal(signal.SIGTERM)  # to `flask demo` alone, as a supervisor would
        assert demo.wait(timeout=40) == 0, log.read_text()
        assert not any(alive(pid) for pid in children), log.read_text()
        assert not listening(port) and not listening(s3_port)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_a_taken_api_address_is_refused_naming_bind(tmp_path, squatter):
    log = tmp_path / "demo.log"
    demo = run_demo(demo_env(tmp_path, BIND=f"127.0.0.1:{squatter}"), log)
    assert demo.wait(timeout=60) != 0
    assert f"127.0.0.1:{squatter} is taken" in log.read_text() and "BIND=" in log.read_text()
