"""From chapter-3 records to training data: Alpaca rows (the original format), chat messages, step labels.

- :func:`select` validates the records and keeps the verified ones (an explicit switch keeps the rest, flagged),
  dropping duplicate questions; it says what it dropped and why.
- :func:`add_references` tops a small selection up with reference worked solutions (the demo set has one for every
  question), labelled ``method="reference"`` and counted apart: for when a weak offline teacher verified too few.
- :func:`to_alpaca`, :func:`to_chat`, :func:`to_prm` build the three variants; :func:`train_test_split` splits them
  deterministically; :func:`write_json` / :func:`write_jsonl` write atomically; :func:`to_dataset` makes a
  ``datasets.DatasetDict``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotlib import verify
from cotlib.data import QAPair, normalize_question, write_atomic
from cotlib.errors import ExportError, RecordError
from cotlib.records import CoTRecord, as_records
from cotlib.search import split_steps

SYSTEM_PROMPT = "You are a helpful assistant. Solve the problem step by step and give the final answer as \\boxed{answer}."
REFERENCE_TEACHER = "reference solution (cotlib demo-set generator)"


@dataclass
class Selection:
    """The records a dataset is built from, and what was dropped (reason -> count)."""

    records: list[CoTRecord]
    dropped: Counter = field(default_factory=Counter)

    @property
    def references(self) -> int:
        return sum(r.method == "reference" for r in self.records)

    def summary(self) -> dict[str, int]:
        added = {"of which reference solutions": self.references} if self.references else {}
        return {"kept": len(self.records), **added, **{f"dropped: {k}": v for k, v in self.dropped.items()}}


def validate(records: Iterable[Any]) -> list[CoTRecord]:
    """Records (from records or decoded JSON objects); the first bad one raises :class:`ExportError` naming it and
    its field."""
    try:
        return as_records(records)
    except RecordError as err:
        raise ExportError(str(err)) from None


def select(records: Iterable[Any], include_unverified: bool = False, include_rationalized: bool = True) -> Selection:
    """Validate every record first (nothing is returned if one is bad), then keep, de-duplicate and flag."""
    sel = Selection([])
    seen: set[str] = set()
    for record in validate(records):
        if not record.verified and not include_unverified:
            sel.dropped["not verified"] += 1
        elif record.method == "rationalized" and not include_rationalized:
            sel.dropped["rationalized"] += 1
        elif not record.text:
            sel.dropped["no solution text"] += 1
        elif normalize_question(record.question) in seen:
            sel.dropped["duplicate question"] += 1
        else:
            seen.add(normalize_question(record.question))
            sel.records.append(record)
    return sel


def add_references(selection: Selection, pairs: Iterable[QAPair], up_to: int | None = None) -> Selection:
    """The selection plus reference worked solutions (``pair.meta["reference"]``) for questions it lacks, up to
    ``up_to`` rows in all (every one when None). Each is checked with ``verify.check`` and labelled: ``method`` is
    ``"reference"`` and ``teacher`` says who wrote it, so a dataset never passes them off as the teacher's."""
    rows = list(selection.records)
    seen = {normalize_question(r.question) for r in rows}
    for pair in pairs:
        if up_to is not None and len(rows) >= up_to:
            break
        solution = pair.meta.get("reference")
        if not solution or normalize_question(pair.question) in seen:
            continue
        if not verify.check(solution, pair.answer).correct:
            raise ExportError(f"question {pair.id}: its reference solution does not verify against {pair.answer!r}")
        seen.add(normalize_question(pair.question))
        rows.append(CoTRecord(id=pair.id, question=pair.question, answer=pair.answer, verified=True, method="reference",
                              teacher=REFERENCE_TEACHER, solution=solution, language=pair.meta.get("lang", "en"),
                              meta=pair.meta))
    return Selection(rows, Counter(selection.dropped))


def _meta(record: CoTRecord) -> dict[str, Any]:
    return {"id": record.id, "answer": record.answer, "method": record.method, "verified": record.verified,
            "teacher": record.teacher}


def _output(record: CoTRecord, reasoning: bool) -> str:
    """The text to train on; with ``reasoning``, a reasoning teacher's trace first, as ``<think>…</think>`` (the
    form s1 and OpenThoughts train on)."""
    if reasoning and record.reasoning:
        return f"<think>\n{record.reasoning}\n</think>\n\n{record.text}"
    return record.text or ""


