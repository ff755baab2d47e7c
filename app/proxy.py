"""The client's address behind reverse proxies (`TRUSTED_PROXY_HOPS`, `TRUSTED_PROXY_PEERS`).

Rate limits count per client address and sessions record it: behind nginx or a load
balancer the peer is the proxy, which would put every client in one bucket. werkzeug's
`ProxyFix` takes the address from `X-Forwarded-For`, counting the configured number of
proxies from the right (the entries those proxies appended), so what a client writes
there itself is never believed. It applies only when the peer is in a trusted network:
a client reaching the app directly cannot forge its address with the header either.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class TrustedProxies:
    """WSGI middleware: `ProxyFix` with `hops` proxies, for peers in `networks` only."""

    def __init__(self, app: WSGIApplication, hops: int, networks: Iterable[str]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops)
        self.networks: list[IPv4Network | IPv6Network] = [
            ip_network(n, strict=False) for n in networks
        ]

    def trusts(self, peer: str | None) -> bool:
        try:
            address = ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)
