"""Does any retrieved passage answer the question? The gate every provider's answer passes.

The passages are grouped by article. An article's context is its retrieved passages plus its
title, outlet and publication date. A question is answerable when:

1. every name the question gives (`Needs.anchors`, less the index's outlet names) is in some
   article's context: written as in the question, or without a leading title word that the
   articles also write in lower case ("President Zelensky" for "Ukrainian president Volodymyr
   Zelensky"). A long question (more than LONG_QUESTION_TERMS words of its own) spans several
   reports and may miss some, unless it misses MISSING_SHARE of them and no passage is as close
   as CLOSE_DENSE;
2. an article that names them all holds at least TERM_SHARE of the question's other content
   words (`Needs.terms`; a word no passage holds weighs UNSEEN_WEIGHT: the reports may word it
   otherwise). A long question is judged on all its articles together;
3. for "how many", "how much", "when" and "what did X say" questions (and for any question when
   the closest passage is under the retrieval floor), a sentence of such an article answers
   (`answers`): it holds a number, a date or reported speech, next to the question's words and
   names. A "when" question may also be dated by the article's publication date.

A refusal says what is missing ("no passage says who won the Northland general election: none
mentions "election" with "Northland"").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from bot.answer.answer_type import Anchor, Needs, holds_type
from bot.core.types import Passage
from bot.core.values import name_matches
from bot.core.words import WORD_RE, content_words, quantity_class

# Share of the question's own content words an article must hold. Half: a question words its
# verb differently from the report ("died" / "were killed") but never shares only a name with it.
TERM_SHARE = 0.5
# The weight of a question word that no retrieved passage holds, against 1 for one that some do.
UNSEEN_WEIGHT = 0.5
# A long question may miss some of its names (it spans reports, some not retrieved), but not
# this share of them unless retrieval found a passage this close.
MISSING_SHARE = 0.5
CLOSE_DENSE = 0.5
# A question with more content words than this asks across reports: judged on them together.
LONG_QUESTION_TERMS = 5
# ... or more words and names together than this ("Did X report on A before Y mentioned B, C?").
LONG_QUESTION_WORDS = 6
# A question naming outlets this often compares reports, each answering its part.
CROSS_REPORT_OUTLETS = 2
# The cosine with the question at which a sentence answers "how many X" without naming X: a
# paraphrase ("death toll" for "people died"), not a number about something else.
COUNTED_PARAPHRASE = 0.55
# Kinds whose answer is a thing a sentence visibly holds (a number, a date, a quote).
_GATED_KINDS = frozenset({"count", "amount", "when", "say"})


@dataclass(frozen=True)
class Quotable:
    """A sentence an answer may quote, with its article and the sentence before it."""

    article_id: str
    text: str
    before: str = ""
    similarity: float = 0.0  # cosine with the question
    title: str = ""  # of its article


@dataclass
class ArticleContext:
    """One article's retrieved text as stems: the set, the order, and those written lower case."""

    article_id: str
    stems: set[str]
    sequence: list[str]
    lower: set[str]
    published: str
    common: frozenset[str] = frozenset()  # stems any retrieved passage writes in lower case
    # The last word of each name of several words in the retrieved passages, with the words
    # before it ("fc": {("eastfield",)}).
    qualified: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)

    def covers(self, anchor: Anchor) -> bool:
        """The article names `anchor`: as written, without a leading title word it writes in
        lower case, or, for a name of several words, by its last word alone when that word is
        no common word (written in lower case in some retrieved passage). Reports name
        a person or a team by the surname or nickname ("Poyer", "the Cowboys") after the first
        mention."""
        stems = list(anchor.stems)
        if _contains(self.sequence, stems):
            return True
        if len(stems) > 1 and stems[0] in self.lower and _contains(self.sequence, stems[1:]):
            return True
        head = stems[-1]
        if len(stems) < 2 or head not in self.stems or head in self.common or head.isdigit():
            return False
        # A head other names share ("Eastfield FC" for "Riverton FC") is no surname.
        return all(set(q) <= set(stems) for q in self.qualified.get(head, ()))

    def term_share(self, terms: frozenset[str], elsewhere: set[str]) -> float:
        """The weighted share of `terms` this article holds. A term no retrieved passage holds
        weighs UNSEEN_WEIGHT: the reports may word it otherwise ("died" / "death toll"); a term
        other articles hold but this one lacks weighs fully: it is what this one does not say."""
        if not terms:
            return 1.0
        weights = {t: 1.0 if t in elsewhere else UNSEEN_WEIGHT for t in terms}
        held = sum(w for t, w in weights.items() if t in self.stems)
        return held / sum(weights.values())


def _contains(sequence: list[str], part: list[str]) -> bool:
    if not part:
        return False
    first, n = part[0], len(part)
    return any(sequence[i : i + n] == part for i, stem in enumerate(sequence) if stem == first)


