"""bot.ui.render: sanitising, defused markdown, unsupported/refusal display, sources, JSON."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest
from rich.console import Console

from bot.core.types import AnswerResult, CheckedSentence, Disagreement, Passage, StatedValue
from bot.ui.render import (
    defuse_markdown,
    render_answer,
    render_answer_text,
    render_sources,
    render_sources_table,
    sanitize,
    to_json,
)

# Hostile sequences as they might appear in article or model text.
CSI_RED = "\x1b[31m"
CSI_CLEAR = "\x1b[2J"
OSC8 = "\x1b]8;;http://evil.example/\x07click me\x1b]8;;\x07"
OSC8_ST = "\x1b]8;;http://evil.example/\x1b\\st link\x1b]8;;\x1b\\"
OSC_TITLE = "\x1b]0;pwned\x07"
C1_CSI = "\x9b31m"
BEL = "\x07"
RLO = "\u202e"
HOSTILE = f"a{CSI_RED}b{CSI_CLEAR}c{OSC8}d{OSC8_ST}e{OSC_TITLE}f{C1_CSI}g{BEL}h{RLO}i"
FORBIDDEN = ["\x1b", "\x07", "\x9b", "\x9d", RLO, "\u2066", "\r", "\x00"]


def console(*, terminal: bool = False, width: int = 100) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    kwargs = {"color_system": "truecolor"} if terminal else {"color_system": None}
    return Console(file=buffer, force_terminal=terminal, width=width, **kwargs), buffer


def passage(n: int = 1, text: str = "The harbour reopened after the storm.", **kw) -> Passage:
    fields = dict(
        n=n,
        chunk_id=f"c{n}",
        article_id=f"a{n}",
        title="Harbour reopens",
        source="Coast Times",
        url="https://example.org/harbour",
        published="2024-03-02T10:00:00+00:00",
        path="/news/harbour.txt",
        start=120,
        end=480,
        text=text,
        cited=True,
    )
    fields.update(kw)
    return Passage(**fields)


def result(answer: str = "The harbour reopened [1].", **kw) -> AnswerResult:
    fields = dict(
        question="What happened to the harbour?",
        answer=answer,
        refused=False,
        provider="openai",
        model="gpt-test",
        prompt_hash="abc123",
        sentences=[CheckedSentence("The harbour reopened.", [1], True, 0.9)],
        passages=[passage()],
        timings_ms={"retrieval": 12.4, "llm": 350.0},
    )
    fields.update(kw)
    return AnswerResult(**fields)


def rendered(res: AnswerResult, **kw) -> str:
    con, buffer = console(**kw)
    render_answer(res, con)
    return buffer.getvalue()


# --- sanitize -------------------------------------------------------------------------------------


def test_sanitize_removes_sequences_keeps_text() -> None:
    assert sanitize(HOSTILE) == "abcclick medst linkefghi"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("line1\nline2\tx", "line1\nline2\tx"),
        ("a\r\nb\rc", "a\nb\nc"),
        (
            "caf\u00e9 \u65e5\u672c \u05e9\u05dc\u05d5\u05dd",
            "caf\u00e9 \u65e5\u672c \u05e9\u05dc\u05d5\u05dd",
        ),
        ("x\udcffy", "x\ufffdy"),
        ("a\x00b\x08c\x7fd\x85e", "ab" + "c" + "d\ne"),
        ("a\x1bb", "a"),
        ("mojibake \x9d stays text", "mojibake  stays text"),
        ("tag\U000e0041s", "tags"),
        (None, ""),
    ],
)
def test_sanitize_cases(raw, clean: str) -> None:
    assert sanitize(raw) == clean


def test_unterminated_osc_does_not_swallow_text() -> None:
    assert sanitize("before \x1b]8;;http://x after") == "before 8;;http://x after"


# --- hostile data never reaches the terminal ------------------------------------------------------


def hostile_result() -> AnswerResult:
    return result(
        answer=f"The harbour {HOSTILE} reopened [1]. Unsupported claim here [1].",
        sentences=[
            CheckedSentence(f"The harbour {HOSTILE} reopened.", [1], True, 0.9),
            CheckedSentence("Unsupported claim here.", [1], False, 0.1),
        ],
        passages=[
            passage(
                text=f"Text {HOSTILE} " * 5,
                title=f"Title {HOSTILE}",
                source=f"Outlet{RLO}",
                url=f"https://x.example/{BEL}",
                path=f"/news/{CSI_RED}evil.txt",
                published=f"2024{C1_CSI}",
            )
        ],
        provider=f"prov{CSI_RED}",
        model=f"model{OSC8}",
        warnings=[f"warn {CSI_CLEAR}"],
    )


def test_plain_console_output_has_no_control_characters() -> None:
    out = rendered(hostile_result())
    for bad in FORBIDDEN:
        assert bad not in out, repr(bad)
    assert "Title abcclick me" in out


def test_terminal_output_has_no_injected_sequences() -> None:
    out = rendered(hostile_result(), terminal=True)
    for injected in (CSI_CLEAR, "\x1b]", BEL, "\x9b", RLO, "pwned"):
        assert injected not in out, repr(injected)
    assert "\x1b[31m" not in out  # rich's own styles here never use plain red


def test_rich_markup_in_data_is_not_interpreted() -> None:
    res = result(
        answer="Look [bold red]here[/bold red] [link=http://evil]x[/link] [1].",
        sentences=[],
        passages=[passage(title="[blink]T[/blink]", text="[red]quoted[/red]")],
    )
    out = rendered(res)
    assert "[bold red]here[/bold red]" in out
    assert "[blink]T[/blink]" in out and "[red]quoted[/red]" in out


# --- markdown -------------------------------------------------------------------------------------


def test_hostile_markdown_link_shows_its_url() -> None:
    out = rendered(
        result(answer="See [the official report](http://evil.example/x) [1].", sentences=[])
    )
    assert "the official report (http://evil.example/x)" in out


def test_terminal_output_has_no_hyperlinks() -> None:
    out = rendered(
        result(answer="See [report](http://evil.example) and <http://auto.example>.", sentences=[]),
        terminal=True,
    )
    assert "\x1b]8" not in out
    assert "http://evil.example" in out and "http://auto.example" in out


def test_images_html_entities_and_reference_links_are_text() -> None:
    answer = (
        "![chart](http://img.example/c.png) <script>alert(1)</script> <b>bold?</b>"
        " &amp; &#x202e;\n\n"
        "A [ref link][r] here.\n\n[r]: http://hidden.example"
    )
    out = rendered(result(answer=answer, sentences=[]))
    assert "[image: chart] (http://img.example/c.png)" in out
    assert "<script>alert(1)</script>" in out and "<b>bold?</b>" in out
    assert "&amp; &#x202e;" in out and RLO not in out
    assert "[r]: http://hidden.example" in out


def test_code_is_left_alone() -> None:
    md = defuse_markdown("Use `a[1](b)` and\n```\n<tag> [x](y)\n```")
    assert "`a[1](b)`" in md and "<tag> [x](y)" in md


def test_emphasis_and_lists_still_render() -> None:
    out = rendered(result(answer="- **Bold** point [1]\n- second point", sentences=[]))
    assert "Bold point [1]" in out and "•" in out and "**" not in out


PLAIN_ANSWERS = [
    "Zelensky announced that prisoners with combat experience would be released [1][3]. "
    "He also addressed Russian soldiers directly [2].",
    "Line one of a paragraph\ncontinues here [1].\n\nA second paragraph that is long enough to "
    "wrap at sixty columns, with a number: 2,000 troops [2].",
    "The articles don't say.",
]


def _terminal(render, width: int = 60) -> str:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    render(Console(width=width, file=buf, force_terminal=True, color_system="truecolor"))
    text = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())
    return "\n".join(line.rstrip() for line in text.split("\n"))


@pytest.mark.parametrize("answer", PLAIN_ANSWERS)
def test_plain_answers_look_the_same_without_the_markdown_renderer(
    answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.ui import render

    flagged = [CheckedSentence("He also addressed Russian soldiers directly.", [2], False, 0.2)]
    marked, _ = render._mark_unsupported(sanitize(answer), flagged)
    assert render._plain_paragraphs(marked) is not None
    fast = _terminal(lambda c: render_answer_text(answer, c, sentences=flagged))
    monkeypatch.setattr(render, "_plain_paragraphs", lambda text: None)  # markdown for all
    slow = _terminal(lambda c: render_answer_text(answer, c, sentences=flagged))
    assert fast == slow


@pytest.mark.parametrize(
    "answer",
    [
        "**Bold** claim [1].",
        "- a list item [1]",
        "1. first [1]",
        "Intro [1].\n\n# Heading",
        "Two spaces end this line  \nthen a hard break [1].",
        "See [the report](http://x.example) [1].",
        "Title\n=====",
        "    indented code",
        "A <b>tag</b> and &amp; [1].",
        "A [bracket] that is not a citation.",
    ],
)
def test_anything_markdown_could_read_goes_through_markdown(answer: str) -> None:
    from bot.ui import render

    assert render._plain_paragraphs(sanitize(answer)) is None


def test_a_plain_answer_does_not_import_the_markdown_renderer() -> None:
    code = (
        "import io, sys\n"
        "from rich.console import Console\n"
        "from bot.ui.render import render_answer_text\n"
        "render_answer_text('A plain answer [1].', Console(file=io.StringIO()))\n"
        "print('rich.markdown' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- answer display -------------------------------------------------------------------------------


def test_unsupported_sentence_is_marked_where_it_is() -> None:
    res = result(
        answer="The harbour reopened [1]. Ships sank by the hundred [1]. The pier is fixed [1].",
        sentences=[
            CheckedSentence("The harbour reopened.", [1], True, 0.9),
            CheckedSentence("Ships sank by the hundred.", [1], False, 0.1),
            CheckedSentence("The pier is fixed.", [1], True, 0.7),
        ],
    )
    out = rendered(res, width=200)
    assert "Ships sank by the hundred [1]. ⚠ unsupported The pier is fixed [1]." in out
    assert out.count("⚠ unsupported") == 2  # the flag and the legend line


def test_unsupported_sentence_not_in_answer_is_listed() -> None:
    res = result(answer="Something else.", sentences=[CheckedSentence("Lost claim.", [], False)])
    assert "⚠ unsupported: Lost claim." in rendered(res)


def test_dropped_citations_warning() -> None:
    out = rendered(result(dropped_citations=[7, 9]))
    assert "removed citations to passages that were not given: [7], [9]" in out


def test_a_disagreement_is_one_line_newest_first_and_in_the_json() -> None:
    values = [StatedValue("16", [2], "2024-03-15"), StatedValue("14", [1], "2024-03-14")]
    res = result(disagreements=[Disagreement("the death toll rose to …", values)])
    out = rendered(res, width=200)
    assert (
        "disagreement: the articles disagree about “the death toll rose to …”: "
        "16 [2] (2024-03-15); 14 [1] (2024-03-14)"
    ) in out
    data = json.loads(to_json(res))
    assert data["disagreements"] == [
        {
            "about": "the death toll rose to …",
            "values": [
                {"value": "16", "citations": [2], "published": "2024-03-15"},
                {"value": "14", "citations": [1], "published": "2024-03-14"},
            ],
        }
    ]
    assert json.loads(to_json(result()))["disagreements"] == []


def test_existing_warning_is_not_duplicated() -> None:
    out = rendered(
        result(
            dropped_citations=[7],
            warnings=["removed citations to passages that were never given: [7]"],
        )
    )
    assert out.count("removed citations") == 1


def test_refusal_is_clear_and_lists_closest_passages() -> None:
    out = rendered(result(answer="The articles don't say.", refused=True, sentences=[]))
    assert out.startswith("The articles don't say.")
    assert out.count("The articles don't say.") == 1
    assert "Closest passages:" in out and "Harbour reopens" in out
    assert "Sources" not in out


def test_refusal_without_passages() -> None:
    out = rendered(result(answer="", refused=True, sentences=[], passages=[]))
    assert "The articles don't say." in out and "No passages matched." in out


def test_sources_and_footer() -> None:
    long_text = "word " * 200
    out = rendered(result(passages=[passage(text=long_text), passage(2, title="Second")]))
    assert "Sources" in out
    assert "[1] Harbour reopens — Coast Times — 2024-03-02" in out
    assert "/news/harbour.txt:120-480" in out and "https://example.org/harbour" in out
    assert "word word" in out and "…" in out
    assert "[2] Second" in out
    assert "openai/gpt-test" in out and "retrieval 12 ms" in out and "total 362 ms" in out


def test_an_answer_lists_only_the_passages_it_cites() -> None:
    passages = [passage(), passage(2, title="Uncited one", cited=False), passage(3, cited=False)]
    out = rendered(result(passages=passages))
    assert "[1] Harbour reopens" in out and "Uncited one" not in out and "[3]" not in out
    assert "2 more passages were retrieved but not cited; --all-sources lists them." in out


def test_all_sources_lists_every_passage() -> None:
    con, buffer = console()
    passages = [passage(), passage(2, title="Uncited one", cited=False)]
    render_answer(result(passages=passages), con, all_sources=True)
    out = buffer.getvalue()
    assert "[1] Harbour reopens" in out and "[2] Uncited one" in out
    assert "not cited" not in out


def test_a_refusal_lists_its_closest_passages_though_none_is_cited() -> None:
    passages = [passage(cited=False), passage(2, title="Second", cited=False)]
    out = rendered(result(answer="The articles don't say.", refused=True, passages=passages))
    assert "Closest passages:" in out and "[1] Harbour reopens" in out and "[2] Second" in out
    assert "not cited" not in out


def test_passage_json_says_whether_it_is_cited() -> None:
    data = json.loads(to_json(result(passages=[passage(), passage(2, cited=False)])))
    assert [p["cited"] for p in data["passages"]] == [True, False]


def test_show_passages_false_hides_sources() -> None:
    con, buffer = console()
    render_answer(result(), con, show_passages=False)
    assert "Sources" not in buffer.getvalue()


def test_render_sources_and_text_separately() -> None:
    con, buffer = console()
    render_answer_text("Streaming partial [1", con)
    render_sources([passage()], con)
    out = buffer.getvalue()
    assert "Streaming partial [1" in out and "Harbour reopens" in out


def test_sources_table() -> None:
    con, buffer = console()
    rows = [
        {
            "title": f"T{CSI_RED}",
            "source": "S",
            "author": f"Lena Park{CSI_RED}",
            "published": "2024-01-01",
            "chunks": 3,
            "path": "/p",
        }
    ]
    render_sources_table(rows, con)
    render_sources_table([], con)
    out = buffer.getvalue()
    assert "T" in out and "\x1b" not in out and "No articles indexed" in out
    assert "Author" in out and "Lena Park" in out


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "[99]",
        "\udcff\ud800 broken",
        "> " * 3000 + "deep",
        "- " * 3000 + "deep",
        "*" * 5000,
        "[a](" * 2000,
        "`" * 3000,
        "\x00\x1b\x9b" * 100,
        "x" * 100_000,
    ],
)
def test_malformed_answers_never_crash(answer: str) -> None:
    res = result(
        answer=answer,
        sentences=[CheckedSentence(answer, [99], False)],
        passages=[passage(title="t\udcff", text="x\ud800")],
        dropped_citations=[99],
    )
    for terminal in (False, True):
        out = rendered(res, terminal=terminal)
        out.encode("utf-8")  # no lone surrogates left
        if "deep" in answer:
            assert "deep" in out  # deep nesting is shown, not silently dropped


# --- JSON -----------------------------------------------------------------------------------------


def test_json_round_trips() -> None:
    res = result(dropped_citations=[7], usage={"prompt_tokens": 10})
    assert json.loads(to_json(res)) == res.to_json()


def test_json_round_trips_hostile_strings_and_is_terminal_safe() -> None:
    res = result(answer=f"x\udcff {C1_CSI} {RLO} \u2028 caf\u00e9", question="q\x1b[2J")
    text = to_json(res)
    text.encode("utf-8")
    assert json.loads(text) == res.to_json()
    for bad in ("\x1b", "\x9b", RLO, "\u2028"):
        assert bad not in text
    assert "café" in text


def test_import_is_light() -> None:
    code = "import sys, bot.ui.render; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plain_json_output_is_terminal_safe_and_lossless() -> None:
    from bot.ui.render import to_json_text

    data = [{"title": "CSI \x9b2J, line\u2028sep, bidi \u202e, café", "chunks": 2}]
    text = to_json_text(data)
    assert not re.search("[\x9b\u2028\u202e]", text)
    assert "café" in text and "\\u009b" in text
    assert json.loads(text) == data
