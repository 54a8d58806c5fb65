"""The one exception type of `bot` (its message is a single line that names the fix), and the one
warning type, which the CLI prints as `warning: <message>` on stderr, and the notice type."""


class BotError(Exception):
    """A failure the user can act on. The CLI prints `error: <message>` and exits 1."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class IngestFileError(BotError):
    """One input file could not be read or parsed; ingestion of the others goes on. `warnings`
    are the one-line reasons of its parts (e.g. why each record of a JSON file was skipped)."""

    def __init__(
        self, message: str, *, hint: str | None = None, warnings: list[str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.warnings = list(warnings or [])


class BotWarning(UserWarning):
    """Something the user should know that does not stop the command (`warnings.warn` it)."""


class BotNotice(UserWarning):
    """Why the command is waiting (a busy server, a retry): the CLI prints it as one plain line on
    stderr (`warnings.warn` it)."""


class WebError(BotError):
    """One URL could not be fetched or read (DNS, refused, timeout, an HTTP status, too large, not
    a page or feed, robots.txt, bad charset); the other URLs and feeds go on. The message is one
    line naming the URL and the cause."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"{url}: {cause}")
