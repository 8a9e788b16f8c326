"""The app's ASGI middleware: security headers on every answer, the loopback Host check, and the
request body size limit (enforced before and while the body is read).

``install_middleware`` adds them in the order they must run.
"""

from __future__ import annotations

import json

import anyio
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body, error_response
from .settings import WebSettings

INDEX_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# /docs, /redoc and the model cards: their pages carry inline scripts and styles, and ReDoc starts a
# blob: worker; everything else stays on this server (ReDoc's footer logo is an image on a CDN).
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """nosniff and no-referrer everywhere; a strict CSP on the page and its assets, one that allows
    inline scripts on the documentation pages, and nothing from another origin on either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/" or path.startswith("/static/"):
            policy: bytes | None = INDEX_CSP.encode()
        elif path in ("/docs", "/redoc") or path.startswith("/model-card/"):
            policy = DOCS_CSP.encode()
        else:
            policy = None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if policy:
                    headers.append((b"content-security-policy", policy))
                if path.startswith("/api/"):  # answers about someone's images: no cache keeps them
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


class LoopbackHostMiddleware:
    """For a server listening on loopback only: refuse requests whose Host header names another
    host, as a web page on another site would send after rebinding its DNS name to 127.0.0.1."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and host_name(dict(scope["headers"]).get(b"host", b"")) not in LOOPBACK_HOSTS:
            refusal = error_response(400, "bad_host", "this server answers loopback names only")
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def host_name(header: bytes) -> str:
    """The host of a Host header, without its port: ``[::1]:8000`` -> ``[::1]``, ``localhost:80`` -> ``localhost``."""
    host = header.decode("latin-1").strip().lower()
    return host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.split(":")[0]


def _too_large_message(limit: int) -> str:
    return f"request body is over the {limit / 1024 / 1024:g} MiB upload limit"


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """413 JSON for bodies over ``max_bytes``: at once from Content-Length (the app never runs), else
    as soon as the bytes actually received pass the limit (chunked or lying clients).

    Before the 413 body is sent, the rest of the upload is read and thrown away (up to ``DRAIN_BYTES``
    / ``DRAIN_SECONDS``, never stored): a server that closes a socket with unread data makes the kernel
    reset the connection, and clients that send the whole body before reading (browsers, httpx) would
    see "connection reset" instead of the JSON error.
    """

    DRAIN_BYTES = 32 * 1024 * 1024
    DRAIN_SECONDS = 10.0

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _drain(self, receive: Receive, already: int = 0) -> None:
        drained = already
        with anyio.move_on_after(self.DRAIN_SECONDS):
            while drained <= self.DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    async def _reject(
        self, send: Send, receive: Receive | None, status: int, code: str, message: str, received: int = 0
    ) -> None:
        body = json.dumps(error_body(code, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        if receive is not None:
            await self._drain(receive, received)
        await send({"type": "http.response.body", "body": body})

    async def _refuse_declared_length(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer 400 for an invalid Content-Length and 413 for one over the limit; whether it did."""
        declared = [v for k, v in scope.get("headers", ()) if k == b"content-length"]
        if not declared:
            return False
        try:
            length = int(declared[0])
        except ValueError:
            length = -1
        if length < 0 or len(declared) > 1:
            await self._reject(send, None, 400, "bad_request", "invalid Content-Length header")
            return True
        if length > self.max_bytes:
            drain = receive if length <= self.DRAIN_BYTES else None
            await self._reject(send, drain, 413, "request_too_large", _too_large_message(self.max_bytes))
            return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if await self._refuse_declared_length(scope, receive, send):
            return

        received = 0
        exceeded = False
        body_complete = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded, body_complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:  # the app's answer to the interrupted read is replaced by the 413 below
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not response_started:
            drain = None if body_complete else receive  # past the last chunk, receive() would wait for a disconnect
            await self._reject(
                send, drain, 413, "request_too_large", _too_large_message(self.max_bytes), received=received
            )


def install_middleware(app: FastAPI, settings: WebSettings) -> None:
    """The body limit innermost, the security headers outermost (so they are also on the 413s)."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_upload_bytes)
    if settings.loopback_only:
        app.add_middleware(LoopbackHostMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # added last = outermost
