"""The generation record: what chapter 3 produces for one question, and what chapters 4 and 5 read.

:class:`CoTRecord` is one line of a record store (JSONL). ``schema`` is its version; :meth:`CoTRecord.from_json`
reads every earlier version (version 1 had no ``schema`` field and no ``escalated``/``found_at_prefix``; version 2 no
``reasoning``/``tokens_reasoning``) and names the record and field when one is malformed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cotlib.errors import RecordError

SCHEMA_VERSION = 3
METHODS = ("direct", "search", "rationalized", "failed", "reference")


class _Invalid(RecordError):
    """A record's own check failed (``problem`` says how), to be named by whoever made it."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass
class CoTRecord:
    """One question's outcome: the verified solution (or none), how it was found, and what it cost."""

    id: str
    question: str
    answer: str  # the golden answer
    method: str  # one of METHODS
    verified: bool
    solution: str | None = None  # the verified solution (None when there is none): the answer, never the trace
    reasoning: str | None = None  # a reasoning teacher's trace of the solution (else of the first attempt)
    config: str = ""  # hash of the generation config + teacher + prompts: the store key with ``id``
    teacher: str = ""
    language: str = "en"
    meta: dict[str, Any] = field(default_factory=dict)
    extracted: str | None = None  # the final answer read from the solution (or the first attempt)
    verdict_reason: str = ""
    first_attempt: str | None = None
    best_attempt: str | None = None  # the first attempt, kept when nothing verified
    first_error_step: int | None = None  # 1-based: the first wrong step of the first attempt, if located
    escalated: bool = False  # resampling gave up and the binary search ran
    found_at_prefix: int | None = None  # steps of the prefix the solution continued (0: a fresh sample)
    rollouts: int = 0
    step_labels: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0  # reasoning included
    tokens_reasoning: int = 0
    latency_s: float = 0.0
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if problem := self.problem():
            raise _Invalid(f"record {self.id!r}: {problem}", problem)

    @property
    def key(self) -> tuple[str, str]:
        """The store key: a question is done once per generation config."""
        return self.id, self.config

    @property
    def text(self) -> str | None:
        """The text a dataset row would train on: the verified solution, else the kept attempt."""
        return self.solution or self.best_attempt

    def problem(self) -> str | None:
        """What is wrong with the record (its first malformed field), or None."""
        for name in ("id", "question", "answer", "method"):
            value = getattr(self, name)
            if not isinstance(value, str) or (name != "answer" and not value.strip()):
                return f"field {name!r} must be non-empty text, not {value!r}"
        if self.method not in METHODS:
            return f"field 'method' must be one of {METHODS}, not {self.method!r}"
        if not isinstance(self.verified, bool):  # "false", "0" or [0] must not pass for verified
            return f"field 'verified' must be true or false, not {self.verified!r}"
        for name in ("solution", "reasoning", "first_attempt", "best_attempt", "extracted"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                return f"field {name!r} must be text, not {type(value).__name__}"
        for name in ("calls", "retries", "tokens_in", "tokens_out", "tokens_reasoning", "rollouts"):  # the dataset card sums them
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"field {name!r} must be a count, not {value!r}"
        step = self.first_error_step
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 1):
            return f"field 'first_error_step' must be a step number (1, 2, ...), not {step!r}"
        if self.verified and not (isinstance(self.solution, str) and self.solution.strip()):
            return "verified but field 'solution' is empty"
        if not isinstance(self.meta, dict):
            return f"field 'meta' must be an object, not {type(self.meta).__name__}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """One JSON line (no newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any], where: str | None = None) -> CoTRecord:
        """A record from a JSON line or a decoded object, of this or any earlier schema version; errors name it as
        ``where`` (default: its id)."""
        obj = json.loads(data) if isinstance(data, (str, bytes)) else data
        if not isinstance(obj, dict):
            raise RecordError(f"{where or 'record'}: expected a JSON object, got {type(obj).__name__}")
        where = where or (f"record {obj.get('id')!r}" if obj.get("id") else "record")
        version = obj.get("schema", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordError(f"{where}: schema {version!r} is newer than this cotlib reads ({SCHEMA_VERSION}): "
                              "upgrade cotlib")
        known = {f.name for f in fields(cls)}
        for name in ("id", "question", "answer", "method", "verified"):
            if name not in obj:
                raise RecordError(f"{where}: missing field {name!r}")
        values = {k: v for k, v in obj.items() if k in known}  # unknown keys (e.g. an exported "output") are ignored
        values["schema"] = SCHEMA_VERSION
        try:
            return cls(**values)
        except _Invalid as err:
            raise RecordError(f"{where}: {err.problem}") from None


def as_records(items: Any) -> list[CoTRecord]:
    """Records from records or decoded JSON objects; the first malformed one raises naming its index and field."""
    out = []
    for index, item in enumerate(items):
        where = f"record {index}" + (f" (id {item.get('id')})" if isinstance(item, dict) and item.get("id") else "")
        if isinstance(item, CoTRecord):
            if problem := item.problem():  # a record changed after it was made
                raise RecordError(f"{where}: {problem}")
            out.append(item)
        else:
            if not isinstance(item, dict):
                raise RecordError(f"{where}: expected an object, got {type(item).__name__}")
            out.append(CoTRecord.from_json(item, where))
    return out
