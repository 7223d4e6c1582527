"""One question: a direct attempt, its verification, then the search; within the question's budget.

:class:`GenerationConfig` is what to generate and how hard to search; its hash (with the teacher and the prompt
version) keys the store. :func:`solve_one` turns a question into a :class:`~cotlib.records.CoTRecord`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import asdict, dataclass

from cotlib import prompts, reasoning, search, verify
from cotlib.client import Teacher, Usage
from cotlib.data import QAPair
from cotlib.errors import BudgetExceeded, RunBudgetExceeded
from cotlib.reasoning import Reply
from cotlib.records import CoTRecord
from cotlib.search import SearchParams
from cotlib.verify import Verdict


@dataclass(frozen=True)
class GenerationConfig:
    """What to generate, and how hard to search. Its hash keys the store: change it and questions are redone."""

    language: str = "en"
    max_new_tokens: int = 512
    temperature: float = 0.0  # the direct attempt (greedy: reproducible)
    rollout_temperature: float = 0.8  # resamples and rollouts
    max_calls_per_question: int = 24
    max_tokens_per_question: int | None = None  # checked before each call: rollouts in flight may overshoot it
    rationalize: bool = False  # last resort: show the golden answer as a hint (flagged in the record)
    search: SearchParams = SearchParams()

    def __post_init__(self) -> None:
        if self.language not in prompts.LANGUAGES:
            raise ValueError(f"language must be one of {prompts.LANGUAGES}, not {self.language!r}")
        if self.max_calls_per_question < 1 + self.rationalize:
            raise ValueError("max_calls_per_question must leave one call for the direct attempt (and one to rationalize)")

    def key(self, teacher_model: str) -> str:
        blob = json.dumps({**asdict(self), "teacher": teacher_model, "prompts": prompts.PROMPT_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


async def _is_correct(text: str, gold: str) -> bool:
    return (await asyncio.to_thread(verify.check, text, gold)).correct


async def solve_one(pair: QAPair, teacher: Teacher, cfg: GenerationConfig, config_key: str) -> CoTRecord:
    """Direct attempt → verify → search → (rationalize): one record. Raises RunBudgetExceeded to stop the run."""
    usage = Usage()
    started = 0  # calls started: concurrent rollouts reserve their slot before they run
    start = time.perf_counter()

    search_cap = cfg.max_calls_per_question - (1 if cfg.rationalize else 0)  # keep a call for the last resort

    traces: dict[str, str | None] = {}  # answer text -> its reasoning trace (reasoning teachers)

    async def call(messages: list[dict[str, str]], temperature: float, cap: int = search_cap) -> Reply:
        nonlocal started
        if started >= cap or (
            cfg.max_tokens_per_question is not None and usage.tokens_in + usage.tokens_out >= cfg.max_tokens_per_question
        ):
            raise BudgetExceeded()
        started += 1
        return await teacher.complete(messages, temperature, usage, priority=started)

    async def rollout(prefix: tuple[str, ...], n: int) -> list[str]:
        messages = (prompts.continue_messages(pair.question, prefix, cfg.language) if prefix
                    else prompts.direct_messages(pair.question, cfg.language))
        replies = await asyncio.gather(*(call(messages, cfg.rollout_temperature) for _ in range(n)),
                                       return_exceptions=True)
        if any(isinstance(r, RunBudgetExceeded) for r in replies):
            raise next(r for r in replies if isinstance(r, RunBudgetExceeded))
        done = [r for r in replies if isinstance(r, Reply)]
        if not done:
            raise next(r for r in replies if isinstance(r, BaseException))
        prefix_text = search.join_steps(list(prefix))
        texts = []
        for r in done:  # a reasoning model thinks again, then writes the rest: its answer continues the prefix
            text = f"{prefix_text}\n{r.answer.strip()}" if prefix else r.answer
            traces[text] = r.reasoning
            texts.append(text)
        return texts

    first = await call(prompts.direct_messages(pair.question, cfg.language), cfg.temperature)
    attempt = first.answer
    traces[attempt] = first.reasoning
    verdict = (Verdict(False, None, "extraction", reasoning.CUT_OFF) if first.cut_off
               else await asyncio.to_thread(verify.check, attempt, pair.answer))  # never on the event loop
    result = None
    if verdict.correct:
        method, solution = "direct", attempt
    else:
        result = await search.OmegaSearch(rollout, lambda t: _is_correct(t, pair.answer), cfg.search).run(attempt)
        method, solution = ("search", result.best) if result.best else ("failed", None)
        if solution is None and cfg.rationalize:
            try:
                hint = await call(prompts.hint_messages(pair.question, pair.answer, cfg.language), cfg.temperature,
                                  cap=cfg.max_calls_per_question)
                hinted = hint.answer
                traces[hinted] = hint.reasoning
                leaks = any(phrase in hinted.lower() for phrase in prompts.HINT_LEAKS)
                if not leaks and await _is_correct(hinted, pair.answer):
                    method, solution = "rationalized", hinted
            except BudgetExceeded:
                pass
    final = await asyncio.to_thread(verify.check, solution, pair.answer) if solution else verdict
    return CoTRecord(
        id=pair.id, config=config_key, question=pair.question, answer=pair.answer, teacher=teacher.model,
        language=cfg.language, meta=pair.meta, solution=solution, verified=solution is not None and final.correct,
        method=method, extracted=final.extracted, verdict_reason=final.reason, first_attempt=attempt,
        reasoning=traces.get(solution) if solution else traces.get(attempt),
        best_attempt=None if solution else attempt,
        first_error_step=result.first_error_step if result else None,
        escalated=result.escalated if result else False,
        found_at_prefix=(result.found_at_prefix if result and method == "search" else None),
        rollouts=result.rollouts if result else 0,
        step_labels=result.step_labels if result else [], trace=result.trace if result else [],
        calls=usage.calls, retries=usage.retries, tokens_in=usage.tokens_in, tokens_out=usage.tokens_out,
        tokens_reasoning=usage.tokens_reasoning,
        latency_s=round(time.perf_counter() - start, 3),
    )


def failed_record(pair: QAPair, config_key: str, teacher_model: str, language: str, error: str) -> CoTRecord:
    """The record of a question whose solving raised an unexpected error: failed, with the reason."""
    return CoTRecord(id=pair.id, config=config_key, question=pair.question, answer=pair.answer, teacher=teacher_model,
                     language=language, meta=pair.meta, method="failed", verified=False, verdict_reason=f"error: {error}")

