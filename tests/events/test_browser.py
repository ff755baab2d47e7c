"""Events from a real browser on another origin: Debian's chromium, driven by playwright,
loads a page from one loopback origin and sends events to the API on another, the three
ways analytics scripts do; each event is read back through the API. The same page on an
origin the key does not allow stores nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support import Tenant
from tests.support.browser import chromium
from tests.support.keys import create_ingest_key
from tests.support.live import serve

pytestmark = pytest.mark.browser

# The page's script: `send(how, api, key, id)` sends one event `id` the way `how` says.
PAGE = b"""<!doctype html><meta charset="utf-8"><title>shop</title><script>
function body(id, key) {
  const event = {event_id: id, name: "page.view", distinct_id: "visitor",
                 timestamp: new Date().toISOString(), properties: {path: location.pathname}};
  return key ? JSON.stringify({key, events: [event]}) : JSON.stringify({events: [event]});
}
async function send(how, api, key, id) {
  const url = api + "/v1/events/batch";
  if (how === "fetch") {  // JSON + Authorization: preflighted
    const r = await fetch(url, {method: "POST", body: body(id),
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + key}});
    return r.status;
  }
  if (how === "keepalive") {  // text/plain, the key in the body: a simple request
    const r = await fetch(url, {method: "POST", keepalive: true, body: body(id, key),
      headers: {"Content-Type": "text/plain"}});
    return r.status;
  }
  // sendBeacon when the page is hidden (the visitor leaves)
  addEventListener("pagehide", () => navigator.sendBeacon(url, body(id, key)));
  return navigator.sendBeacon ? 0 : -1;
}
</script>"""


@contextmanager
def page_origin() -> Iterator[str]:
    """Another origin on loopback serving the customer's page."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def recording(app: Any, seen: list[tuple[str, int]]) -> Callable[..., Any]:
    """The app, noting (method, status) of each request to the events endpoint."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: Any, *rest: Any) -> Any:
            if environ.get("PATH_INFO") == "/v1/events/batch":
                seen.append((environ["REQUEST_METHOD"], int(status.split()[0])))
            return start_response(status, headers, *rest)

        return app(environ, start)

    return wsgi


def read_back(client: Any, tenant: Tenant) -> set[str]:
    """The ids of the site's events, through the API, as its admin."""
    response = client.get(f"{tenant.site_path}/events?limit=100",
                          headers=tenant["org_admin"].headers)
    assert response.status_code == 200, response.get_json()
    return {item["event_id"] for item in response.get_json()["items"]}


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time given"
        time.sleep(0.05)


def send_three_ways(browser: Any, origin: str, api: str, key: str) -> dict[str, str]:
    """Load the page from `origin` and send one event each way; the ids by way."""
    ids = {how: str(uuid.uuid4()) for how in ("fetch", "keepalive", "beacon")}
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(origin + "/shop")
        for how, event_id in ids.items():
            page.evaluate("([how, api, key, id]) => send(how, api, key, id)",
                          [how, api, key, event_id])
        page.goto("about:blank")  # the page hides: its beacon goes
    finally:
        context.close()
    return ids


def test_a_page_on_an_allowed_origin_sends_events_three_ways(app, client, tenant):
    seen: list[tuple[str, int]] = []
    with page_origin() as shop, page_origin() as other, serve(recording(app, seen)) as api, \
            chromium() as browser:
        key = create_ingest_key(client, tenant, allowed_origins=[shop])
        ids = send_three_ways(browser, shop, api, key.secret)
        wait_until(lambda: set(ids.values()) <= read_back(client, tenant))
        assert ("OPTIONS", 200) in seen  # fetch with Authorization was preflighted
        assert [status for method, status in seen if method == "POST"] == [200, 200, 200]

        # The same page on an origin the key does not allow: three refusals, nothing stored.
        seen.clear()
        refused = send_three_ways(browser, other, api, key.secret)
        wait_until(lambda: len([s for m, s in seen if m == "POST"]) == 3)
        assert [status for method, status in seen if method == "POST"] == [403, 403, 403]
        assert read_back(client, tenant) == set(ids.values())
        assert not set(refused.values()) & read_back(client, tenant)
