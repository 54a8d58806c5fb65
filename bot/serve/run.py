"""`bot serve`: check the bind address is safe, warm the index and models, run uvicorn."""

from __future__ import annotations

import ipaddress

from bot.core.errors import BotError
from bot.core.settings import Settings, get_settings

# uvicorn's own log formatters read a record's arguments, which log redaction has already folded
# into the message (bot.core.secrets.install_log_redaction): plain formatters print that message.
_HANDLER = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": _HANDLER},
    "loggers": {
        name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
        for name in ("uvicorn", "uvicorn.access", "bot.serve")
    },
}
# A token shorter than this is guessable by trying; the server refuses to rely on it.
MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: Settings) -> None:
    """Binding beyond this machine needs a bearer token of at least MIN_TOKEN_CHARS characters."""
    token = settings.serve_token
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise BotError(
            f"BOT_SERVE_TOKEN is shorter than {MIN_TOKEN_CHARS} characters",
            hint="make one with: python -c 'import secrets; print(secrets.token_hex())'",
        )
    if not is_loopback(host) and token is None:
        raise BotError(
            f"Serving on {host} lets other machines ask; it needs BOT_SERVE_TOKEN",
            hint="set BOT_SERVE_TOKEN to a long random string, or keep --host 127.0.0.1",
        )


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    """Run the server until interrupted."""
    import uvicorn

    from bot.core.secrets import install_log_redaction
    from bot.serve.api import create_app
    from bot.serve.state import ServeState

    settings = settings or get_settings()
    check_bind(host, settings)
    install_log_redaction()
    state = ServeState(settings)
    state.warm_up()
    app = create_app(state)
    uvicorn.run(app, host=host, port=port, server_header=False, log_config=LOG_CONFIG)
