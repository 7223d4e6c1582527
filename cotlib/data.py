"""Question → golden-answer pairs: loading and validating them, and the bundled sample and demo sets.

Accepted inputs (a path, a URL, or the Python object itself):

- the original tutorial's JSON object ``{"question": "answer", ...}`` (also its export ``{"qa_pairs": {...}}``),
- a JSON list of ``{"question": ..., "answer": ..., <any other fields go to meta>}``,
- JSONL with one such object per line.

Every problem raises :class:`QADataError` with one line naming the file and the line/column or item.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from math import comb, gcd
from pathlib import Path
from typing import Any

from cotlib.errors import QADataError

SAMPLE_URL = "https://raw.githubusercontent.com/cotlib/cotlib/main/cotlib/data/sample_qa.json"
#: The easy tier: questions the 135M offline teacher mostly solves, not always (bench/bench_passk.py), so
#: chapter 3 can show direct answers and search working for real; the standard tier is what a real teacher is for.
EASY_TYPES = ("times_table", "small_sum")
STANDARD_TYPES = ("arithmetic", "word_problem", "letter_count", "fraction", "binomial", "linear_equation", "percentage")
TASK_TYPES = EASY_TYPES + STANDARD_TYPES
DATA_DIR = Path(__file__).with_name("data")  # the bundled files (package data)
HELDOUT_EVERY = 5  # about one question in five is held out for chapter 6's evaluation




@dataclass(frozen=True)
class QAPair:
    """One question with its golden answer. ``id`` is stable: a hash of the normalized question."""

    id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_question(question: str) -> str:
    """Unicode-normalized, case-folded, whitespace-collapsed: two questions equal under this are duplicates."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def question_id(question: str) -> str:
    return hashlib.sha256(normalize_question(question).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------- validation


def _where(origin: str, index: int | None = None, line: int | None = None) -> str:
    if line is not None:
        return f"{origin}:{line}"
    return f"{origin}: item {index}" if index is not None else origin


def _answer_text(value: Any, where: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        kind = {type(None): "null", bool: "a boolean", list: "a list", dict: "an object"}[type(value)]
        raise QADataError(f"{where}: answer is {kind}; it must be a string or a number")
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise QADataError(f"{where}: answer has unsupported type {type(value).__name__}")
    if not value.strip():
        raise QADataError(f"{where}: answer is empty")
    return value.strip()


def _question_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise QADataError(f"{where}: question must be a string, not {type(value).__name__}")
    if not value.strip():
        raise QADataError(f"{where}: question is empty")
    return value.strip()


def _build(rows: Iterable[tuple[str, Any, Any, dict[str, Any]]]) -> list[QAPair]:
    """rows: (where, question, answer, meta) → validated pairs, rejecting duplicate questions."""
    pairs: list[QAPair] = []
    seen: dict[str, str] = {}
    for where, question, answer, meta in rows:
        q, a = _question_text(question, where), _answer_text(answer, where)
        qid = question_id(q)
        if qid in seen:
            raise QADataError(f"{where}: duplicate question {q[:60]!r} (first at {seen[qid]})")
        seen[qid] = where
        pairs.append(QAPair(qid, q, a, meta))
    return pairs


def _from_object(data: Any, origin: str, lines: dict[int, int] | None = None) -> list[QAPair]:
    """Pairs from parsed JSON. ``lines`` maps item index → line number (for JSONL)."""
    if isinstance(data, dict):
        if set(data) <= {"qa_pairs", "timestamp"} and isinstance(data.get("qa_pairs"), dict):
            data = data["qa_pairs"]  # the original tutorial's export file
        return _build((f"{origin}: question {q[:60]!r}", q, a, {}) for q, a in data.items())
    if isinstance(data, list):
        rows = []
        for i, item in enumerate(data):
            where = _where(origin, i, (lines or {}).get(i))
            if not isinstance(item, dict):
                raise QADataError(f"{where}: expected an object with 'question' and 'answer', got {type(item).__name__}")
            missing = [k for k in ("question", "answer") if k not in item]
            if missing:
                raise QADataError(f"{where}: missing field {' and '.join(repr(k) for k in missing)}")
            meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
            meta = {**meta, **{k: v for k, v in item.items() if k not in ("question", "answer", "id", "meta")}}
            rows.append((where, item["question"], item["answer"], meta))
        return _build(rows)
    raise QADataError(f"{origin}: top level must be an object {{question: answer}} or a list, not {type(data).__name__}")


def _reject_duplicate_keys(text: str, origin: str):
    """An ``object_pairs_hook`` that refuses duplicate keys (``json`` would silently keep the last)."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                needle = json.dumps(key, ensure_ascii=False)
                first = text.find(needle)
                second = text.find(needle, first + 1)
                line = text.count("\n", 0, second) + 1 if second >= 0 else None
                raise QADataError(f"{_where(origin, line=line)}: duplicate question {key[:60]!r}")
            seen.add(key)
        return dict(pairs)

    return hook


def _json_error(err: json.JSONDecodeError, line: bool = True) -> str:
    """``line:col: invalid JSON: why``, the same on every Python (3.13 reworded the trailing-comma message and moved
    its column from the closing bracket to the comma)."""
    comma = err.pos if err.doc[err.pos : err.pos + 1] == "," else len(err.doc[: err.pos].rstrip()) - 1
    after = err.doc[comma + 1 :].lstrip()[:1]
    if comma >= 0 and err.doc[comma] == "," and after in ("}", "]"):  # the classic hand-edit mistake
        pos, why = comma, f"trailing comma before '{after}'"
    else:
        pos, why = err.pos, err.msg
    lineno, colno = err.doc.count("\n", 0, pos) + 1, pos - err.doc.rfind("\n", 0, pos)
    return f"{lineno}:{colno}: invalid JSON: {why}" if line else f"{colno}: invalid JSON line: {why}"


def parse_qa_text(text: str, origin: str = "<text>", jsonl: bool | None = None) -> list[QAPair]:
    """Parse JSON or JSONL text (``jsonl=None`` guesses from the content)."""
    if not text.strip():
        raise QADataError(f"{origin}: empty file")
    if jsonl is None:
        stripped = [ln for ln in text.splitlines() if ln.strip()]
        jsonl = len(stripped) > 1 and all(ln.lstrip().startswith("{") and ln.rstrip().endswith("}") for ln in stripped)
    if not jsonl:
        try:
            data = json.loads(text, object_pairs_hook=_reject_duplicate_keys(text, origin))
        except json.JSONDecodeError as err:
            raise QADataError(f"{origin}:{_json_error(err)}") from None
        return _from_object(data, origin)
    items, lines = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line, object_pairs_hook=_reject_duplicate_keys(line, f"{origin}:{number}"))
        except json.JSONDecodeError as err:
            raise QADataError(f"{origin}:{number}:{_json_error(err, line=False)}") from None
        lines[len(items)] = number
        items.append(item)
    return _from_object(items, origin, lines)


def read_qa_file(path: str | Path) -> list[QAPair]:
    """Load and validate a JSON/JSONL file (UTF-8, with or without BOM)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise QADataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise QADataError(f"{path}: is a directory, not a file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise QADataError(f"{path}:{line}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    return parse_qa_text(text, str(path), jsonl=True if path.suffix == ".jsonl" else None)


def load_qa(source: str | Path | dict[str, Any] | list[Any], timeout: float = 10.0) -> list[QAPair]:
    """Pairs from a path, an http(s) URL, a ``{question: answer}`` dict, or a list of ``{question, answer}`` objects.

    Every problem is a :class:`QADataError` naming the source (and line, item or question where it can)."""
    origin = f"<{type(source).__name__}>" if isinstance(source, (dict, list)) else str(source)
    try:
        pairs = _load_qa(source, timeout)
    except QADataError:
        raise
    except RecursionError:
        raise QADataError(f"{origin}: nested too deeply to be question/answer data") from None
    except UnicodeError as err:  # e.g. a lone surrogate such as \ud800, which no UTF-8 file can hold
        raise QADataError(f"{origin}: not valid Unicode text ({err.reason})") from None
    except (ValueError, TypeError, AttributeError) as err:
        raise QADataError(f"{origin}: not question/answer data ({type(err).__name__}: {str(err)[:120]})") from None
    if not pairs:
        raise QADataError(f"{origin}: no questions in it")
    return pairs


def _load_qa(source: str | Path | dict[str, Any] | list[Any], timeout: float) -> list[QAPair]:
    if isinstance(source, (dict, list)):
        return _from_object(source, f"<{type(source).__name__}>")
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as resp:
                raw = resp.read()
        except (OSError, ValueError) as err:
            raise QADataError(f"{source}: download failed ({err})") from None
        return parse_qa_text(raw.decode("utf-8-sig", errors="strict"), source, jsonl=source.endswith(".jsonl") or None)
    return read_qa_file(source)


def offline() -> bool:
    """True when ``COTLIB_OFFLINE`` or ``HF_HUB_OFFLINE`` is set: no download is even tried."""
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("COTLIB_OFFLINE", "HF_HUB_OFFLINE"))


def fetch_qa(url: str, dest: str | Path, timeout: float = 10.0) -> tuple[Path, str]:
    """Download ``url`` to ``dest`` (validated before it is kept), or copy the bundled sample when offline.

    Returns the path and a note saying which happened, for the notebook to show.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not offline():
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                raw = resp.read()
            parse_qa_text(raw.decode("utf-8-sig"), url)  # refuse to save bad data
            return write_atomic(dest, raw), f"downloaded {url}"
        except (OSError, ValueError) as err:
            reason = f"download failed ({err})"
    else:
        reason = "offline mode"
    shutil.copyfile(DATA_DIR / "sample_qa.json", dest)
    return dest, f"{reason}: using the bundled copy of the sample"


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    tmp.replace(path)
    return path


def save_qa(pairs: Iterable[QAPair], path: str | Path) -> Path:
    """Write pairs as JSONL (all fields), atomically."""
    return write_atomic(path, "".join(json.dumps(p.as_dict(), ensure_ascii=False) + "\n" for p in pairs))


def bundled(name: str) -> list[QAPair]:
    """A dataset shipped in ``cotlib/data``: ``"sample"`` (the original two questions) or ``"demo"``."""
    files = {"sample": "sample_qa.json", "demo": "demo_qa.jsonl"}
    if name not in files:
        raise ValueError(f"unknown bundled dataset {name!r}; choose from {sorted(files)}")
    return read_qa_file(DATA_DIR / files[name])


def split(pairs: Iterable[QAPair], part: str) -> list[QAPair]:
    """The ``"train"`` or ``"heldout"`` part of the demo set (fixed by each pair's ``meta['split']``)."""
    return [p for p in pairs if p.meta.get("split") == part]


# ------------------------------------------------------------------------------------------------ the demo set
#
# Each generator returns (question, golden answer, reference steps): a correct worked solution written by the
# generator itself, which chapters 4-6 can add (labelled ``method="reference"``) when a weak offline teacher verified
# too few. Every reference solution is checked with ``verify.check`` against its golden answer (tests/test_data.py).

Made = tuple[str, str, list[str]]


def _frac_latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _plain(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _lowest(num: int, den: int, value: Fraction, zh: bool) -> str:
    if (num, den) == (value.numerator, value.denominator):
        return f"{num}/{den} 已是最简分数" if zh else f"{num}/{den} is already in lowest terms"
    return f"化成最简分数：{num}/{den} = {_plain(value)}" if zh else f"In lowest terms: {num}/{den} = {_plain(value)}"


def _decimal(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def reference_solution(steps: list[str], answer: str, zh: bool) -> str:
    """Numbered steps, one per line, then the boxed answer: the format chapter 3 asks the teacher for."""
    lines = [f"第 {i} 步：{step}" if zh else f"Step {i}: {step}" for i, step in enumerate(steps, start=1)]
    lines.append(f"答案是 \\boxed{{{answer}}}。" if zh else f"The answer is \\boxed{{{answer}}}.")
    return "\n".join(lines)


def _times_table(rng: random.Random, zh: bool) -> Made:
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    if zh:
        return f"计算 {a} × {b} 等于多少？", str(a * b), [f"{a} × {b} 表示 {a} 个 {b} 相加。", f"{a} × {b} = {a * b}。"]
    return f"What is {a} × {b}?", str(a * b), [f"{a} × {b} means {a} groups of {b}.", f"{a} × {b} = {a * b}."]


def _small_sum(rng: random.Random, zh: bool) -> Made:
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    if zh:
        return f"小明有 {a} 支铅笔，又得到 {b} 支。他现在有几支铅笔？", str(a + b), [
            f"小明原来有 {a} 支铅笔，又得到 {b} 支。", f"{a} + {b} = {a + b}。"]
    return f"Sam has {a} pencils and gets {b} more. How many pencils does Sam have now?", str(a + b), [
        f"Sam starts with {a} pencils and gets {b} more.", f"{a} + {b} = {a + b}."]


def _arithmetic(rng: random.Random, zh: bool) -> Made:
    op = rng.choice("+-×÷")
    a, b = rng.randint(12, 999), rng.randint(2, 99)
    if op == "÷":
        a = a * b
    value = {"+": a + b, "-": a - b, "×": a * b, "÷": a // b}[op]
    question = f"计算 {a} {op} {b} 等于多少？" if zh else f"What is {a} {op} {b}?"
    if op == "×" and b >= 10:
        tens, units = b - b % 10, b % 10
        steps = [f"{a} × {b} = {a} × {tens} + {a} × {units}", f"{a} × {tens} = {a * tens}, {a} × {units} = {a * units}",
                 f"{a * tens} + {a * units} = {value}"]
    elif op == "÷":
        steps = [f"{b} × {value} = {a}", f"{a} ÷ {b} = {value}"]
    else:
        steps = [f"{a} {op} {b} = {value}"]
    return question, str(value), [s + ("。" if zh else ".") for s in steps]


def _word_problem(rng: random.Random, zh: bool) -> Made:
    kind = rng.randrange(3)
    if kind == 0:
        total, b, c = rng.randint(30, 120), rng.randint(5, 20), rng.randint(5, 20)
        left = total - b - c
        if zh:
            return (f"面包师做了 {total} 个松饼，上午卖出 {b} 个，下午卖出 {c} 个。还剩多少个松饼？", str(left),
                    [f"一共卖出 {b} + {c} = {b + c} 个。", f"还剩 {total} - {b + c} = {left} 个。"])
        return (f"A baker makes {total} muffins. She sells {b} in the morning and {c} in the afternoon. "
                "How many muffins are left?", str(left),
                [f"She sells {b} + {c} = {b + c} muffins in all.", f"{total} - {b + c} = {left} muffins are left."])
    if kind == 1:
        n, price = rng.randint(2, 9), rng.randint(2, 15)
        paid = (n * price // 10 + 1) * 10
        cost, change = n * price, paid - n * price
        if zh:
            return (f"小明买了 {n} 本笔记本，每本 {price} 元，付了 {paid} 元。应找回多少元？", str(change),
                    [f"笔记本一共 {n} × {price} = {cost} 元。", f"应找回 {paid} - {cost} = {change} 元。"])
        return (f"Tom buys {n} notebooks at ${price} each and pays with ${paid}. How many dollars of change "
                "does he get?", str(change),
                [f"The notebooks cost {n} × {price} = {cost} dollars.", f"His change is {paid} - {cost} = {change} dollars."])
    v1, t1, v2, t2 = rng.randint(40, 90), rng.randint(2, 5), rng.randint(40, 90), rng.randint(1, 4)
    d1, d2 = v1 * t1, v2 * t2
    if zh:
        return (f"一列火车以每小时 {v1} 公里的速度行驶 {t1} 小时，然后以每小时 {v2} 公里的速度行驶 {t2} 小时。"
                "一共行驶了多少公里？", str(d1 + d2),
                [f"第一段：{v1} × {t1} = {d1} 公里。", f"第二段：{v2} × {t2} = {d2} 公里。", f"一共 {d1} + {d2} = {d1 + d2} 公里。"])
    return (f"A train travels at {v1} km/h for {t1} hours, then at {v2} km/h for {t2} hours. How many kilometres "
            "does it travel in total?", str(d1 + d2),
            [f"First part: {v1} × {t1} = {d1} km.", f"Second part: {v2} × {t2} = {d2} km.",
             f"In total: {d1} + {d2} = {d1 + d2} km."])


WORDS = ("banana", "strawberry", "mississippi", "committee", "bookkeeper", "assessment", "programming", "parallel",
         "cinnamon", "occurrence", "tomorrow", "necessary", "embarrass", "accommodate", "millennium", "raspberry")


def _letter_count(rng: random.Random, zh: bool) -> Made:
    word = rng.choice(WORDS)
    letter = rng.choice(sorted(set(word)))
    count = word.count(letter)
    spelled = ", ".join(word)
    places = ", ".join(str(i) for i, ch in enumerate(word, start=1) if ch == letter)
    if zh:
        return (f"单词 “{word}” 中有几个字母 “{letter}”？", str(count),
                [f"逐个写出字母：{spelled}。", f"字母 “{letter}” 出现在第 {places} 个位置。", f"一共 {count} 个。"])
    return (f'How many times does the letter "{letter}" appear in the word "{word}"?', str(count),
            [f"Spell it out: {spelled}.", f'The letter "{letter}" is at position(s) {places}.', f"That is {count} time(s)."])


def _fraction(rng: random.Random, zh: bool) -> Made:
    a, b = Fraction(rng.randint(1, 9), rng.randint(2, 12)), Fraction(rng.randint(1, 9), rng.randint(2, 12))
    op = rng.choice("+-×")
    value = {"+": a + b, "-": a - b, "×": a * b}[op]
    expr = f"{a.numerator}/{a.denominator} {op} {b.numerator}/{b.denominator}"
    if op == "×":
        num, den = a.numerator * b.numerator, a.denominator * b.denominator
        steps = [f"Multiply the numerators and the denominators: {expr} = {num}/{den}", _lowest(num, den, value, False)]
        steps_zh = [f"分子乘分子，分母乘分母：{expr} = {num}/{den}", _lowest(num, den, value, True)]
    else:
        lcd = a.denominator * b.denominator // gcd(a.denominator, b.denominator)
        x, y = a.numerator * lcd // a.denominator, b.numerator * lcd // b.denominator
        result = x + y if op == "+" else x - y
        steps = [f"The common denominator of {a.denominator} and {b.denominator} is {lcd}",
                 f"{expr} = {x}/{lcd} {op} {y}/{lcd} = {result}/{lcd}", _lowest(result, lcd, value, False)]
        steps_zh = [f"{a.denominator} 和 {b.denominator} 的公分母是 {lcd}",
                    f"{expr} = {x}/{lcd} {op} {y}/{lcd} = {result}/{lcd}", _lowest(result, lcd, value, True)]
    if zh:
        return f"计算 {expr}，结果写成最简分数。", _frac_latex(value), [s + "。" for s in steps_zh]
    return f"What is {expr}? Give the answer as a fraction in lowest terms.", _frac_latex(value), [s + "." for s in steps]


def _binomial(rng: random.Random, zh: bool) -> Made:
    if rng.random() < 0.4:
        n = rng.randint(5, 12)
        k = rng.randint(2, n - 2)
        formula = f"C({n}, {k}) = {n}! / ({k}! × {n - k}!) = {comb(n, k)}"
        if zh:
            return (f"从 {n} 个人中选出 {k} 人组成小组，有多少种不同的选法？", str(comb(n, k)),
                    [f"不计顺序地选人，是组合数 C({n}, {k})。", formula + "。"])
        return (f"In how many ways can a committee of {k} be chosen from {n} people?", str(comb(n, k)),
                [f"The order does not matter, so it is the binomial coefficient C({n}, {k}).", formula + "."])
    n = rng.randint(4, 8)
    k = rng.randint(1, n - 1)
    p, q, c = rng.randint(1, 5), rng.randint(2, 7), rng.randint(2, 4)
    first, second = Fraction(p, q) ** k, Fraction(-1, c) ** (n - k)
    value = comb(n, k) * first * second
    expr = f"$\\left(\\frac{{{p}}}{{{q}}}x-\\frac{{y}}{{{c}}}\\right)^{n}$"
    term = f"$x^{{{k}}}y^{{{n - k}}}$"
    product = f"{comb(n, k)} × {_plain(first)} × {_plain(second)} = {_plain(value)}"
    if zh:
        return (f"在 {expr} 的展开式中，{term} 的系数是多少？用最简分数表示。", _frac_latex(value),
                [f"由二项式定理，这一项是 C({n}, {k}) × ({p}/{q} x)^{k} × (-y/{c})^{n - k}。",
                 f"C({n}, {k}) = {comb(n, k)}，({p}/{q})^{k} = {_plain(first)}，(-1/{c})^{n - k} = {_plain(second)}。",
                 f"系数是 {product}。"])
    return (f"What is the coefficient of {term} in the expansion of {expr}? Express your answer as a common fraction.",
            _frac_latex(value),
            [f"By the binomial theorem the term is C({n}, {k}) × ({p}/{q} x)^{k} × (-y/{c})^{n - k}.",
             f"C({n}, {k}) = {comb(n, k)}, ({p}/{q})^{k} = {_plain(first)}, (-1/{c})^{n - k} = {_plain(second)}.",
             f"The coefficient is {product}."])


def _linear_equation(rng: random.Random, zh: bool) -> Made:
    x, a, b = rng.randint(-12, 15), rng.randint(2, 9), rng.randint(-20, 30)
    c = a * x + b
    lhs = f"{a}x {'+' if b >= 0 else '-'} {abs(b)}"
    if zh:
        move = f"两边{'减去' if b >= 0 else '加上'} {abs(b)}：{a}x = {c - b}。"
        return f"解方程：{lhs} = {c}。x 等于多少？", str(x), [move, f"两边除以 {a}：x = {c - b} ÷ {a} = {x}。"]
    move = f"{'Subtract' if b >= 0 else 'Add'} {abs(b)} {'from' if b >= 0 else 'to'} both sides: {a}x = {c - b}."
    return f"Solve for x: {lhs} = {c}.", str(x), [move, f"Divide both sides by {a}: x = {c - b} / {a} = {x}."]


def _percentage(rng: random.Random, zh: bool) -> Made:
    if rng.random() < 0.5:
        pct, base = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 75]), rng.randint(2, 40) * 20
        value = Fraction(pct * base, 100)
        if zh:
            return f"{base} 的 {pct}% 是多少？", _decimal(value), [f"{pct}% = {pct}/100。", f"{pct}/100 × {base} = {_decimal(value)}。"]
        return f"What is {pct}% of {base}?", _decimal(value), [f"{pct}% means {pct}/100.", f"{pct}/100 × {base} = {_decimal(value)}."]
    price, off = rng.randint(4, 30) * 10, rng.choice([10, 20, 25, 30, 50])
    value = Fraction(price * (100 - off), 100)
    if zh:
        return (f"一件外套原价 {price} 元，打折 {off}%（即便宜 {off}%）。现价是多少元？", _decimal(value),
                [f"便宜 {off}%，现价是原价的 {100 - off}%。", f"{price} × {100 - off}/100 = {_decimal(value)} 元。"])
    return (f"A jacket costs ${price} and is discounted by {off}%. What is the sale price in dollars?", _decimal(value),
            [f"A {off}% discount leaves {100 - off}% of the price.", f"{price} × {100 - off}/100 = {_decimal(value)} dollars."])


GENERATORS = dict(zip(TASK_TYPES, (_times_table, _small_sum, _arithmetic, _word_problem, _letter_count,
                                                _fraction, _binomial, _linear_equation, _percentage)))


def make_demo_set(per_type_and_language: int = 25, seed: int = 2026) -> list[QAPair]:
    """The seeded procedural demo set: every task type in English and Chinese, with a fixed train/held-out split
    and a reference worked solution (``meta["reference"]``) for every question."""
    pairs: list[QAPair] = []
    seen: set[str] = set()
    for task in GENERATORS:
        for lang in ("en", "zh"):
            rng = random.Random(f"{seed}-{task}-{lang}")
            made = 0
            while made < per_type_and_language:
                question, answer, steps = GENERATORS[task](rng, lang == "zh")
                qid = question_id(question)
                if qid in seen:
                    continue
                seen.add(qid)
                part = "heldout" if made % HELDOUT_EVERY == HELDOUT_EVERY - 1 else "train"
                meta = {"type": task, "tier": "easy" if task in EASY_TYPES else "standard", "lang": lang, "split": part,
                        "reference": reference_solution(steps, answer, lang == "zh")}
                pairs.append(QAPair(qid, question, answer, meta))
                made += 1
    return pairs
