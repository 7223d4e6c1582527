"""The CoT generation engine: ask, verify, search; concurrent, budgeted, resumable.

For each question: one direct attempt (greedy) → :func:`cotlib.verify.check`; if wrong, :class:`cotlib.search.
OmegaSearch` locates the first wrong step and retries from good prefixes; optionally a last-resort rationalization
(the golden answer as a hint, flagged). Every LLM call goes through a camel model backend (``ModelFactory``) with
this module's own timeout, retries (exponential backoff + jitter on 429/5xx/timeouts/malformed replies) and
requests-per-minute limit. Each finished question is appended to a JSONL store keyed by (question id, config
hash), so an interrupted run resumes where it stopped and a finished run costs nothing to re-run.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import heapq
import html
import json
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import openai

from cotlib import config as cfgmod
from cotlib import search, verify
from cotlib.data import QAPair, load_qa, question_id, write_atomic
from cotlib.progress import bar as progress_bar

T = TypeVar("T")
PROMPT_VERSION = 2
SYSTEM_PROMPTS = {
    "en": "You solve problems step by step. Write one step per line, then give the final answer exactly once as "
          "\\boxed{answer}.",
    "zh": "你一步一步地解题。每行写一步，最后只写一次最终答案，格式为 \\boxed{答案}。",
}
#: Worked examples sent as earlier turns of the conversation (few-shot). A small model copies a format from examples
#: far more reliably than from instructions: with these the 135M offline teacher writes a \boxed{} answer almost
#: always (bench/bench_passk.py). Their numbers lie outside the demo generators' ranges, so no demo answer leaks.
EXAMPLES = {
    "en": [
        ("Tom has 10 apples and buys 5 more. How many apples does he have?",
         "Step 1: Tom starts with 10 apples.\nStep 2: He buys 5 more, so 10 + 5 = 15.\nThe answer is \\boxed{15}."),
        ("What is 10 × 4?", "Step 1: 10 × 4 means 10 groups of 4.\nStep 2: 10 × 4 = 40.\nThe answer is \\boxed{40}."),
    ],
    "zh": [
        ("小明有 10 个苹果，又买了 5 个。他现在有几个苹果？",
         "第 1 步：小明原来有 10 个苹果。\n第 2 步：又买了 5 个，所以 10 + 5 = 15。\n答案是 \\boxed{15}。"),
        ("计算 10 × 4 等于多少？", "第 1 步：10 × 4 表示 10 个 4 相加。\n第 2 步：10 × 4 = 40。\n答案是 \\boxed{40}。"),
    ],
}
CONTINUE_PROMPTS = {
    "en": "{question}\n\nHere is the beginning of a solution:\n{prefix}\n\nContinue it from the next step (do not repeat "
          "the steps above) and end with the final answer written once as \\boxed{{answer}}.",
    "zh": "{question}\n\n下面是解答的开头：\n{prefix}\n\n请从下一步接着写（不要重复上面的步骤），最后只写一次最终答案，格式为 \\boxed{{答案}}。",
}
HINT_PROMPTS = {
    "en": "{question}\n\n(The correct final answer is {answer}. Write a step-by-step solution that reaches it, without "
          "mentioning that you were told.)",
    "zh": "{question}\n\n（正确答案是 {answer}。请写出得到这个答案的逐步解答，不要提到答案是事先给出的。）",
}
HINT_LEAKS = ("correct final answer", "i was told", "you told me", "正确答案是", "事先给出")  # a rationalization must not cite its hint
#: Example price table, USD per million tokens (input, output). Pass your own to ``estimate``/``RunLimits``.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "deepseek-chat": (0.27, 1.10),
    "SmolLM2-135M-Instruct": (0.0, 0.0),
}


@dataclass(frozen=True)
class GenerationConfig:
    """What to generate, and how hard to search. Its hash keys the store: change it and questions are redone."""

    language: str = "en"
    max_new_tokens: int = 512
    temperature: float = 0.0  # the direct attempt (greedy: reproducible)
    rollout_temperature: float = 0.8
    rollouts_per_estimate: int = 4
    max_calls_per_question: int = 24
    max_tokens_per_question: int | None = None  # checked before each call: rollouts in flight may overshoot it
    c_puct: float = 0.125
    alpha: float = 0.5
    beta: float = 0.9
    length_scale: int = 500
    stop_at_first: bool = True
    rationalize: bool = False

    def __post_init__(self) -> None:
        if self.language not in SYSTEM_PROMPTS:
            raise ValueError(f"language must be one of {sorted(SYSTEM_PROMPTS)}, not {self.language!r}")
        if self.max_calls_per_question < 1 + self.rationalize:
            raise ValueError("max_calls_per_question must leave one call for the direct attempt (and one to rationalize)")

    def key(self, teacher_model: str) -> str:
        blob = json.dumps({**asdict(self), "teacher": teacher_model, "prompts": PROMPT_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def search_params(self) -> search.SearchParams:
        return search.SearchParams(self.rollouts_per_estimate, self.c_puct, self.alpha, self.beta, self.length_scale,
                                   self.stop_at_first)


@dataclass(frozen=True)
class RunLimits:
    """How the run talks to the backend, and when it must stop."""

    concurrency: int | None = None  # None: 2 for a server on this machine (it queues), 8 for a hosted API
    timeout: float = 120.0  # per request, seconds
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    requests_per_minute: float | None = None
    max_calls: int | None = None  # per run: requests sent, retries included
    max_tokens: int | None = None  # per run
    prices: dict[str, tuple[float, float]] | None = None


class RunBudgetExceeded(Exception):
    """The run's call or token cap is reached."""


