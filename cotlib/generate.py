"""The CoT generation engine: ask, verify, search; concurrent, budgeted, resumable.

For each question (:mod:`cotlib.solve`): one direct attempt (greedy) → :func:`cotlib.verify.check`; if wrong,
:mod:`cotlib.search` resamples, and escalates to the OmegaPRM binary search when resampling keeps failing;
optionally a last-resort rationalization (the golden answer as a hint, flagged). Calls go through
:class:`cotlib.client.Teacher` (timeouts, retries, concurrency and rate limits). Each finished question is appended
to a :class:`cotlib.store.RecordStore` keyed by (question id, config hash), so an interrupted run resumes where it
stopped and a finished run costs nothing to re-run.

This module is the run; it also gathers the names a notebook needs (``generate.GenerationConfig``, ...).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import openai

from cotlib import config as cfgmod
from cotlib import prompts, verify
from cotlib.client import RunLimits, Teacher, Usage
from cotlib.data import QAPair
from cotlib.errors import AuthError, RunBudgetExceeded, StoreError, TeacherError
from cotlib.records import CoTRecord
from cotlib.progress import bar as progress_bar
from cotlib.search import SearchParams
from cotlib.solve import GenerationConfig, failed_record, solve_one
from cotlib.store import RecordStore, load_records

__all__ = ["CoTRecord", "GenerationConfig", "RunLimits", "RunSummary", "SearchParams", "agenerate", "apass_rates", "cost",
           "estimate", "generate", "load_records", "pass_rates", "run_sync"]

T = TypeVar("T")
#: Example price table, USD per million tokens (input, output). Pass your own to ``estimate``/``RunLimits``.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "deepseek-chat": (0.27, 1.10),
    "SmolLM2-135M-Instruct": (0.0, 0.0),
}


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
    per_search = min(cfg.max_calls_per_question - 1, round(1 / max(pass_rate, 0.05)))  # resampling: ~1/pass_rate
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
            verified += record.verified
            by_method[record.method] = by_method.get(record.method, 0) + 1
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


async def apass_rates(pairs: Iterable[QAPair], k: int = 4, endpoint: cfgmod.Endpoint | None = None,
                      cfg: GenerationConfig = GenerationConfig(),
                      limits: RunLimits = RunLimits()) -> dict[str, tuple[int, int]]:
    """Difficulty for curation (:func:`cotlib.curate.by_difficulty`): ``k`` fresh samples per question at the
    rollout temperature, each verified; ``{question id: (verified, k)}``. A question whose requests failed for good
    gets no rate (and is kept by the filter)."""
    teacher = Teacher(endpoint or cfgmod.resolve(cfgmod.load_settings()), limits, cfg.max_new_tokens)

    async def one(pair: QAPair) -> tuple[str, tuple[int, int]] | None:
        messages = prompts.direct_messages(pair.question, cfg.language)
        replies = await asyncio.gather(*(teacher.complete(messages, cfg.rollout_temperature, Usage()) for _ in range(k)),
                                       return_exceptions=True)
        if any(isinstance(r, BaseException) for r in replies):
            return None
        verdicts = [await asyncio.to_thread(verify.check, r.answer, pair.answer) for r in replies if not r.cut_off]
        return pair.id, (sum(v.correct for v in verdicts), k)

    try:
        return dict(r for r in await asyncio.gather(*(one(p) for p in pairs)) if r is not None)
    finally:
        await teacher.aclose()


def pass_rates(pairs: Iterable[QAPair], k: int = 4, **kwargs: Any) -> dict[str, tuple[int, int]]:
    """Synchronous :func:`apass_rates`; also works inside Jupyter's running event loop."""
    return run_sync(lambda: apass_rates(list(pairs), k, **kwargs))


def generate(pairs: Iterable[QAPair], output: str | Path, **kwargs: Any) -> RunSummary:
    """Synchronous :func:`agenerate`; also works inside Jupyter's running event loop."""
    return run_sync(lambda: agenerate(pairs, output, **kwargs))
