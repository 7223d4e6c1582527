"""A simulated teacher for comparing search policies in seconds, without an LLM.

Each of ``steps`` steps is wrong with probability ``p`` (one number, or one per step); a wrong step spoils every
later one, and the final answer is right only when every step is. Rollouts continue the prefix they are given (a
prefix holding a wrong step never recovers). The real search (:class:`cotlib.search.OmegaSearch`) runs on it
unchanged: only the I/O is simulated.
Chapter 3's sweep and bench/bench_search.py use it; tests/scripted_llm.py serves the same world over HTTP.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cotlib.errors import BudgetExceeded
from cotlib.search import OmegaSearch, SearchParams

WRONG = "a mistake here"


def draw_steps(done: Sequence[str], rng: random.Random, p: float | Sequence[float], steps: int = 6, a: int = 1,
               b: int = 2) -> list[str]:
    """The rest of a solution to "a + b" after the steps ``done``: step j wrong with probability ``p`` (or ``p[j-1]``)."""
    wrong = any(WRONG in s for s in done)
    rest = []
    for j in range(len(done) + 1, steps + 1):
        wrong = wrong or rng.random() < (p[j - 1] if isinstance(p, Sequence) else p)
        rest.append(f"Step {j}: {WRONG}." if wrong else f"Step {j}: a correct step towards {a} + {b}.")
    return rest + [f"The answer is \\boxed{{{a + b + (10 if wrong else 0)}}}."]


@dataclass(frozen=True)
class Outcome:
    policy: str
    p: float | tuple[float, ...]
    questions: int
    verified: int
    calls: int

    @property
    def calls_per_verified(self) -> float:
        return self.calls / self.verified if self.verified else float("inf")


def simulate(params: SearchParams, p: float | Sequence[float], questions: int = 1000, budget: int = 24, steps: int = 6,
             seed: int = 0) -> Outcome:
    """A direct attempt, then the search within ``budget`` calls, for each of ``questions`` simulated questions."""
    rng = random.Random(seed)
    calls = verified = 0

    async def solve() -> tuple[int, bool]:
        used = 1
        first = draw_steps([], rng, p, steps)
        if WRONG not in "".join(first):
            return used, True

        async def rollout(prefix: tuple[str, ...], n: int) -> list[str]:
            nonlocal used
            if used + n > budget:
                raise BudgetExceeded()
            used += n
            return ["\n".join([*prefix, *draw_steps(prefix, rng, p, steps)]) for _ in range(n)]

        async def is_correct(text: str) -> bool:
            return WRONG not in text

        result = await OmegaSearch(rollout, is_correct, params).run("\n".join(first))
        return used, result.best is not None

    for _ in range(questions):
        used, ok = _drive(solve())
        calls, verified = calls + used, verified + ok
    label = params.policy if params.policy != "adaptive" else f"adaptive (escalate after {params.escalate_after})"
    return Outcome(label, p if isinstance(p, (int, float)) else tuple(p), questions, verified, calls)


def _drive(coroutine: Any) -> Any:
    """Run a coroutine that never waits on real I/O (so also inside Jupyter's running event loop)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the simulated search waited on real I/O")


def compare(ps: Sequence[float] = (0.05, 0.15, 0.3), policies: Sequence[SearchParams] | None = None,
            questions: int = 1000, budget: int = 24) -> list[Outcome]:
    """Every policy on every difficulty, on the same simulated questions (same seed)."""
    policies = policies or [SearchParams(policy="resample"), SearchParams(policy="omega"), SearchParams()]
    return [simulate(params, p, questions, budget) for p in ps for params in policies]