class TeacherError(RuntimeError):
    """A request failed for good (after retries, or at once for errors that retrying cannot fix)."""


class AuthError(TeacherError):
    """401/403: no request of this run can succeed, so the whole run stops at once with this one message."""


class MalformedReply(TeacherError):
    """A reply without choices, message or text: retried like a transient server error."""


class StoreError(RuntimeError):
    """The record store cannot be written or is in use by another run: the run stops, loudly."""


# ------------------------------------------------------------------------------------------------------ client


@dataclass
class Usage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.retries += other.retries


class RateLimiter:
    """At most ``per_minute`` request starts in any 60 s window (evenly spaced)."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_slot = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            delay = self.next_slot - now
            self.next_slot = max(now, self.next_slot) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class PrioritySlots:
    """A semaphore that hands a freed slot to the waiting request with the highest priority (then first come).

    Requests of questions already deep in a search get priority over new questions' first attempts: that keeps
    the long dependency chains (attempt → probe → probe → …) moving and the slots full until the very end.
    """

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self.counter = 0

    async def acquire(self, priority: float) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        self.counter += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiting, (-priority, self.counter, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        while self.waiting:
            _, _, future = heapq.heappop(self.waiting)
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


_RETRY_STATUS = {408, 409, 425, 429}


def _retryable(err: BaseException) -> bool:
    """Transient failures only: a bug in our code (TypeError, KeyError...) must surface, not be retried."""
    if isinstance(err, openai.APIStatusError):
        return err.status_code in _RETRY_STATUS or err.status_code >= 500
    return isinstance(err, (openai.APIConnectionError, openai.APIResponseValidationError, asyncio.TimeoutError,
                            MalformedReply, json.JSONDecodeError))


def reply_text(reply: Any) -> str:
    """The text of a chat completion, or :class:`MalformedReply` (no choices, no message, null or empty content)."""
    choices = getattr(reply, "choices", None)
    if not choices:
        raise MalformedReply("a reply with no choices")
    text = getattr(getattr(choices[0], "message", None), "content", None)
    if not isinstance(text, str) or not text.strip():
        raise MalformedReply("a reply with empty or missing message content")
    return text


def default_concurrency(endpoint: cfgmod.Endpoint) -> int:
    """Requests in flight: a local llama.cpp server runs one at a time (2 keeps it busy while we verify); hosted
    APIs run many in parallel (8 stays under most providers' free-tier rate limits)."""
    return 2 if endpoint.base_url.startswith(("http://127.0.0.1", "http://localhost")) else 8


class Teacher:
    """Async chat completions over camel model backends, with timeout, retries, concurrency and rate limits."""

    def __init__(self, endpoint: cfgmod.Endpoint, limits: RunLimits = RunLimits(), max_new_tokens: int = 512) -> None:
        self.endpoint, self.limits, self.max_new_tokens = endpoint, limits, max_new_tokens
        self.concurrency = limits.concurrency or default_concurrency(endpoint)
        self.usage = Usage()
        self.sent = 0  # requests sent, in flight included (what the run's call cap counts)
        self._backends: dict[float, Any] = {}
        self._slots: PrioritySlots | None = None
        self._limiter: RateLimiter | None = None

    @property
    def model(self) -> str:
        return self.endpoint.model

    def _backend(self, temperature: float) -> Any:
        if temperature not in self._backends:
            self._backends[temperature] = cfgmod.create_model(
                self.endpoint, timeout=self.limits.timeout,
                max_retries=0,  # retries are ours, so they are visible, bounded and tested
                temperature=temperature, max_tokens=self.max_new_tokens,
            )
        return self._backends[temperature]

    async def aclose(self) -> None:
        """Close the HTTP clients while their event loop is still running."""
        for backend in self._backends.values():
            client = getattr(backend, "_async_client", None)
            if client is not None:
                await client.close()
        self._backends.clear()

    def check_run_budget(self) -> None:
        lim, use = self.limits, self.usage
        if lim.max_calls is not None and self.sent >= lim.max_calls:
            raise RunBudgetExceeded(f"run budget of {lim.max_calls} calls reached")
        if lim.max_tokens is not None and use.tokens_in + use.tokens_out >= lim.max_tokens:
            raise RunBudgetExceeded(f"run budget of {lim.max_tokens} tokens reached")

    async def complete(self, messages: list[dict[str, str]], temperature: float, usage: Usage,
                       priority: float = 0) -> str:
        """One chat completion's text; counts into ``usage`` (the question's) and the run's usage."""
        if self._slots is None:
            self._slots = PrioritySlots(self.concurrency)
            self._limiter = RateLimiter(self.limits.requests_per_minute)
        backend = self._backend(temperature)
        last: BaseException | None = None
        for attempt in range(self.limits.max_retries + 1):
            await self._slots.acquire(priority)
            try:
                self.check_run_budget()  # with the slot held, so requests in flight count
                self.sent += 1
                await self._limiter.wait()  # type: ignore[union-attr]
                try:
                    reply = await asyncio.wait_for(backend.arun(messages), timeout=self.limits.timeout)
                    text = reply_text(reply)
                except BaseException as err:  # noqa: BLE001 (classified below; cancellation re-raised)
                    if isinstance(err, asyncio.CancelledError) or not _retryable(err):
                        if isinstance(err, openai.APIStatusError) and err.status_code in (401, 403):
                            raise AuthError(f"{self.endpoint.base_url}: HTTP {err.status_code}: the key was refused "
                                            "(check COTLIB_API_KEY)") from None
                        if isinstance(err, openai.APIStatusError):
                            raise TeacherError(f"{self.endpoint.base_url}: HTTP {err.status_code}") from None
                        raise
                    last = err
                else:
                    tokens_in = getattr(reply.usage, "prompt_tokens", 0) or 0
                    tokens_out = getattr(reply.usage, "completion_tokens", 0) or 0
                    for u in (usage, self.usage):
                        u.calls += 1
                        u.tokens_in += tokens_in
                        u.tokens_out += tokens_out
                    return text
            finally:
                self._slots.release()
            usage.retries += 1
            self.usage.retries += 1
            await asyncio.sleep(self._backoff(attempt, last))
        raise TeacherError(f"{self.endpoint.base_url}: gave up after {self.limits.max_retries + 1} attempts ({last!r})")

    def _backoff(self, attempt: int, err: BaseException | None) -> float:
        retry_after = None
        if isinstance(err, openai.APIStatusError):
            try:
                retry_after = float(err.response.headers.get("retry-after", ""))
            except ValueError:
                retry_after = None
        delay = min(self.limits.backoff_cap, self.limits.backoff_base * 2**attempt) * (0.5 + random.random())
        return max(delay, retry_after or 0.0)


# ------------------------------------------------------------------------------------------------------- store


class RecordStore:
    """Append-only JSONL of finished questions, keyed by (question id, config hash).

    Each record is one checked ``os.write`` of a full line to a file opened with O_APPEND, then fsync'd: a short or
    failed write is undone (truncated back) and raises :class:`StoreError`, so a run never reports a record it lost.
    A damaged line (cut short by a kill, or garbled anywhere) is moved to ``<store>.damaged`` with a warning when the
    store is loaded, and its question is done again. :meth:`lock` keeps a second run off the same store.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take the store's exclusive lock (released by :meth:`unlock` or when the process dies), or fail fast."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(f"{self.path} is in use by another run (pid {holder}): wait for it to finish, or write "
                             "to another file") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def load(self) -> dict[tuple[str, str], dict]:
        records: dict[tuple[str, str], dict] = {}
        if not self.path.exists():
            return records
        good, damaged, first_bad = [], [], 0
        for number, line in enumerate(self.path.read_bytes().splitlines(keepends=True), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = (record["id"], record["config"])
                if not line.endswith(b"\n") or not all(isinstance(k, str) for k in key):
                    raise ValueError("cut short")
            except (ValueError, KeyError, TypeError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                damaged.append(line if line.endswith(b"\n") else line + b"\n")
                first_bad = first_bad or number
                continue
            good.append(line)
            records[key] = record
        if damaged and not good:  # not a store with a few damaged lines: some other file, left untouched
            raise StoreError(f"{self.path}:{first_bad}: not a generation record")
        if damaged:
            side = self.path.with_name(self.path.name + ".damaged")
            with open(side, "ab") as out:
                out.writelines(damaged)
            write_atomic(self.path, b"".join(good))
            warnings.warn(f"{self.path}: {len(damaged)} damaged line(s) moved to {side}; their questions will be done "
                          "again", stacklevel=2)
        return records

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write: {written} of {len(line)} bytes")
                os.fsync(fd)
            except OSError as err:
                try:
                    os.ftruncate(fd, size)  # no half line left behind
                except OSError:
                    pass
                raise StoreError(f"{self.path}: could not save the record of {record.get('id')} ({err}); the run "
                                 "stops here, everything saved before is intact") from None
            finally:
                os.close(fd)


# ------------------------------------------------------------------------------------------------ one question


def _messages(user: str, language: str) -> list[dict[str, str]]:
    """The system prompt, the worked examples as earlier turns, then the request."""
    shots = [{"role": role, "content": text} for q, a in EXAMPLES[language] for role, text in (("user", q), ("assistant", a))]
    return [{"role": "system", "content": SYSTEM_PROMPTS[language]}, *shots, {"role": "user", "content": user}]


def direct_messages(question: str, language: str) -> list[dict[str, str]]:
    return _messages(question, language)


def continue_messages(question: str, prefix: Sequence[str], language: str) -> list[dict[str, str]]:
    return _messages(CONTINUE_PROMPTS[language].format(question=question, prefix=search.join_steps(list(prefix))), language)


def hint_messages(question: str, answer: str, language: str) -> list[dict[str, str]]:
    return _messages(HINT_PROMPTS[language].format(question=question, answer=answer), language)


async def _is_correct(text: str, gold: str) -> bool:
    return (await asyncio.to_thread(verify.check, text, gold)).correct


async def solve_one(pair: QAPair, teacher: Teacher, cfg: GenerationConfig, config_key: str) -> dict:
    """Direct attempt → verify → search → (rationalize): one record. Raises RunBudgetExceeded to stop the run."""
    usage = Usage()
    started = 0  # calls started: concurrent rollouts reserve their slot before they run
    start = time.perf_counter()

    search_cap = cfg.max_calls_per_question - (1 if cfg.rationalize else 0)  # keep a call for the last resort

    async def call(messages: list[dict[str, str]], temperature: float, cap: int = search_cap) -> str:
        nonlocal started
        if started >= cap or (
            cfg.max_tokens_per_question is not None and usage.tokens_in + usage.tokens_out >= cfg.max_tokens_per_question
        ):
            raise search.BudgetExceeded()
        started += 1
        return await teacher.complete(messages, temperature, usage, priority=started)

    async def rollout(prefix: tuple[str, ...], n: int) -> list[str]:
        messages = continue_messages(pair.question, prefix, cfg.language) if prefix else direct_messages(pair.question, cfg.language)
        texts = await asyncio.gather(*(call(messages, cfg.rollout_temperature) for _ in range(n)), return_exceptions=True)
        if any(isinstance(t, RunBudgetExceeded) for t in texts):
            raise next(t for t in texts if isinstance(t, RunBudgetExceeded))
        done = [t for t in texts if isinstance(t, str)]
        if not done:
            first_error = next(t for t in texts if isinstance(t, BaseException))
            raise first_error
        prefix_text = search.join_steps(list(prefix))
        return [f"{prefix_text}\n{t.strip()}" if prefix else t for t in done]

    record: dict[str, Any] = {
        "id": pair.id, "config": config_key, "question": pair.question, "answer": pair.answer, "teacher": teacher.model,
        "language": cfg.language, "meta": pair.meta,
    }
    attempt = await call(direct_messages(pair.question, cfg.language), cfg.temperature)
    verdict = await asyncio.to_thread(verify.check, attempt, pair.answer)  # never on the event loop
    result = None
    if verdict.correct:
        method, solution = "direct", attempt
    else:
        result = await search.OmegaSearch(rollout, lambda t: _is_correct(t, pair.answer), cfg.search_params()).run(attempt)
        method, solution = ("search", result.best) if result.best else ("failed", None)
        if solution is None and cfg.rationalize:
            try:
                hinted = await call(hint_messages(pair.question, pair.answer, cfg.language), cfg.temperature,
                                    cap=cfg.max_calls_per_question)
                leaks = any(phrase in hinted.lower() for phrase in HINT_LEAKS)
                if not leaks and await _is_correct(hinted, pair.answer):
                    method, solution = "rationalized", hinted
            except search.BudgetExceeded:
                pass
    final = await asyncio.to_thread(verify.check, solution, pair.answer) if solution else verdict
    record.update({
        "solution": solution,
        "verified": solution is not None and final.correct,
        "method": method,
        "extracted": final.extracted,
        "verdict_reason": final.reason,
        "first_attempt": attempt,
        "best_attempt": None if solution else attempt,
        "first_error_step": result.first_error_step if result else None,
        "rollouts": result.rollouts if result else 0,
        "step_labels": result.step_labels if result else [],
        "trace": result.trace if result else [],
        "calls": usage.calls,
        "retries": usage.retries,
        "tokens_in": usage.tokens_in,
        "tokens_out": usage.tokens_out,
        "latency_s": round(time.perf_counter() - start, 3),
    })
    return record


def failed_record(pair: QAPair, config_key: str, teacher_model: str, language: str, error: str) -> dict:
    """The record of a question whose solving raised an unexpected error: failed, with the reason."""
    return {
        "id": pair.id, "config": config_key, "question": pair.question, "answer": pair.answer, "teacher": teacher_model,
        "language": language, "meta": pair.meta, "solution": None, "verified": False, "method": "failed",
        "extracted": None, "verdict_reason": f"error: {error}", "first_attempt": None, "best_attempt": None,
        "first_error_step": None, "rollouts": 0, "step_labels": [], "trace": [], "calls": 0, "retries": 0,
        "tokens_in": 0, "tokens_out": 0, "latency_s": 0.0,
    }


# ------------------------------------------------------------------------------------------------------ the run


@dataclass
class RunSummary:
    questions: int
    skipped: int  # already in the store (resumed)
    generated: int
    verified: int
    by_method: dict[str, int]
    usage: Usage
    cost_usd: float | None
    seconds: float
    stopped: str | None = None  # why the run stopped early, if it did
    errors: list[str] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.verified / self.generated if self.generated else 0.0


def cost(usage: Usage, model: str, prices: dict[str, tuple[float, float]] | None) -> float | None:
    table = prices if prices is not None else PRICES
    if model not in table:
        return None
    price_in, price_out = table[model]
    return (usage.tokens_in * price_in + usage.tokens_out * price_out) / 1e6


def estimate(n_questions: int, cfg: GenerationConfig = GenerationConfig(), pass_rate: float = 0.5,
             tokens_in_per_call: int = 250, tokens_out_per_call: int = 250, model: str | None = None,
             prices: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """Calls, tokens and cost before a run: the least (all direct), an expectation, and the cap."""
    per_search = min(cfg.max_calls_per_question - 1, cfg.rollouts_per_estimate * 4)  # ~log2(8 steps) + 1 estimates
    expected_calls = n_questions * (1 + (1 - pass_rate) * per_search)
    out = {}
    for name, calls in (("min", n_questions), ("expected", round(expected_calls)), ("max", n_questions * cfg.max_calls_per_question)):
        usage = Usage(calls, calls * tokens_in_per_call, calls * tokens_out_per_call)
        out[name] = {"calls": calls, "tokens": usage.tokens_in + usage.tokens_out,
                     "cost_usd": cost(usage, model, prices) if model else None}
    return out


async def agenerate(pairs: Iterable[QAPair], output: str | Path, endpoint: cfgmod.Endpoint | None = None,
                    cfg: GenerationConfig = GenerationConfig(), limits: RunLimits = RunLimits(),
                    progress: bool = True, teacher: Teacher | None = None) -> RunSummary:
    """Generate verified CoT records for ``pairs`` into the JSONL ``output`` (async; resumable)."""
    own_teacher = teacher is None
    if teacher is None:
        endpoint = endpoint or cfgmod.resolve(cfgmod.load_settings())
        teacher = Teacher(endpoint, limits, cfg.max_new_tokens)
    pairs = list(pairs)
    key = cfg.key(teacher.model)
    store = RecordStore(output)
    store.lock()
    try:
        done = store.load()
    except BaseException:
        store.unlock()
        raise
    todo = [p for p in pairs if (p.id, key) not in done]
    start = time.perf_counter()
    by_method: dict[str, int] = {}
    verified = generated = 0
    stopped: str | None = None
    fatal: BaseException | None = None
    errors: list[str] = []
    bar = progress_bar(total=len(todo), desc="questions", unit="q", disable=not progress)
    queue: asyncio.Queue[QAPair] = asyncio.Queue()
    for pair in todo:
        queue.put_nowait(pair)
    tasks: list[asyncio.Task] = []

    def stop_all(err: BaseException) -> None:
        """One fatal error (refused key, store unwritable) ends every question in flight: one message, not many."""
        nonlocal fatal
        if fatal is None:
            fatal = err
            for task in tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    async def worker() -> None:
        nonlocal verified, generated, stopped
        while stopped is None and fatal is None and not queue.empty():
            pair = queue.get_nowait()
            try:
                record = await solve_one(pair, teacher, cfg, key)
            except RunBudgetExceeded as err:
                stopped = str(err)
                return
            except AuthError as err:
                return stop_all(err)
            except (TeacherError, openai.APIError, OSError) as err:  # transient, retries spent: redone on resume
                errors.append(f"{pair.id}: {err}")
                bar.update(1)
                continue
            except Exception as err:  # noqa: BLE001  (one question's bug must not end the run: it is recorded)
                record = failed_record(pair, key, teacher.model, cfg.language, f"{type(err).__name__}: {err}")
                errors.append(f"{pair.id}: {type(err).__name__}: {err}")
            try:
                await asyncio.to_thread(store.append, record)  # fsync off the event loop
            except StoreError as err:
                return stop_all(err)
            generated += 1
            verified += record["verified"]
            by_method[record["method"]] = by_method.get(record["method"], 0) + 1
            bar.update(1)
            bar.set_postfix(pass_rate=f"{verified / generated:.0%}", calls=teacher.usage.calls,
                            tokens=teacher.usage.tokens_in + teacher.usage.tokens_out)

    # many questions in flight (the slots bound the requests): new questions fill slots that searches leave free
    try:
        tasks.extend(asyncio.create_task(worker()) for _ in range(8 * teacher.concurrency))
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        bar.close()
        store.unlock()
        if own_teacher:
            await teacher.aclose()
    unexpected = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)]
    if fatal is not None or unexpected:
        raise fatal or unexpected[0]
    return RunSummary(len(pairs), len(pairs) - len(todo), generated, verified, by_method, teacher.usage,
                      cost(teacher.usage, teacher.model, limits.prices), round(time.perf_counter() - start, 2),
                      stopped, errors)


def run_sync(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also inside Jupyter's running loop (in its own thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(make_coro())
        except BaseException as err:  # noqa: BLE001 (re-raised in the caller's thread)
            box["error"] = err

    thread = threading.Thread(target=target, name="cotlib-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def generate(pairs: Iterable[QAPair], output: str | Path, **kwargs: Any) -> RunSummary:
    """Synchronous :func:`agenerate`; also works inside Jupyter's running event loop."""
    return run_sync(lambda: agenerate(pairs, output, **kwargs))


def trace_html(record: dict) -> str:
    """An HTML view of one record: the first attempt with its first wrong step marked, the bisection, the result."""
    steps = search.split_steps(record.get("first_attempt") or "")
    err = record.get("first_error_step")

    def colour(i: int) -> str:
        if err is None:
            return ""
        return "background:#fee2e2" if i == err else ("background:#dcfce7" if i < err else "color:#9ca3af")

    items = "".join(f'<li style="{colour(i)}">{html.escape(s)}</li>' for i, s in enumerate(steps, start=1))
    probes = "".join(
        f"<tr><td>{e['mid']}</td><td>{e['mc']:.2f}</td><td>{'good' if e['mc'] > 0 else 'bad'}</td></tr>"
        for e in record.get("trace", []) if e["event"] == "bisect"
    )
    where = f"step {err}" if err else "not located"
    result = (f"<pre style='white-space:pre-wrap;background:#f0fdf4'>{html.escape(record['solution'])}</pre>"
              if record.get("solution") else "<p><b>No verified solution within the budget.</b></p>")
    return (
        f"<div style='font-family:sans-serif;font-size:13px'><h4>{html.escape(record['question'])}</h4>"
        f"<p>golden answer <code>{html.escape(record['answer'])}</code> · method <b>{record['method']}</b> · "
        f"{record['calls']} calls · {record['rollouts']} rollouts · first wrong step: {where}</p>"
        f"<p>First attempt (green: verified-good prefix, red: first wrong step):</p><ol>{items}</ol>"
        + (f"<p>Binary search (MC = share of rollouts from that prefix that verify):</p><table><tr><th>prefix steps</th>"
           f"<th>MC</th><th>prefix</th></tr>{probes}</table>" if probes else "")
        + f"<p>Result:</p>{result}</div>"
    )


def load_records(path: str | Path) -> list[dict]:
    """The records of a run, in file order."""
    return list(RecordStore(path).load().values())


class CoTDataGenerator:
    """The original tutorial's interface (camel's ``CoTDataGenerator``), running this module's engine.

    ``get_answer``/``verify_answer``/``solve``/``import_qa_from_json``/``export_solutions`` read as in the tutorial;
    verification is :func:`cotlib.verify.check` (the ``verifier_agent``, if given, is only the LLM judge for free-text
    answers), and ``solve`` returns a verified solution or ``None``, never an unverified one.
    """

    def __init__(self, generator_agent: Any, golden_answers: dict[str, str] | None = None, verifier_agent: Any = None,
                 search_limit: int = 24, cfg: GenerationConfig | None = None, limits: RunLimits = RunLimits(),
                 examples: Sequence[tuple[str, str]] = ()) -> None:
        backend = generator_agent.model_backend.current_model  # a ChatAgent holds a camel ModelManager
        self.generator_agent, self.verifier_agent = generator_agent, verifier_agent
        self.examples = list(examples)  # worked examples given to the agent again after each reset
        self.golden_answers: dict[str, str] = {}
        self.import_qa_from_json(golden_answers or {})
        self.endpoint = cfgmod.Endpoint(str(backend._url), str(backend.model_type),
                                        cfgmod.Secret(backend._api_key or "not-needed"))
        self.cfg = cfg or GenerationConfig(max_calls_per_question=search_limit)
        self.limits = limits
        self.solutions: dict[str, dict] = {}

    def _gold(self, question: str) -> str:
        if question not in self.golden_answers:
            raise ValueError(f"no golden answer for question {question[:60]!r}")
        return self.golden_answers[question]

    def get_answer(self, question: str, context: str = "") -> str:
        """One step-by-step answer from the generator agent (its memory reset to the worked examples first)."""
        self.generator_agent.reset()
        cfgmod.add_examples(self.generator_agent, self.examples)
        prompt = f"{question}\n\n{context}" if context else question
        return self.generator_agent.step(prompt).msgs[0].content

    def verify_answer(self, question: str, answer: str) -> bool:
        return verify.check(answer, self._gold(question), judge=self._judge if self.verifier_agent else None).correct

    def _judge(self, gold: str, extracted: str) -> bool:
        """The verifier agent as the LLM judge (asked only for answers nothing deterministic can decide)."""
        self.verifier_agent.reset()
        reply = self.verifier_agent.step(f"{verify.JUDGE_PROMPT}\nGolden answer: {gold}\nCandidate answer: {extracted}")
        return reply.msgs[0].content.strip().upper().startswith("YES")

    def solve(self, question: str) -> str | None:
        """Direct attempt, verification and search for one question; the verified solution, or None."""
        pair = QAPair(question_id(question), question, self._gold(question))
        teacher = Teacher(self.endpoint, self.limits, self.cfg.max_new_tokens)

        async def solve() -> dict:
            try:
                return await solve_one(pair, teacher, self.cfg, self.cfg.key(teacher.model))
            finally:
                await teacher.aclose()

        record = run_sync(solve)
        self.solutions[question] = record
        return record["solution"]

    def import_qa_from_json(self, source: str | Path | dict[str, str]) -> bool:
        """Add golden answers from a file or dict (any format :func:`cotlib.data.load_qa` reads)."""
        self.golden_answers.update({p.question: p.answer for p in load_qa(source)} if source else {})
        return True

    def export_solutions(self, filepath: str | Path = "solutions.json") -> None:
        """Write the records solved so far (verified or not, each says which) as JSON, atomically."""
        write_atomic(filepath, json.dumps({"solutions": list(self.solutions.values()),
                                           "golden_answers": self.golden_answers,
                                           "export_time": time.strftime("%Y-%m-%dT%H:%M:%S")}, ensure_ascii=False, indent=2))
