"""What keeps the dashboard closed to strangers, in front of every route.

One ASGI layer checks each request before any route sees it, in this order:

1. the Host header is one of the allowed names (a page on another site whose name
   resolves to this machine, DNS rebinding, is refused);
2. a POST comes from a page of this server (its Origin, when sent, names this host; a
   browser's ``Sec-Fetch-Site: cross-site`` is refused), and its body, if any, is a
   form or JSON (415 otherwise) of at most ``MAX_BODY`` bytes (413), counted as it
   arrives;
3. with a token, every route but the health check, the login page and the stylesheet
   needs it: ``Authorization: Bearer <token>``, or the cookie the login form sets
   (HttpOnly, SameSite=Strict, holding a value derived from the token, not the token).
   A page asked for without it is sent to the login form; anything else gets 401.

Routes answer GET, and POST for signing in and out: any other method is a 405 from
the router (OPTIONS too: there is no CORS). Every response leaves with a content
security policy that runs only this server's own scripts (no inline script, no eval),
``nosniff``, and frames denied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
COOKIE = "pursuit_session"
MAX_BODY = 16 * 1024  # the only bodies are a login form's
MIN_TOKEN = 16
PUBLIC = frozenset({"/api/health", "/login", "/static/dashboard.css"})
BODY_TYPES = ("application/x-www-form-urlencoded", "application/json")
SECURITY_HEADERS = [
    (b"content-security-policy",
     # Plotly writes its own <style> rules as it draws; styles run no script.
     b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; "
     b"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer a browser's form posts say
    # "Origin: null", and the Origin check could not tell them from a stranger's
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def new_token() -> str:
    """A random token for a server started with ``--token generate``."""
    return secrets.token_urlsafe(32)


def session_value(token: str) -> str:
    """What the login cookie holds: derived from the token, so that the token itself
    never sits in a browser's cookie store."""
    return hmac.new(token.encode(), b"pursuit dashboard session", hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(errors="replace"), expected.encode())


def host_name(host: str) -> str:
    """The name in a Host header or an origin's authority, without the port:
    ``[::1]:8080`` gives ``::1``, ``Example.org:80`` gives ``example.org``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """The ASGI layer described in the module docstring, wrapped around the app."""

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token) if token else None
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(send)
            return
        if scope["method"] == "POST":  # read whole, at most MAX_BODY, then handed on
            body = await _body(receive)
            if body is None:
                await _error(413, f"the body is larger than {MAX_BODY} bytes")(send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, _with_headers(send))

    def _refusal(self, scope: Scope, headers: dict[str, str]
                 ) -> Callable[[Send], Awaitable[None]] | None:
        host = headers.get("host", "")
        if host_name(host) not in self.allowed_hosts:
            return _error(400, "the Host header names no host this server answers to")
        method = scope["method"]
        if method == "POST":
            origin = headers.get("origin")
            if headers.get("sec-fetch-site") == "cross-site" or \
                    (origin is not None and origin.partition("://")[2].lower() != host.lower()):
                return _error(403, "cross-site request refused")
            length = headers.get("content-length", "0")
            if not length.isdigit() or int(length) > MAX_BODY:
                return _error(413, f"the body is larger than {MAX_BODY} bytes")
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            has_body = length != "0" or "transfer-encoding" in headers
            if has_body and kind not in BODY_TYPES:
                return _error(415, "send a form or JSON (application/x-www-form-urlencoded "
                                   "or application/json)")
        if self.token is None or scope["path"] in PUBLIC or self._signed_in(headers):
            return None
        if method in ("GET", "HEAD") and not scope["path"].startswith("/api/") \
                and scope["path"] not in ("/openapi.json",):
            target = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}"
                                      if scope.get("query_string") else "")
            return _redirect(f"/login?next={quote(target, safe='')}")
        return _error(401, "sign in: send Authorization: Bearer <token>, or sign in at "
                           "/login", authenticate="Bearer")

    def _signed_in(self, headers: dict[str, str]) -> bool:
        assert self.token is not None and self.session is not None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given and same_secret(given.strip(), self.token):
            return True
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and same_secret(value, self.session):
                return True
        return False


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; a repeated header keeps its first value,
    except cookies, which are joined as browsers send them."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie" and name in out:
            out[name] += "; " + value
        else:
            out.setdefault(name, value)
    return out


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []),
                                  *(h for h in SECURITY_HEADERS if h[0] not in names)]
        await send(message)
    return sending


async def _body(receive: Receive) -> bytes | None:
    """The request's body, or None once it grows past ``MAX_BODY`` (whatever its
    Content-Length said) or the client goes away."""
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def receiving() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the client's disconnect
    return receiving


def _error(status: int, detail: str, *,
           authenticate: str | None = None) -> Callable[[Send], Awaitable[None]]:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
    if authenticate:
        headers.append((b"www-authenticate", authenticate.encode()))
    return _response(status, headers, body)


def _redirect(location: str) -> Callable[[Send], Awaitable[None]]:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
               *SECURITY_HEADERS]
    return _response(303, headers, b"")


def _response(status: int, headers: list[tuple[bytes, bytes]], body: bytes
              ) -> Callable[[Send], Awaitable[None]]:
    async def respond(send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    return respond
