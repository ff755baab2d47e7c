"""The sign-in and consent pages of `/oauth/authorize` in a real browser (Debian's
chromium driven by playwright): a person signs in, approves, and the app's redirect URI
receives the code; a page of another origin can neither frame the sign-in page nor post
an approval for the person (no CSRF token); Deny sends `access_denied`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.support import PASSWORD, Tenant
from tests.support.browser import chromium
from tests.support.live import serve
from tests.support.oauth import authorize_query, create_oauth_client, pkce

pytestmark = pytest.mark.browser


@contextmanager
def app_origin(pages: dict[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    """Another origin on loopback: the third-party app. It serves `pages` and records
    every request to `/callback` (its redirect URI)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/callback"):
                seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(pages.get(urlsplit(self.path).path, b"<p>app</p>"))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_sign_in_and_consent_in_a_browser(app, client, tenant: Tenant):
    pages: dict[str, bytes] = {}
    with app_origin(pages) as (origin, seen), serve(app) as api, chromium() as browser:
        registered = create_oauth_client(client, tenant, "public",
                                         redirect_uris=[f"{origin}/callback"])
        _, challenge = pkce()
        query = authorize_query(registered.id, challenge, redirect_uri=f"{origin}/callback",
                                scope="read write", state="st4te")
        url = f"{api}/oauth/authorize?{urlencode(query)}"
        # Another origin frames the page, and posts an approval without the token.
        pages["/frame"] = f'<iframe src="{url}"></iframe>'.encode()
        pages["/forge"] = (
            f'<form method="post" action="{url}"><input name="action" value="approve">'
            f'</form><script>document.forms[0].submit()</script>').encode()
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"{origin}/frame")
            page.wait_for_load_state("load")
            [framed] = page.frames[1:]
            assert framed.locator("#email").count() == 0  # frame-ancestors 'none' refused it

            page.goto(url)
            assert page.title() == "Sign in"
            page.fill("#email", tenant["member"].email)
            page.fill("#password", PASSWORD)
            page.click("button:has-text('Sign in')")
            page.wait_for_selector("h1:has-text('Allow access')")
            assert registered.body["name"] in page.content()
            assert tenant.org.name in page.content()
            assert "<code>write</code>" in page.content()

            # Signed in now: a forged approval from another origin still gets no code.
            forged = page.goto(f"{origin}/forge")
            page.wait_for_load_state("load")
            assert forged is not None
            assert "CSRF" in page.content() and seen == []

            page.goto(url)
            with page.expect_navigation(url=f"{origin}/callback*"):
                page.click("button:has-text('Approve')")
            [callback] = seen
            params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
            assert params["state"] == "st4te" and len(params["code"]) >= 40

            seen.clear()
            page.goto(url)
            with page.expect_navigation(url=f"{origin}/callback*"):
                page.click("button:has-text('Deny')")
            [denied] = seen
            assert parse_qs(urlsplit(denied).query)["error"] == ["access_denied"]
        finally:
            context.close()
