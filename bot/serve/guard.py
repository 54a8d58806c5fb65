"""The server's safety rules: the bearer token, body limits, and errors as JSON `{error, hint}`.

Every error a client sees is one JSON object with a status code: a `BotError` (bad input, an
unknown article, a provider failing) is 400 unless raised as an `HTTPException` with its own code;
anything else is 500 with no traceback (the log has it, redacted). No text leaves the server
without `bot.core.secrets.redact`, so the API key never reaches a response.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bot.core.errors import BotError
from bot.core.secrets import redact

# The largest request body accepted: a question, filters and a short conversation fit many times.
MAX_BODY_BYTES = 64 * 1024
API_PREFIX = "/api/"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("bot.serve")


def error_body(error: str, hint: str | None = None) -> dict[str, str | None]:
    """The JSON body of every error response, redacted and on one line each."""
    return {
        "error": " ".join(redact(error).split()),
        "hint": " ".join(redact(hint).split()) if hint else None,
    }


def bot_error_body(exc: BotError) -> dict[str, str | None]:
    """`exc` as `{error, hint}`: its message without the hint the CLI appends."""
    message = str(exc)
    if exc.hint and message.endswith(f" ({exc.hint})"):
        message = message[: -len(exc.hint) - 3]
    return error_body(message, exc.hint)


class Guard:
    """ASGI middleware: a bearer token on every API call when one is set (else 401), and no body
    over `max_body` bytes (else 413), counted as it arrives whatever Content-Length says (the
    body is read whole before the app runs; it is small)."""

    def __init__(self, app: App, *, token: str | None, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token and scope["path"].startswith(API_PREFIX) and not self._authorised(headers):
            hint = "send the BOT_SERVE_TOKEN as 'Authorization: Bearer <token>'"
            await _reply(send, 401, error_body("Missing or wrong bearer token", hint))
            return
        declared = headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > self.max_body:
            await _reply(send, 413, _too_large(self.max_body))
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await _reply(send, 413, _too_large(self.max_body))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        expected = (self.token or "").encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, read before the app sees it; None once it passes `limit` bytes."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return body


def _too_large(limit: int) -> dict[str, str | None]:
    return error_body(f"The request body is over {limit:,} bytes", "send a shorter question")


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def install_error_handlers(app: Any) -> None:
    """JSON `{error, hint}` for every failure of `app` (a FastAPI app)."""
    from fastapi import Request
    from fastapi.exceptions import HTTPException, RequestValidationError
    from fastapi.responses import JSONResponse

    async def bot_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BotError)
        return JSONResponse(bot_error_body(exc), status_code=400)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, dict) else error_body(str(exc.detail))
        return JSONResponse(detail, status_code=exc.status_code, headers=exc.headers)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        hint = "see /docs for the request schema"
        return JSONResponse(error_body("; ".join(problems) or "bad request", hint), 422)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s: %s", type(exc).__name__, " ".join(redact(str(exc)).split()))
        return JSONResponse(
            error_body(f"unexpected {type(exc).__name__}", "the server log has the details"), 500
        )

    app.add_exception_handler(BotError, bot_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)
