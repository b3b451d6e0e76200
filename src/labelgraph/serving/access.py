"""Who may use a served model: an API key demanded on every route but ``/health`` and the page, and no
unauthenticated server on anything but loopback."""

from __future__ import annotations

import hmac
import ipaddress
import os

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from labelgraph.errors import InvalidInputError

KEY_VARIABLE = "LABELGRAPH_API_KEY"
# Open without a key: the liveness probe, and the page itself (static HTML/JS holding no data: it asks for the key
# and sends it with every API call it makes).
OPEN_PATHS = frozenset({"/health", "/", "/favicon.ico"})


class BearerKeyMiddleware:
    """ASGI middleware: ``Authorization: Bearer KEY`` or 401, compared in constant time (``hmac.compare_digest``)."""

    def __init__(self, app: ASGIApp, key: str, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.key = key.encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.open_paths and not self.authorised(scope):
            response = JSONResponse(
                {"detail": "missing or wrong API key: send the header 'Authorization: Bearer <key>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def authorised(self, scope: Scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(key: str | None, host: str, insecure: bool) -> str | None:
    """The key to demand (``--api-key``, else ``$LABELGRAPH_API_KEY``); refuses a key-less non-loopback bind."""
    key = key or os.environ.get(KEY_VARIABLE) or None
    if key is None and not is_loopback(host) and not insecure:
        raise InvalidInputError(
            f"refusing to serve on {host} without an API key: anyone who can reach this machine could use the model. "
            f"Set one with --api-key KEY or {KEY_VARIABLE}=KEY (clients send 'Authorization: Bearer KEY'), "
            "or pass --insecure if the network is trusted"
        )
    return key