def article_contexts(passages: Sequence[Passage]) -> dict[str, ArticleContext]:
    texts: dict[str, list[str]] = {}
    published: dict[str, str] = {}
    for p in passages:
        article = str(p.article_id)
        if article not in texts:
            texts[article] = [str(p.title or ""), str(p.source or ""), _date_words(p.published)]
            published[article] = str(p.published or "")
        texts[article].append(p.text)
    out = {}
    for article, parts in texts.items():
        text = "\n".join(parts)
        sequence = content_words(text)
        lower = set(content_words(" ".join(w for w in WORD_RE.findall(text) if w.islower())))
        out[article] = ArticleContext(article, set(sequence), sequence, lower, published[article])
    common = frozenset().union(*(c.lower for c in out.values()))
    qualified = _qualified_heads(p.text for p in passages)
    return {a: replace(c, common=common, qualified=qualified) for a, c in out.items()}


def _qualified_heads(texts: Iterable[str]) -> dict[str, set[tuple[str, ...]]]:
    """The last word of each name of several words in `texts` (a sentence's first word counts:
    "Eastfield FC appointed..."), with the words before it."""
    heads: dict[str, set[tuple[str, ...]]] = {}
    for text in texts:
        runs: list[list[str]] = []
        end = -1
        for match in name_matches(text, openers=True):
            if runs and not text[end : match.start()].strip():
                runs[-1].append(match.group())
            else:
                runs.append([match.group()])
            end = match.end()
        for run in runs:
            stems = content_words(" ".join(run))
            if len(stems) > 1:
                heads.setdefault(stems[-1], set()).add(tuple(stems[:-1]))
    return heads


def _date_words(published: str | None) -> str:
    """ "2023-10-16" as "October 16 2023", so a question naming a report's date finds it."""
    import datetime as dt

    try:
        day = dt.date.fromisoformat(str(published or "")[:10])
    except ValueError:
        return ""
    return f"{day:%B} {day.day} {day.year}"


@dataclass
class Verdict:
    answerable: bool
    why: str = ""  # for a refusal: what no passage says
    articles: set[str] = field(default_factory=set)  # the articles that may answer


def judge(
    needs: Needs,
    passages: Sequence[Passage],
    sentences: Sequence[Quotable],
    *,
    best_dense: float = 1.0,
    min_relevance: float = 0.0,
) -> Verdict:
    """Whether `passages` answer `needs` (see the module docstring). `sentences` are the
    passages' quotable sentences, furniture left out; `best_dense` the
    retrieval's best similarity: under `min_relevance` a sentence must answer whatever the kind of
    question. The outlets a question names are no names to find (`read_question`)."""
    says = f"no passage says {needs.clause}"
    if not passages:
        return Verdict(False, "no indexed passage matches the filters")
    contexts = article_contexts(passages)
    needs = grounded(needs, set().union(*(c.stems for c in contexts.values())))
    asked, anchors = needs, needs.anchors
    unknown = [a.text for a in needs.sources if not any(c.covers(a) for c in contexts.values())]
    if unknown:
        return Verdict(False, f"{says}: no retrieved article is from {_quoted(unknown)}")
    missing = [a for a in anchors if not any(c.covers(a) for c in contexts.values())]
    if missing and _missing_refuses(needs, len(missing), len(anchors), best_dense):
        return Verdict(False, f"{says}: none mentions {_quoted([a.text for a in missing])}")
    needs = replace(needs, anchors=tuple(a for a in anchors if a not in missing))
    fit = set(contexts) if spans_reports(asked) else _fitting(needs, contexts)
    if not fit:
        return Verdict(False, f"{says}: {_gap(needs, contexts)}")
    weak = best_dense < min_relevance
    if (weak or needs.kind in _GATED_KINDS) and not _holds_answer(
        needs, fit, contexts, sentences, dated_ok=not weak
    ):
        return Verdict(False, says)
    return Verdict(True, articles=fit)


def grounded(needs: Needs, seen: set[str]) -> Needs:
    """`needs` judged by the subject's words a follow-up's rewrite adds ("Where did they stay?
    (Riverton, residents, evacuated)") when no retrieved passage holds any of its own words:
    those words then cannot tell reports apart, and the subject can."""
    if needs.context and needs.terms and not needs.terms & seen:
        return replace(needs, terms=needs.context)
    return needs


def spans_reports(needs: Needs) -> bool:
    """A question with more than LONG_QUESTION_TERMS words of its own, or LONG_QUESTION_WORDS
    words and names, or naming outlets CROSS_REPORT_OUTLETS times asks across reports ("Did X
    report A before Y reported B?")."""
    terms = len(needs.terms)
    if needs.outlets >= CROSS_REPORT_OUTLETS:
        return True
    return terms > LONG_QUESTION_TERMS or terms + len(needs.anchors) > LONG_QUESTION_WORDS


def _missing_refuses(needs: Needs, missing: int, named: int, best_dense: float) -> bool:
    """A short question needs every name it gives. A long one paraphrases several reports and
    may miss some of its names, unless it misses MISSING_SHARE of them and retrieval found no
    passage as close as CLOSE_DENSE."""
    if not spans_reports(needs):
        return True
    return missing / named >= MISSING_SHARE and best_dense < CLOSE_DENSE