def to_alpaca(selection: Selection, metadata: bool = False, reasoning: bool = False) -> list[dict]:
    """``{"instruction": question, "input": "", "output": solution}`` as in the original tutorial (+ metadata; with
    ``reasoning``, the teacher's trace before the solution)."""
    return [{"instruction": r.question, "input": "", "output": _output(r, reasoning), **(_meta(r) if metadata else {})}
            for r in selection.records]


def from_qa_pairs(pairs: dict[str, str]) -> list[dict]:
    """The original tutorial's ``transform_qa_format``: a ``{question: answer}`` dict to Alpaca rows."""
    return [{"instruction": q, "input": "", "output": a} for q, a in pairs.items()]


def to_chat(selection: Selection, system: str = SYSTEM_PROMPT, metadata: bool = False,
            reasoning: bool = False) -> list[dict]:
    """``{"messages": [system, user, assistant]}`` rows for chat templates (with ``reasoning``: the trace first)."""
    return [{"messages": [{"role": "system", "content": system}, {"role": "user", "content": r.question},
                          {"role": "assistant", "content": _output(r, reasoning)}], **(_meta(r) if metadata else {})}
            for r in selection.records]


def to_sharegpt(selection: Selection, reasoning: bool = False) -> list[dict]:
    """``{"conversations": [{"from": "human", "value": …}, {"from": "gpt", "value": …}]}``: the ShareGPT form that
    Unsloth's ``standardize_data_formats`` (and LLaMA-Factory) read."""
    return [{"conversations": [{"from": "human", "value": r.question}, {"from": "gpt", "value": _output(r, reasoning)}]}
            for r in selection.records]


def to_prm(records: Iterable[Any]) -> list[dict]:
    """Step-level labels as TRL's stepwise format ``{"prompt", "completions": [steps], "labels": [bools]}``.

    From each record's first attempt: steps before the first wrong one are good, that one is bad; from each
    verified solution: every step is good.
    """
    rows = []
    for r in validate(records):
        if r.first_error_step and r.first_attempt:
            steps = split_steps(r.first_attempt)[: r.first_error_step]
            rows.append({"prompt": r.question, "completions": steps, "labels": [True] * (len(steps) - 1) + [False]})
        if r.verified and r.solution:
            steps = split_steps(r.solution)
            rows.append({"prompt": r.question, "completions": steps, "labels": [True] * len(steps)})
    return rows


def train_test_split(rows: Sequence[dict], test_fraction: float = 0.1, key: str = "instruction") -> dict[str, list[dict]]:
    """Deterministic: a row's split depends only on a hash of its ``key`` field (stable as data grows)."""
    def bucket(row: dict) -> float:
        text = row[key] if key in row else json.dumps(row, sort_keys=True)
        return int(hashlib.sha256(str(text).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    split = {"train": [r for r in rows if bucket(r) >= test_fraction], "test": [r for r in rows if bucket(r) < test_fraction]}
    return split


def write_json(rows: Sequence[dict], path: str | Path) -> Path:
    """The original format: one JSON list, indented, UTF-8 (written to a temp file, then renamed)."""
    return write_atomic(path, json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n")


def write_jsonl(rows: Sequence[dict], path: str | Path) -> Path:
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_alpaca(path: str | Path) -> list[dict]:
    """Rows of an Alpaca file (a JSON list, or JSONL), each with instruction, input and output; a bad file or row
    raises :class:`ExportError` naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines()
                                                                        if x.strip()]
    except (OSError, ValueError) as err:
        raise ExportError(f"{path}: cannot read Alpaca rows ({err})") from None
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"instruction", "input", "output"} <= set(row):
            raise ExportError(f"{path}: row {i + 1} needs instruction, input and output")
    return rows


def read_splits(outputs: str | Path = "outputs", prefix: str = "alpaca") -> dict[str, list[dict]]:
    """The split files chapter 4 writes (``alpaca_train.jsonl``, ``alpaca_test.jsonl``), as ``{"train": rows, ...}``."""
    return {name: read_alpaca(Path(outputs) / f"{prefix}_{name}.jsonl") for name in ("train", "test")}


def to_dataset(splits: dict[str, list[dict]]) -> Any:
    """A ``datasets.DatasetDict`` with the non-empty splits."""
    from datasets import Dataset, DatasetDict

    return DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items() if rows})


def token_lengths(rows: Sequence[dict], tokenizer: Any, fields: Sequence[str] = ("instruction", "input", "output")) -> list[int]:
    """Tokens per row as the student will see them (its tokenizer, the fields joined)."""
    return [len(tokenizer("\n".join(str(r.get(f, "")) for f in fields))["input_ids"]) for r in rows]
