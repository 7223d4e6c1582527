"""Is a chain-of-thought answer correct? Extract its one final answer, then compare it with the golden answer.

1. Extraction: the ``\\boxed{...}`` content (balanced braces), else the text after the last "final answer is",
   "The answer is", "Answer:", "答案是"… marker. Several *different* final answers, or none, is not correct.
2. Comparison, cheapest first: normalized text (case, punctuation, number words, thousands separators, units);
   exact arithmetic for plain numbers (integers, decimals, fractions, percent); then math-verify for mathematical equivalence (fractions, decimals, LaTeX, percent, degrees);
   then, only for free-text answers that neither can decide, an optional LLM judge.

math-verify's own timeouts use signals, which fail outside the main thread, so it runs here without them and
:func:`check` enforces its own time limit instead: it is safe to call from threads and asyncio tasks.
"""

from __future__ import annotations

import atexit
import logging
import re
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

from math_verify import parse, verify

if TYPE_CHECKING:
    from cotlib.config import Endpoint

# We run math-verify without its signal timeouts on purpose (see the module docstring); its warning says so.
logging.getLogger("math_verify").setLevel(logging.ERROR)

Judge = Callable[[str, str], bool]  # (gold, extracted) -> same answer?

_MARKER = re.compile(
    r"(?:\bfinal answer\s*(?:is|[:：])|\bthe answer is|\banswer\s*\**\s*[:：]|最终答案\s*(?:是|为|[:：])|答案\s*(?:是|为|[:：]))"
    r"\s*\**\s*[:：]?\s*(?P<answer>[^\n]*)",
    re.IGNORECASE,
)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_UNITS_AFTER_NUMBER = re.compile(r"^(?P<num>[-+]?\d[\d,]*(?:\.\d+)?(?:/\d+)?)\s*(?:[a-z][a-z .]*|[\u4e00-\u9fff]{1,3})$")
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {w: i for i, w in enumerate(_ONES)} | {w: 10 * (i + 2) for i, w in enumerate(_TENS)}
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``method`` says what decided it, ``reason`` says why in words."""

    correct: bool
    extracted: str | None
    method: str  # extraction | normalized | numeric | math-verify | llm-judge | timeout
    reason: str


# ---------------------------------------------------------------------------------------------------- extraction


def boxed_answers(text: str) -> list[str]:
    """Contents of every complete ``\\boxed{...}`` (nested braces allowed; an unclosed one is ignored)."""
    found = []
    for match in _BOX.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                found.append(text[start:i].strip())
                break
    return found


def _clean_marker_answer(raw: str) -> str:
    answer = re.split(r"(?<=[^\d])\.\s|\.\s+(?=[A-Z])|。|；|;", raw.strip(), maxsplit=1)[0]
    answer = answer.strip().strip("*").rstrip(".。!！ ").strip()
    math = re.fullmatch(r"\$+(.+?)\$+|\\\((.+?)\\\)|\\\[(.+?)\\\]", answer)
    if math:
        answer = next(g for g in math.groups() if g)
    return answer.rstrip(".。!！ ").strip()


def extract_answer(text: str) -> tuple[str | None, str]:
    """The one final answer in a solution, or ``None`` with the reason."""
    candidates = boxed_answers(text)
    source = "\\boxed{}"
    if not candidates:
        candidates = [_clean_marker_answer(m["answer"]) for m in _MARKER.finditer(text)]
        candidates = [c for c in candidates if c]
        source = "answer marker"
    if not candidates:
        return None, "no final answer: no \\boxed{} and no 'The answer is' / '答案是'"
    distinct = list(dict.fromkeys(normalize(c) for c in candidates))
    if len(distinct) > 1:
        shown = ", ".join(repr(c) for c in dict.fromkeys(candidates))
        return None, f"several different final answers ({source}): {shown}"
    return candidates[-1], f"from {source}"


# -------------------------------------------------------------------------------------------------- normalization


def _words_to_number(text: str) -> str:
    """'twenty-one' → '21', 'three' → '3', '三' → '3' (whole answer only; anything else is returned unchanged)."""
    words = text.replace("-", " ").split()
    if words and all(w in _NUMBER_WORDS for w in words) and len(words) <= 2:
        values = [_NUMBER_WORDS[w] for w in words]
        if len(values) == 1 or (values[0] >= 20 and values[0] % 10 == 0 and values[1] < 10):
            return str(sum(values))
    if text and all(ch in _ZH_DIGITS or ch == "十" for ch in text) and len(text) <= 3:
        if "十" not in text:
            return str(_ZH_DIGITS[text]) if len(text) == 1 else text
        tens, _, ones = text.partition("十")
        return str((_ZH_DIGITS.get(tens, 1) if tens else 1) * 10 + (_ZH_DIGITS.get(ones, 0) if ones else 0))
    return text


def normalize(answer: str) -> str:
    """A canonical text form: case, spacing, LaTeX text wrappers, trailing punctuation, separators, number words."""
    s = unicodedata.normalize("NFKC", answer).strip().casefold()
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\^\s*\{?\\circ\}?|°|\\degree", "", s)  # 90^\circ, 90° → 90
    s = re.sub(r"\\?[$€£¥]", "", s)  # \$18, $18, ¥18 → 18
    s = s.replace("\\!", "").replace("\\,", "").replace("\\ ", " ")
    s = re.sub(r"^[a-z]\s*=\s*", "", s)  # "x = 3" → "3"
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,000 → 1000
    s = re.sub(r"\s+", " ", s).strip(" .。!！,，*\"'“”")
    s = _words_to_number(s)
    units = _UNITS_AFTER_NUMBER.match(s)
    if units:
        s = units["num"].replace(",", "")
    return s


def _has_math(s: str) -> bool:
    return bool(re.search(r"\d|\\|[=^/]", s))


# ---------------------------------------------------------------------------------------------------- comparison


_FRAC = re.compile(r"(-?)\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")


def as_number(s: str) -> Fraction | None:
    """An exact value for plain numbers: '3', '-0.25', '7/8', '\\frac{63}{400}', '25%' (→ 1/4); else None."""
    s = s.replace(" ", "")
    scale = Fraction(1, 100) if s.endswith(("%", "\\%")) else Fraction(1)
    s = s.removesuffix("\\%").removesuffix("%")
    frac = _FRAC.fullmatch(s)
    if frac:
        sign = -1 if frac[1] else 1
        return sign * Fraction(int(frac[2]), int(frac[3])) * scale if int(frac[3]) else None
    if re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)(/[1-9]\d*)?", s):
        return Fraction(s) * scale
    return None


def _latex(s: str) -> str:
    return re.sub(r"(?<!\\)%", r"\\%", s)


def _parsed(answer: str) -> tuple:
    return tuple(parse(f"\\boxed{{{_latex(answer)}}}", parsing_timeout=None))


_gold_parsed = lru_cache(maxsize=4096)(_parsed)  # golden answers recur across checks; predictions rarely do


def _math_equal(gold: str, pred: str) -> bool | None:
    """math-verify's judgement, or None when either side does not parse as math."""
    gold_forms = [gold]
    if "%" in gold:  # "25%" also accepts "25" and "0.25"
        bare = gold.replace("\\%", "").replace("%", "").strip()
        gold_forms += [bare, f"{bare}/100"]
    pred_parsed = _parsed(pred)
    if not pred_parsed:
        return None
    undecided = True
    for form in gold_forms:
        gold_parsed = _gold_parsed(form)
        if gold_parsed:
            undecided = False
            if verify(list(gold_parsed), list(pred_parsed), timeout_seconds=None):
                return True
    return None if undecided else False


