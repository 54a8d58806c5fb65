"""An answer as server-sent events: `token` events while it is written, then one `result` (the
checked answer, the same object `/api/ask` returns) or one `error` `{error, hint}`.

The pipeline runs in a worker thread and hands each piece of text to the event loop, so the loop
keeps serving other requests while a model writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.core.errors import BotError
from bot.core.secrets import redact
from bot.serve.guard import bot_error_body, error_body

# The pipeline of one streamed answer: called with the callback that receives each new piece.
Pipeline = Callable[[Callable[[str], None]], dict[str, Any]]

log = logging.getLogger("bot.serve")
_END = "end"


def sse(event: str, data: Any) -> str:
    """One server-sent event: its name and its data as one line of redacted JSON."""
    return f"event: {event}\ndata: {redact(json.dumps(data, ensure_ascii=False))}\n\n"


async def answer_events(pipeline: Pipeline) -> AsyncIterator[str]:
    """The events of `pipeline`'s answer, as they happen (see the module doc)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def push(event: str, data: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (event, data))

    def work() -> None:
        try:
            push("result", pipeline(lambda text: push("token", {"text": text})))
        except BotError as exc:
            push("error", bot_error_body(exc))
        except Exception as exc:  # a bug: one line in the log, one error event, no traceback
            log.error("unexpected %s: %s", type(exc).__name__, " ".join(redact(str(exc)).split()))
            push("error", error_body(f"unexpected {type(exc).__name__}", "see the server log"))
        finally:
            push(_END, None)

    threading.Thread(target=work, name="answer-stream", daemon=True).start()
    while True:
        event, data = await queue.get()
        if event == _END:
            return
        yield sse(event, data)
