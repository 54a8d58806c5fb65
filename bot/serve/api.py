"""The routes of `bot serve` (see README "Web page and API"): the same pipelines and the same JSON
objects as `bot ask --json`, `bot summarise --json`, `bot sources --json` and `bot chat --json`."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from bot.app.ask import MAX_QUESTION_CHARS
from bot.app.chat import MAX_TURNS
from bot.core.errors import BotError
from bot.core.secrets import redact
from bot.serve.events import answer_events
from bot.serve.guard import Guard, bot_error_body, install_error_handlers
from bot.serve.state import ServeState

STATIC = files("bot.serve") / "static"
# Request fields are cut off well above what the pipelines accept, so a client gets their one
# clear error for a long question, and nothing larger is ever parsed.
FIELD_CHARS = 2 * MAX_QUESTION_CHARS
FILTER_CHARS = 300
# The page runs only its own script and loads nothing from elsewhere, whatever text it shows.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Where the OpenAPI page's own script and style are served from (package files, never a CDN).
DOCS_ASSETS = "/static-docs"
# Swagger UI would otherwise send the API description to an outside validator for its badge.
DOCS_PARAMETERS = {"validatorUrl": None}
LlmName = Literal["auto", "openai", "local", "extractive"]


class TurnIn(BaseModel):
    """One earlier turn of a conversation, as the page keeps it."""

    asked: str = Field(max_length=FIELD_CHARS)
    question: str = Field(max_length=FIELD_CHARS, description="the standalone question answered")
    answer: str = Field(max_length=4 * FIELD_CHARS)


class AskIn(BaseModel):
    question: str = Field(max_length=FIELD_CHARS)
    k: int | None = Field(None, ge=1, le=50)
    source: str | None = Field(None, max_length=FILTER_CHARS)
    since: str | None = Field(None, max_length=FILTER_CHARS)
    until: str | None = Field(None, max_length=FILTER_CHARS)
    llm: LlmName | None = None
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_TURNS,
        description="earlier turns: the question is then a follow-up, as in `bot chat`",
    )


class SummariseIn(BaseModel):
    target: str | None = Field(None, max_length=FILTER_CHARS)
    topic: str | None = Field(None, max_length=FIELD_CHARS)
    source: str | None = Field(None, max_length=FILTER_CHARS)
    since: str | None = Field(None, max_length=FILTER_CHARS)
    until: str | None = Field(None, max_length=FILTER_CHARS)
    length: Literal["short", "medium", "long"] = "medium"
    llm: LlmName | None = None


def json_response(data: Any, status: int = 200) -> Response:
    """`data` as JSON, every secret redacted."""
    body = redact(json.dumps(data, ensure_ascii=False))
    return Response(body, status_code=status, media_type="application/json")


def run_ask(
    state: ServeState, body: AskIn, on_delta: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The `ask --json` object for `body` (with `asked` and `rewrite`, like `chat --json`, when it
    continues a conversation), computed in one of the server's answer slots."""
    from bot.app.ask import AskOptions, answer_question
    from bot.app.chat import Chat, ChatSession
    from bot.core.types import NO_ANSWER, AnswerResult

    options = AskOptions(k=body.k, source=body.source, since=body.since, until=body.until)
    settings, provider = state.settings, state.provider(body.llm)
    with state.slot():
        store = state.reader()
        if not body.history:
            result = answer_question(
                body.question,
                options,
                settings=settings,
                provider=provider,
                store=store,
                on_delta=on_delta,
            )
            return result.to_json()
        session = ChatSession()
        for turn in body.history:
            done = AnswerResult(turn.question, turn.answer, turn.answer == NO_ANSWER, "", "", "")
            session.add(turn.asked, turn.question, done)
        chat = Chat(options, settings=settings, provider=provider, store=store, session=session)
        return chat.ask(body.question, on_delta=on_delta, remember=False).to_json()


def run_summary(state: ServeState, body: SummariseIn) -> dict[str, Any]:
    """The `summarise --json` object for `body`, computed in one of the server's answer slots."""
    from bot.app.summarise import SummariseOptions, summarise

    options = SummariseOptions(**body.model_dump(exclude={"llm"}))
    provider = state.provider(body.llm)
    with state.slot():
        store = state.reader()
        result = summarise(options, settings=state.settings, provider=provider, store=store)
    return result.to_json()


def create_app(state: ServeState) -> FastAPI:
    """The FastAPI app of `bot serve` over `state`."""
    app = FastAPIOffline(
        title="bot",
        summary="Cited answers and summaries from a folder of news articles",
        docs_url="/docs",
        redoc_url=None,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters=DOCS_PARAMETERS,
    )
    install_error_handlers(app)
    app.add_middleware(Guard, token=state.settings.serve_token)
    origins = [o.strip() for o in state.settings.serve_cors_origins.split(",") if o.strip()]
    if origins:  # outside the guard, so a browser's preflight needs no token
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    _routes(app, state)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def _routes(app: FastAPI, state: ServeState) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(
            str(STATIC / "index.html"), headers={"Content-Security-Policy": PAGE_POLICY}
        )

    @app.get("/healthz")
    def healthz() -> Response:
        """Alive, the index generation answering, and the default provider and model."""
        provider = state.provider(None)
        generation = state.reader().generation
        info = {"status": "ok", "generation": generation, "provider": provider.name}
        return json_response({**info, "model": provider.model})

    @app.post("/api/ask")
    def ask(body: AskIn) -> Response:
        """The `bot ask --json` object (a follow-up with `history`: `bot chat --json`'s)."""
        return json_response(run_ask(state, body))

    @app.post("/api/ask/stream")
    async def ask_stream(body: AskIn) -> StreamingResponse:
        """Server-sent events: `token` {text}..., then `result` (the /api/ask object) or
        `error` {error, hint}."""
        events = answer_events(lambda on_delta: run_ask(state, body, on_delta))
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    @app.post("/api/summarise")
    def summarise(body: SummariseIn) -> Response:
        """The `bot summarise --json` object."""
        return json_response(run_summary(state, body))

    @app.get("/api/sources")
    def sources() -> Response:
        """The `bot sources --json` list."""
        from bot.app.ingest import list_sources

        return json_response(list_sources(state.settings, store=state.reader()))

    @app.get("/api/articles/{article_id}")
    def article(article_id: str) -> Response:
        """The article's metadata and text: `text[start:end]` is each of its passages."""
        from bot.app.articles import article_view

        try:
            return json_response(article_view(state.reader(), article_id))
        except BotError as exc:
            raise HTTPException(404, detail=bot_error_body(exc)) from exc
