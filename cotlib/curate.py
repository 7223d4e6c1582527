"""Curation: the filters that papers on distilled reasoning data found to matter, each saying what it dropped.

Pure logic over a :class:`cotlib.export.Selection` (nothing is read or written here); each filter returns a new
selection whose ``dropped`` counter gains one reason per removed record, so the notebook and the dataset card can
show what was removed and why.

- :func:`by_difficulty`: keep questions the teacher solves sometimes, not always or never (LIMO, OpenThoughts), from
  a pass rate per question (k samples each; :func:`pass_rates` reads them off records).
- :func:`dedupe`: exact duplicates (after normalization) and near-duplicates (Jaccard similarity of word 5-gram
  shingles at or above a threshold).
- :func:`decontaminate`: drop training questions sharing a word 8-gram with any evaluation question (s1, open-r1).
- :func:`by_trace`: length, repetition and language-consistency filters for solutions and reasoning traces.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from cotlib.data import normalize_question
from cotlib.export import Selection
from cotlib.records import CoTRecord

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens; CJK text has no spaces, so each CJK character counts as a word."""
    tokens: list[str] = []
    for token in _WORD.findall(unicodedata.normalize("NFKC", text).lower()):
        if any(_is_cjk(c) for c in token):
            tokens.extend(c for c in token if not c.isspace())
        else:
            tokens.append(token)
    return tokens


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)} or ({tuple(tokens)} if tokens else set())


def _keep(selection: Selection, keep: Callable[[CoTRecord], str | None]) -> Selection:
    """A new selection without the records for which ``keep`` names a reason to drop."""
    kept, dropped = [], Counter(selection.dropped)
    for record in selection.records:
        reason = keep(record)
        if reason is None:
            kept.append(record)
        else:
            dropped[reason] += 1
    return Selection(kept, dropped)


def pass_rates(records: Iterable[CoTRecord], min_samples: int = 4) -> dict[str, tuple[int, int]]:
    """``{question id: (verified samples, samples)}`` from records: the first attempt and every fresh sample the
    search drew (``resample`` events). A search stops at its first verified sample, so a rate is a lower bound, and
    a question answered right at once has one sample: questions with fewer than ``min_samples`` get no rate (a
    difficulty filter keeps them). To rate them all, sample each k times, as LIMO and OpenThoughts do:
    :func:`cotlib.generate.pass_rates`."""
    rates: dict[str, tuple[int, int]] = {}
    for r in records:
        samples = 1 + sum(e.get("event") == "resample" for e in r.trace)
        solved = int(r.method == "direct") + int(r.method == "search" and r.found_at_prefix == 0)
        done, total = rates.get(r.id, (0, 0))
        rates[r.id] = (done + solved, total + samples)
    return {key: rate for key, rate in rates.items() if rate[1] >= min_samples}


def by_difficulty(selection: Selection, rates: Mapping[str, tuple[int, int]], low: float = 0.0,
                  high: float = 1.0) -> Selection:
    """Keep questions whose pass rate lies strictly between ``low`` and ``high``: always solved teaches little,
    never solved has no verified sample. Questions without a rate (reference rows) are kept."""

    def keep(record: CoTRecord) -> str | None:
        if record.id not in rates:
            return None
        solved, samples = rates[record.id]
        rate = solved / samples if samples else 0.0
        if rate <= low:
            return "too hard (never solved)" if low == 0 else f"too hard (pass rate <= {low:.0%})"
        if rate >= high:
            return "too easy (always solved)" if high == 1 else f"too easy (pass rate >= {high:.0%})"
        return None

    return _keep(selection, keep)


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def dedupe(selection: Selection, threshold: float = 0.8, n: int = 5) -> Selection:
    """Drop exact duplicate questions, then near-duplicates (word ``n``-gram Jaccard >= ``threshold`` with a kept
    question); the first of each group stays. Candidates are found through shared shingles, not all pairs."""
    seen: set[str] = set()
    kept_shingles: list[set] = []
    index: dict[tuple[str, ...], list[int]] = {}

    def keep(record: CoTRecord) -> str | None:
        key = normalize_question(record.question)
        if key in seen:
            return "duplicate question"
        shingles = ngrams(record.question, n)
        candidates = {i for s in shingles for i in index.get(s, ())}
        if any(jaccard(shingles, kept_shingles[i]) >= threshold for i in candidates):
            return f"near-duplicate question (Jaccard >= {threshold})"
        seen.add(key)
        for s in shingles:
            index.setdefault(s, []).append(len(kept_shingles))
        kept_shingles.append(shingles)
        return None

    return _keep(selection, keep)


def decontaminate(selection: Selection, evaluation: Iterable[str], n: int = 8) -> Selection:
    """Drop training records whose question shares a word ``n``-gram with any evaluation question; an evaluation
    question shorter than ``n`` words counts as contained when its whole word sequence appears in the question."""
    banned: set[tuple[str, ...]] = set()
    for question in evaluation:
        tokens = tuple(words(question))
        banned |= {tokens[i:i + n] for i in range(len(tokens) - n + 1)} if len(tokens) >= n else {tokens}
    sizes = {len(gram) for gram in banned}

    def keep(record: CoTRecord) -> str | None:
        tokens = tuple(words(record.question))
        windows = (tokens[i:i + k] for k in sizes for i in range(len(tokens) - k + 1))
        return f"contaminated ({n}-gram overlap with evaluation)" if any(w in banned for w in windows) else None

    return _keep(selection, keep)


def repetition(text: str, n: int = 4) -> float:
    """The share of word ``n``-grams that repeat an earlier one (0: none; near 1: a loop)."""
    tokens = words(text)
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(map(_is_cjk, letters)) / len(letters) if letters else 0.0


def by_trace(selection: Selection, max_chars: int = 16_000, max_repetition: float = 0.5,
             language: bool = True) -> Selection:
    """Drop records whose solution plus trace is longer than ``max_chars``, that loop (repeated 4-grams above
    ``max_repetition``), or whose text is not in the question's language (a Chinese question answered in English,
    or the reverse; mixed-language traces are a known failure of distilled reasoning data)."""

    def keep(record: CoTRecord) -> str | None:
        text = "\n".join(t for t in (record.reasoning, record.text) if t)
        if len(text) > max_chars:
            return f"too long (> {max_chars} characters)"
        if repetition(text) > max_repetition:
            return f"repetitive (> {max_repetition:.0%} repeated 4-grams)"
        if language:
            asked, answered = cjk_share(record.question) > 0.3, cjk_share(text) > 0.3
            if asked != answered:
                return "language differs from the question's"
        return None

    return _keep(selection, keep)
