"""Finding a verified solution when the first attempt is wrong: resampling, and the OmegaPRM search (Luo et al. 2024).

Pure logic: the search is given two async callables and does no I/O of its own.

- ``rollout(prefix_steps, n)`` → ``n`` full solutions that continue the given steps (LLM calls, made elsewhere),
- ``is_correct(solution)`` → does it verify against the golden answer (async, so a slow check never blocks).

Three policies (:class:`SearchParams`):

- ``resample``: fresh solutions from the start, one at a time, until one verifies (rejection sampling, as in RFT).
- ``omega``: OmegaPRM. A prefix's Monte-Carlo value ``MC`` is the share of its rollouts that verify; it is *good*
  when ``MC > 0`` (a correct solution can still be reached from it). Binary search over the wrong attempt's steps
  finds its first wrong step in O(log n) probes; rollouts then continue from the deepest good prefix. With
  ``collect_step_labels`` the search goes on until the budget ends: wrong rollouts from good prefixes enter a pool,
  and the next one to bisect maximizes ``Q + U`` with ``Q = α^(1 - MC) · β^(len(r) / L)`` (likely-fixable states,
  short rollouts) and ``U = c_puct · sqrt(Σ N) / (1 + N(s))`` (states visited less); the paper's defaults
  ``c_puct = 0.125, α = 0.5, β = 0.9, L = 500`` (``L`` in characters here).
- ``adaptive`` (the default): resample ``escalate_after`` times, then escalate to ``omega``. Resampling is the
  cheapest way to a verified sample unless fresh solutions keep failing (bench/bench_search.py measures where).

A probe stops as soon as its MC sign is known: at its first verified rollout (good), or after
``rollouts_per_estimate`` wrong ones (bad). Every rollout that verifies is a candidate; the shortest wins. Nothing
unverified is ever returned as correct.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cotlib.errors import BudgetExceeded

Rollout = Callable[[tuple[str, ...], int], Awaitable[list[str]]]
IsCorrect = Callable[[str], Awaitable[bool]]
POLICIES = ("adaptive", "resample", "omega")

_NUMBERED = re.compile(r"^\s*(?:step\s*\d+|第\s*\d+\s*步|\d+[.)、]|[-*•])\s*", re.IGNORECASE)


def split_steps(solution: str) -> list[str]:
    """Reasoning steps: non-empty lines, with display math (``$$ … $$``, ``\\[ … \\]``) and continuation lines of a
    numbered step kept together with it. Never split on "." (decimals, LaTeX and Chinese text would break)."""
    steps: list[str] = []
    in_math = False
    for line in solution.strip().splitlines():
        if not line.strip():
            continue
        opens = line.count("$$") % 2 == 1 or (line.strip().startswith("\\[") and "\\]" not in line)
        closes = line.count("$$") % 2 == 1 or "\\]" in line
        if in_math:
            steps[-1] += "\n" + line
            in_math = not closes
            continue
        if steps and not _NUMBERED.match(line) and _NUMBERED.match(steps[-1].splitlines()[0]) and line.startswith((" ", "\t")):
            steps[-1] += "\n" + line  # an indented continuation of a numbered step
        else:
            steps.append(line)
        in_math = opens
    return steps


def join_steps(steps: tuple[str, ...] | list[str]) -> str:
    return "\n".join(steps)


@dataclass
class Node:
    """A solution prefix (its first ``len(steps)`` steps) with its rollout statistics."""

    steps: tuple[str, ...]
    visits: int = 0  # N: times this state was probed
    rollouts: int = 0
    correct: int = 0

    @property
    def mc(self) -> float:
        return self.correct / self.rollouts if self.rollouts else 0.0


@dataclass(frozen=True)
class SearchParams:
    """How to search after a wrong first attempt."""

    policy: str = "adaptive"  # "adaptive", "resample" or "omega"
    escalate_after: int = 8  # adaptive: fresh samples before the binary search (measured: bench/bench_search.py)
    rollouts_per_estimate: int = 2  # k: the most rollouts one probe spends on its MC sign (more for labels)
    collect_step_labels: bool = False  # full OmegaPRM: locate the first wrong step and explore until the budget ends
    c_puct: float = 0.125
    alpha: float = 0.5
    beta: float = 0.9
    length_scale: int = 500  # L

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, not {self.policy!r}")
        if self.rollouts_per_estimate < 1 or self.escalate_after < 0:
            raise ValueError("rollouts_per_estimate must be >= 1 and escalate_after >= 0")


@dataclass
class SearchResult:
    best: str | None  # the shortest verified solution, or None
    candidates: list[str]
    first_error_step: int | None  # 1-based index of the first wrong step of the first attempt, if located
    step_labels: list[dict]  # process-reward data: {"steps": [...], "mc": float, "rollouts": int, "label": "+"/"-"}
    trace: list[dict]  # what happened, in order, for a trace view
    rollouts: int = 0
    escalated: bool = False  # the binary search ran
    found_at_prefix: int | None = None  # steps of the prefix the best solution continued (0: a fresh sample)
    tree: dict[tuple[str, ...], Node] = field(default_factory=dict)


class OmegaSearch:
    """One question's search state. ``run()`` drives it; the callables do the I/O."""

    def __init__(self, rollout: Rollout, is_correct: IsCorrect, params: SearchParams = SearchParams()) -> None:
        self.rollout, self.is_correct, self.p = rollout, is_correct, params
        self.tree: dict[tuple[str, ...], Node] = {}
        self.wrong: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (prefix, wrong continuation steps)
        self.candidates: list[tuple[str, int]] = []  # (verified solution, steps of the prefix it continued)
        self.trace: list[dict] = []
        self.n_rollouts = 0

    def node(self, steps: tuple[str, ...]) -> Node:
        if steps not in self.tree:
            self.tree[steps] = Node(steps)
        return self.tree[steps]

    async def sample(self, steps: tuple[str, ...]) -> bool:
        """One rollout from a prefix, counted into its node; a verified one becomes a candidate."""
        node = self.node(steps)
        [text] = await self.rollout(steps, 1)
        self.n_rollouts += 1
        ok = await self.is_correct(text)
        node.rollouts += 1
        node.correct += ok
        if ok:
            self.candidates.append((text, len(steps)))
        else:
            full = tuple(split_steps(text))
            if full[: len(steps)] == steps and len(full) > len(steps):
                self.wrong.append((steps, full[len(steps):]))
        return ok

    async def estimate(self, steps: tuple[str, ...]) -> Node:
        """A probe: rollouts from the prefix until its MC sign is known (the first verified one, or k wrong)."""
        node = self.node(steps)
        node.visits += 1
        tried = ok = 0
        while tried < self.p.rollouts_per_estimate and not ok:
            ok = await self.sample(steps)
            tried += 1
        self.trace.append({"event": "estimate", "prefix_steps": len(steps), "rollouts": tried, "correct": ok,
                           "mc": node.mc})
        return node

    def score(self, prefix: tuple[str, ...], rest: tuple[str, ...]) -> float:
        """Q + U for bisecting the wrong rollout ``rest`` that continues the good ``prefix``."""
        p, node = self.p, self.tree[prefix]
        q = p.alpha ** (1 - node.mc) * p.beta ** (len(join_steps(rest)) / p.length_scale)
        total = sum(n.visits for n in self.tree.values())
        u = p.c_puct * math.sqrt(total) / (1 + node.visits)
        return q + u

    @property
    def done(self) -> bool:
        return bool(self.candidates) and not self.p.collect_step_labels

    async def bisect(self, prefix: tuple[str, ...], rest: tuple[str, ...]) -> tuple[int, int]:
        """Binary search the first wrong step of ``prefix + rest`` (``prefix`` assumed good, the whole known wrong).

        Returns ``(good, bad)``: the longest prefix found good and the shortest found bad (in steps); when
        ``bad == good + 1``, step number ``bad`` is the first wrong one. Stops early once a verified solution is
        found, unless step labels are collected.
        """
        good, bad = len(prefix), len(prefix) + len(rest)
        steps = prefix + rest
        while bad - good > 1 and not self.done:
            mid = (good + bad) // 2
            node = self.tree.get(steps[:mid])
            if node is None or node.rollouts == 0:
                node = await self.estimate(steps[:mid])
            good, bad = (mid, bad) if node.mc > 0 else (good, mid)
            self.trace.append({"event": "bisect", "mid": mid, "mc": node.mc, "good": good, "bad": bad})
        return good, bad

    async def resample(self, times: int | None) -> None:
        """Fresh solutions from the start, one at a time, until one verifies (or ``times`` were tried)."""
        tried = 0
        while not self.candidates and (times is None or tried < times):
            self.trace.append({"event": "resample", "n": tried + 1})
            await self.sample(())
            tried += 1

    async def omega(self, first: tuple[str, ...]) -> None:
        """OmegaPRM from the wrong first attempt: bisect it, then roll out from good prefixes (or, collecting step
        labels, bisect wrong rollouts by Q + U) until done."""
        if first:
            good, _ = await self.bisect((), first)
            if good == 0 and not self.done and self.node(()).mc == 0:
                await self.estimate(())  # nothing after step 0 looked good: is the empty prefix good at all?
        while not self.done:
            pool = [(prefix, rest) for prefix, rest in self.wrong if self.node(prefix).mc > 0]
            if self.p.collect_step_labels and pool:
                prefix, rest = max(pool, key=lambda item: self.score(*item))
                self.wrong.remove((prefix, rest))
                self.trace.append({"event": "select", "prefix_steps": len(prefix), "rollout_steps": len(rest)})
                await self.bisect(prefix, rest)
                continue
            good_nodes = [n for n in self.tree.values() if n.mc > 0]
            start = max(good_nodes, key=lambda n: (n.mc, len(n.steps))).steps if good_nodes else ()
            self.trace.append({"event": "retry", "prefix_steps": len(start)})
            await self.estimate(start)

    def first_error(self, first: tuple[str, ...]) -> int | None:
        """The first wrong step of the first attempt, if what was probed pins it down: a good prefix (some rollout
        from it verified) followed by a bad one (every rollout from it failed; the attempt itself is bad)."""
        for k in range(len(first)):
            good, bad = self.tree.get(first[:k]), self.tree.get(first[: k + 1])
            if good and good.mc > 0 and bad and bad.rollouts and bad.mc == 0:
                return k + 1
        return None

    async def run(self, first_solution: str) -> SearchResult:
        """Search from a wrong first solution until a verified one is found (or, collecting step labels, until the
        budget ends)."""
        first = tuple(split_steps(first_solution))
        first_node = self.node(first)
        first_node.rollouts, first_node.visits = 1, 1  # the wrong attempt itself: MC = 0
        escalated = False
        try:
            if self.p.policy != "omega" and not self.p.collect_step_labels:
                await self.resample(None if self.p.policy == "resample" else self.p.escalate_after)
            if not self.done and self.p.policy != "resample":
                escalated = True
                self.trace.append({"event": "escalate"})
                await self.omega(first)
        except BudgetExceeded:
            self.trace.append({"event": "budget_exhausted"})
        first_error = self.first_error(first)
        if first_error:
            self.trace.append({"event": "first_error", "step": first_error, "text": first[first_error - 1]})
        labels = [
            {"steps": list(n.steps), "mc": round(n.mc, 3), "rollouts": n.rollouts, "label": "+" if n.mc > 0 else "-"}
            for n in sorted(self.tree.values(), key=lambda n: len(n.steps))
            if n.steps and n.rollouts
        ]
        best, at = min(self.candidates, key=lambda c: len(c[0])) if self.candidates else (None, None)
        return SearchResult(best, [c for c, _ in self.candidates], first_error, labels, self.trace, self.n_rollouts,
                            escalated, at, self.tree)
