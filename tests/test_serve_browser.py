"""The web page in a real headless browser (Playwright driving Debian's chromium): a streamed
answer, a citation that opens the article at the exact passage, and a hostile article that runs
nothing. A screenshot of the page goes to bench/out/serve.png."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.app.ingest import ingest_paths
from bot.core.settings import Settings
from bot.serve.state import ServeState

from .live_server import live_server

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: .ci/run installs it
REPO = Path(__file__).resolve().parent.parent
SHOT = REPO / "bench" / "out" / "serve.png"
SEED_QUESTION = "What did Zelensky announce about prisoners?"
HOSTILE_QUESTION = "When will the Brightwater night ferry stop running?"
# Markup in every field a page could show; any of it running sets window.__pwned.
HOSTILE = {
    "title": "Ferry notice <img src=x onerror=\"window.__pwned='title'\">",
    "source": "<b onmouseover=\"window.__pwned='source'\">Harbour Gazette</b>",
    "url": "javascript:window.__pwned='url'",
    "published": "2024-03-01",
    "text": (
        "The Brightwater harbour council said the night ferry will stop running on 4 March "
        "<script>window.__pwned='script'</script>. Residents can read the notice on "
        "<a href=\"javascript:window.__pwned='link'\">the council site</a> "
        "<img src=x onerror=\"window.__pwned='img'\">. The council said the night ferry will "
        "return in May, after the harbour wall is repaired."
    ),
}
# Set when an answer's text appears while its request is still running (the stream, not the end).
WATCH_STREAM = """
new MutationObserver(() => {
  for (const a of document.querySelectorAll('.answer[aria-busy="true"]'))
    if (a.textContent.trim()) window.__streamed = true;
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "ferry.json").write_text(json.dumps(HOSTILE), encoding="utf-8")
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("browser-data"), llm="extractive"
    )
    ingest_paths([REPO / "seeds", folder], settings)
    with live_server(ServeState(settings)) as url:
        yield url


@pytest.fixture
def page(server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.add_init_script(WATCH_STREAM)
        page.goto(server)
        yield page
        browser.close()


def _ask(page: object, question: str) -> None:
    page.fill("#question", question)  # type: ignore[attr-defined]
    page.press("#question", "Enter")  # type: ignore[attr-defined]
    page.wait_for_selector(".turn .meta", timeout=60_000)  # type: ignore[attr-defined]


def _expected(server: str, question: str) -> dict:
    return httpx.post(f"{server}/api/ask", json={"question": question}, timeout=60).json()


def test_a_citation_opens_the_article_with_the_exact_passage_highlighted(
    server: str, page: object
) -> None:
    _ask(page, SEED_QUESTION)
    assert page.evaluate("window.__streamed === true")  # type: ignore[attr-defined]
    result = _expected(server, SEED_QUESTION)
    first = page.locator(".turn .answer a.cite").first  # type: ignore[attr-defined]
    n = int(first.get_attribute("data-n"))
    assert first.inner_text() == f"[{n}]" and n == result["sentences"][0]["citations"][0]
    first.click()
    mark = page.locator("#article-text mark")  # type: ignore[attr-defined]
    mark.wait_for(timeout=30_000)
    passage = next(p for p in result["passages"] if p["n"] == n)
    assert mark.text_content() == passage["text"]
    assert mark.is_visible() and mark.evaluate("m => getComputedStyle(m).backgroundColor") != ""
    assert page.locator("#article-title").text_content() == passage["title"]  # type: ignore[attr-defined]
    assert "extractive" in page.locator("#engine").text_content()  # type: ignore[attr-defined]
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOT), full_page=True)  # type: ignore[attr-defined]
    page.keyboard.press("Escape")  # type: ignore[attr-defined]
    assert page.locator("#article").is_hidden()  # type: ignore[attr-defined]


def test_a_hostile_article_runs_nothing(server: str, page: object) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    _ask(page, HOSTILE_QUESTION)
    answer = page.locator(".turn .answer").last  # type: ignore[attr-defined]
    assert "<script>" in answer.text_content()  # shown as text, not run
    answer.locator("a.cite").first.click()
    page.locator("#article-text mark").wait_for(timeout=30_000)  # type: ignore[attr-defined]
    page.click("#tab-sources")  # type: ignore[attr-defined]
    page.wait_for_selector("#sources-table tbody tr")  # type: ignore[attr-defined]
    page.locator("#sources-table a", has_text="Ferry notice").click()  # type: ignore[attr-defined]
    page.hover("#article-meta")  # type: ignore[attr-defined]
    text = page.locator("#article-text").text_content()  # type: ignore[attr-defined]
    assert "<script>window.__pwned='script'</script>" in text
    assert page.locator("#article-title").text_content() == HOSTILE["title"]  # type: ignore[attr-defined]
    for selector in ("main script", "main img", "#article-text a", "#article-meta a", "main b"):
        assert page.locator(selector).count() == 0, selector  # type: ignore[attr-defined]
    assert page.evaluate("window.__pwned") is None  # type: ignore[attr-defined]
    assert dialogs == []


def test_keyboard_only_on_a_narrow_screen(server: str, page: object) -> None:
    page.set_viewport_size({"width": 390, "height": 800})  # type: ignore[attr-defined]
    page.focus("#tab-sources")  # type: ignore[attr-defined]
    page.keyboard.press("/")  # from anywhere but a field: to the question box  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "question"  # type: ignore[attr-defined]
    page.keyboard.type(SEED_QUESTION)  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    page.wait_for_selector(".turn .meta", timeout=60_000)  # type: ignore[attr-defined]
    page.focus(".turn .answer a.cite")  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    mark = page.locator("#article-text mark")  # type: ignore[attr-defined]
    mark.wait_for(timeout=30_000)
    assert mark.is_visible()
    overflow = "document.documentElement.scrollWidth - window.innerWidth"
    assert page.evaluate(overflow) <= 0  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOT.with_name("serve-narrow.png")))  # type: ignore[attr-defined]


def test_the_api_docs_load_with_no_request_leaving_the_machine(server: str, page: object) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))  # type: ignore[attr-defined]
    page.goto(f"{server}/docs")  # type: ignore[attr-defined]
    # Swagger UI draws one block per route once its script has run and read /openapi.json.
    ask = page.locator(".opblock", has_text="/api/ask").first  # type: ignore[attr-defined]
    ask.wait_for(timeout=30_000)
    assert page.locator(".opblock").count() >= 6  # type: ignore[attr-defined]
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    hosts = {httpx.URL(url).host for url in requests if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}, sorted(requests)
    assert any(url.endswith("/openapi.json") for url in requests)
    assert any("/static-docs/swagger-ui-bundle.js" in url for url in requests)