def _fitting(needs: Needs, contexts: dict[str, ArticleContext]) -> set[str]:
    """The articles that may answer a short question: those naming every anchor and covering
    TERM_SHARE of the terms. (A long question paraphrases several reports, each answering a part
    in its own words: every article may.)"""
    seen = set().union(*(c.stems for c in contexts.values()))
    covering = {a for a, c in contexts.items() if c.term_share(needs.terms, seen) >= TERM_SHARE}
    return {a for a in covering if all(contexts[a].covers(x) for x in needs.anchors)}


def _gap(needs: Needs, contexts: dict[str, ArticleContext]) -> str:
    """What the closest article lacks, in the question's words."""
    anchors = needs.anchors
    seen = set().union(*(c.stems for c in contexts.values()))
    best = max(
        contexts.values(),
        key=lambda c: (sum(c.covers(a) for a in anchors), c.term_share(needs.terms, seen)),
    )
    lacking = _surface(needs.question, needs.terms - best.stems)
    named = [a.text for a in anchors if best.covers(a)]
    if lacking and named:
        return f"none mentions {_quoted(lacking)} with {_quoted(named)}"
    if lacking:
        return f"none mentions {_quoted(lacking)}"
    return f"no single report mentions {_quoted([a.text for a in anchors])}"


def _surface(question: str, stems: set[str] | frozenset[str]) -> list[str]:
    """The question's words whose stems are `stems`, in question order."""
    out: list[str] = []
    for word in WORD_RE.findall(question):
        if set(content_words(word)) & stems and word not in out:
            out.append(word)
    return out


def _quoted(words: list[str]) -> str:
    return " or ".join(f"“{w}”" for w in words)


def _holds_answer(
    needs: Needs,
    fit: set[str],
    contexts: dict[str, ArticleContext],
    sentences: Sequence[Quotable],
    *,
    dated_ok: bool,
) -> bool:
    """A sentence of a fitting article answers (`answers`); for "when", with `dated_ok`, a
    fitting article with a publication date also does."""
    if dated_ok and needs.kind == "when" and any(contexts[a].published for a in fit):
        return True
    if needs.speaker is not None:
        fit = {a for a in fit if contexts[a].covers(needs.speaker)}
    seen = {w for quote in sentences for w in content_words(quote.text)}
    return any(quote.article_id in fit and answers(needs, quote, seen) for quote in sentences)


def answers(
    needs: Needs, quote: Quotable, seen: Iterable[str] = (), *, strict: bool = False
) -> bool:
    """`quote` holds what `needs` asks for; it and the sentence before it cover TERM_SHARE of
    the question's other words, one of them in `quote` itself unless it reports speech (a word
    no retrieved sentence holds, `seen` being those that some do, weighs UNSEEN_WEIGHT: the
    reports may word it otherwise); and each name the question gives is in it, the sentence
    before or its article's title. A number in a sentence about something else does not answer
    "how many", nor does one about the same bridge when the question asks about its collapse.
    A sentence as close to the question as COUNTED_PARAPHRASE may word all of it otherwise ("the
    death toll rose to 17" for "how many people died"), but what "how many" counts must be
    named unless it is that close, and a count of deaths, injuries or the like (a quantity class
    of `quantity_class`) is answered only by a sentence that counts that quantity: "two
    firefighters were treated" says nothing of how many died, however close. `strict` (for a
    sentence added after the answer): no paraphrase, and the sentence itself names what is
    counted."""
    everything = needs.terms | {s for a in needs.anchors for s in a.stems}
    if not holds_type(needs.kind, quote.text, everything):
        return False
    if needs.verb and needs.verb not in content_words(quote.text):
        return False  # "what did X announce": a sentence where X announces, not one near it
    window = content_words(f"{quote.before}\n{quote.text}")
    # Reported speech may be introduced by the sentence before ("He told them:"); a number or a
    # date must be stated beside one of the question's words at least, in the same sentence.
    own = content_words(quote.text)
    if not _counts_the_quantity(needs, own):
        return False
    paraphrase = quote.similarity >= COUNTED_PARAPHRASE and not strict
    if strict and needs.counted and needs.counted not in own:
        return False
    if needs.terms and not paraphrase:
        if needs.kind != "say" and not needs.terms & set(own):
            return False
        if _share(needs.terms, set(window), set(seen)) < TERM_SHARE:
            return False
    if needs.counted and needs.counted not in window and not paraphrase:
        return False
    title = content_words(quote.title)
    return all(
        _contains(window, list(a.stems)) or _contains(title, list(a.stems)) for a in needs.anchors
    )


def _counts_the_quantity(needs: Needs, words: Iterable[str]) -> bool:
    """For "how many" asking after a quantity class (deaths, injuries...), `words` name it."""
    if needs.kind != "count":
        return True
    asked = {quantity_class(t) for t in needs.terms} - {None}
    return not asked or bool(asked & {quantity_class(w) for w in words})


def _share(terms: frozenset[str], held: set[str], seen: set[str]) -> float:
    """The weighted share of `terms` in `held`; a term outside `seen` weighs UNSEEN_WEIGHT."""
    weights = {t: 1.0 if t in seen else UNSEEN_WEIGHT for t in terms}
    return sum(w for t, w in weights.items() if t in held) / sum(weights.values())
