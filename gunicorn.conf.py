"""gunicorn settings; every value can be overridden from the environment (the variables
are documented in docs/configuration.md, generated from app/config.py)."""

import atexit
import json
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

# Metrics (app/metrics.py): the workers write theirs to files a scrape adds up. The
# directory must be named before anything imports prometheus_client (which picks its
# mode once, at import: the app's import below does) and before the workers fork, so
# that they inherit it. One per master; emptied at its start.
_METRICS_DIR_MADE = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
_MASTER = os.getpid()
if _METRICS_DIR_MADE:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tenant-api-metrics-")
_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]


@atexit.register
def _remove_metrics_dir():
    """The master removes the directory it made (the workers, forked, leave it alone)."""
    if _METRICS_DIR_MADE and os.getpid() == _MASTER:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)

from gunicorn import glogging, util  # noqa: E402 - after the metrics directory is set

from app.errors import PROBLEM_JSON, TYPE_BASE  # noqa: E402
from app.observability import ProcessJsonFormatter  # noqa: E402
from app.uri import MAX_REQUEST_LINE  # noqa: E402

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
# sync: gthread with keep-alive (even one thread per worker, so no new thread-safety
# questions) was measured no cheaper per event batch in the workers (bench/ingest.py,
# issue 17: 4.19 vs 4.16 ms of worker CPU per request, and 3.3-3.6 vs 2.9-3.6 ms one
# client at a time); what it saves is the clients' connection setup (the /healthz floor
# rose ~50%), which the reverse proxy in front (README) bears for browsers. Nor were two
# workers of two threads faster: 45% of the raw COPY's event rate against sync's 50%, back
# to back, each against as many COPY writers as requests served at once.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = 500
# The app writes one JSON line per request itself (app/observability.py: client address,
# route, request id, user agent...); gunicorn's access log would repeat it without the
# route or the request id (and with query strings). gunicorn's own lines are JSON too.
accesslog = None
errorlog = "-"


class JsonLogger(glogging.Logger):
    """gunicorn's error log (and access log, were it on) in the app's JSON lines."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(ProcessJsonFormatter())


logger_class = JsonLogger
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's largest; the app refuses a shorter target itself, with a problem (app/uri.py).
limit_request_line = MAX_REQUEST_LINE


def _write_problem(sock, status, reason, message):
    """gunicorn's own refusals (a request line too long, malformed headers), made before
    the app sees the request, answered as problem+json like every other error rather than
    gunicorn's HTML page. `message` may quote the request: it is not echoed."""
    detail = (f"The request line is longer than {MAX_REQUEST_LINE} bytes." if status == 414
              else f"{reason}.")
    body = json.dumps({
        "type": TYPE_BASE + reason.lower().replace(" ", "-"), "title": reason,
        "status": status, "detail": detail, "request_id": None,
    }).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _write_problem


def on_starting(server):
    """Forget the samples of an earlier run that used the same directory."""
    for stale in Path(_METRICS_DIR).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A worker that ended takes its live gauges (connections in use) with it; its
    counters stay in the sums, as counters must."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

