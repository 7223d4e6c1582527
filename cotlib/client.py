"""The teacher client: async chat completions with a timeout, retries, a concurrency limit and a rate limit.

Every call goes through a camel model backend (``ModelFactory``) on an HTTP client this module owns (and closes).
Retries are ours, not the SDK's: exponential backoff with jitter (honouring ``Retry-After``) on 429/5xx, timeouts,
connection errors and malformed replies, and nothing else; 401/403 stops the run with one message.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import openai

from cotlib import config as cfgmod
from cotlib import reasoning
from cotlib.errors import AuthError, MalformedReply, RunBudgetExceeded, TeacherError, TransientError


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


@dataclass
class Usage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0  # completion tokens, reasoning included (what providers bill as output)
    retries: int = 0
    tokens_reasoning: int = 0  # the part of tokens_out spent on reasoning traces

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.retries += other.retries
        self.tokens_reasoning += other.tokens_reasoning


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


RETRY_STATUS = {408, 409, 425, 429}


def retryable(err: BaseException) -> bool:
    """Transient failures only: a bug in our code (TypeError, KeyError...) must surface, not be retried."""
    if isinstance(err, openai.APIStatusError):
        return err.status_code in RETRY_STATUS or err.status_code >= 500
    return isinstance(err, (openai.APIConnectionError, openai.APIResponseValidationError, asyncio.TimeoutError,
                            TransientError, json.JSONDecodeError))


def reply_parts(reply: Any) -> reasoning.Reply:
    """A chat completion's answer and reasoning trace (:mod:`cotlib.reasoning`), or :class:`MalformedReply` (no
    choices, no message, no content; a trace cut off by the token limit is a reply, not a fault)."""
    choices = getattr(reply, "choices", None)
    if not choices:
        raise MalformedReply("a reply with no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    parts = reasoning.split(content if isinstance(content, str) else None, reasoning.reasoning_field(message))
    if not parts.answer.strip() and not parts.cut_off:
        raise MalformedReply("a reply with empty or missing message content")
    return parts


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
        self._client: openai.AsyncOpenAI | None = None
        self._slots: PrioritySlots | None = None
        self._limiter: RateLimiter | None = None

    @property
    def model(self) -> str:
        return self.endpoint.model

    def _backend(self, temperature: float) -> Any:
        if temperature not in self._backends:
            if self._client is None:  # ours, shared by the backends, so that we can close it
                self._client = openai.AsyncOpenAI(base_url=self.endpoint.base_url,
                                                  api_key=self.endpoint.api_key.reveal() or "not-needed",
                                                  timeout=self.limits.timeout,
                                                  max_retries=0)  # retries are ours: visible, bounded, tested
            self._backends[temperature] = cfgmod.create_model(
                self.endpoint, timeout=self.limits.timeout, max_retries=0, async_client=self._client,
                temperature=temperature, max_tokens=self.max_new_tokens,
            )
        return self._backends[temperature]

    async def aclose(self) -> None:
        """Close the HTTP client while its event loop is still running."""
        if self._client is not None:
            await self._client.close()
        self._client = None
        self._backends.clear()

    def check_run_budget(self) -> None:
        lim, use = self.limits, self.usage
        if lim.max_calls is not None and self.sent >= lim.max_calls:
            raise RunBudgetExceeded(f"run budget of {lim.max_calls} calls reached")
        if lim.max_tokens is not None and use.tokens_in + use.tokens_out >= lim.max_tokens:
            raise RunBudgetExceeded(f"run budget of {lim.max_tokens} tokens reached")

    async def complete(self, messages: list[dict[str, str]], temperature: float, usage: Usage,
                       priority: float = 0) -> reasoning.Reply:
        """One chat completion (its answer, and its reasoning trace if the model sent one); counts into ``usage``
        (the question's) and the run's usage."""
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
                    parts = reply_parts(reply)
                except BaseException as err:  # noqa: BLE001 (classified below; cancellation re-raised)
                    if isinstance(err, asyncio.CancelledError) or not retryable(err):
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
                    thinking = reasoning.reasoning_tokens(reply.usage, parts, tokens_out)
                    for u in (usage, self.usage):
                        u.calls += 1
                        u.tokens_in += tokens_in
                        u.tokens_out += tokens_out
                        u.tokens_reasoning += thinking
                    return parts
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