_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cotlib-verify")
atexit.register(_POOL.shutdown, wait=False, cancel_futures=True)


def check(prediction: str, gold: str, judge: Judge | None = None, timeout: float = 5.0) -> Verdict:
    """Verify a model's full solution text against the golden answer."""
    extracted, how = extract_answer(prediction)
    if extracted is None:
        return Verdict(False, None, "extraction", how)
    return compare(extracted, gold, judge=judge, timeout=timeout)


def compare(extracted: str, gold: str, judge: Judge | None = None, timeout: float = 5.0) -> Verdict:
    """Compare an already extracted final answer with the golden answer."""
    a, b = normalize(extracted), normalize(gold)
    if a == b:
        return Verdict(True, extracted, "normalized", "same answer after normalization")
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None:
        same = x == y or ("%" in b and x == y * 100)  # gold "25%" also accepts "25"
        why = "equal numbers" if same else f"{extracted!r} ≠ {gold!r}"
        return Verdict(same, extracted, "numeric", why)
    if _has_math(a) and _has_math(b):
        future = _POOL.submit(_math_equal, b, a)
        try:
            same = future.result(timeout=timeout)
        except FutureTimeout:
            return Verdict(False, extracted, "timeout", f"math-verify gave no answer within {timeout:g} s")
        if same is not None:
            why = "mathematically equivalent" if same else f"{extracted!r} is not equivalent to {gold!r}"
            return Verdict(same, extracted, "math-verify", why)
    if judge is not None:
        same = judge(gold, extracted)
        return Verdict(same, extracted, "llm-judge", f"the judge says {'same' if same else 'different'} answer")
    return Verdict(False, extracted, "normalized", f"{extracted!r} differs from {gold!r}")


JUDGE_PROMPT = (
    "You compare two short answers to the same question. Reply with exactly one word: YES if they mean the same "
    "answer, NO otherwise."
)


def llm_judge(endpoint: Endpoint) -> Judge:
    """A judge backed by a camel ``ChatAgent``: only asked when the deterministic checks cannot decide."""
    from cotlib.config import chat_agent

    def judge(gold: str, extracted: str) -> bool:
        agent = chat_agent(endpoint, JUDGE_PROMPT, temperature=0.0, max_tokens=4)
        reply = agent.step(f"Golden answer: {gold}\nCandidate answer: {extracted}\nSame answer?").msgs[0].content
        return reply.strip().upper().startswith("YES")

    return judge
