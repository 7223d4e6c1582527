"""Searching for a verified solution when the first one is wrong (OmegaPRM-style, Luo et al. 2024).

Pure logic: the search is given two async callables and does no I/O of its own.

- ``rollout(prefix_steps, n)`` → ``n`` full solutions that continue the given steps (LLM calls, made elsewhere),
- ``is_correct(solution)`` → does it verify against the golden answer (async, so a slow check never blocks).

The method:

1. A solution is split into reasoning steps (lines, or numbered steps; never on "." which would break decimals,
   LaTeX and Chinese text).
2. A prefix's Monte-Carlo value ``MC`` is the share of ``k`` rollouts from it that verify. A prefix is *good* when
   ``MC > 0``: a correct solution can still be reached from it.
3. For a wrong solution whose start is good, binary search finds the first wrong step in O(log n) MC estimates:
   the last good prefix and the first bad one bracket it.
4. All wrong rollouts from good prefixes enter a pool; the next one to bisect maximizes ``Q + U`` with
   ``Q = α^(1 - MC(s)) · β^(len(r) / L)`` (prefer likely-fixable states and short rollouts) and
   ``U = c_puct · sqrt(Σ N) / (1 + N(s))`` (prefer states visited less). Defaults are the paper's:
   ``c_puct = 0.125, α = 0.5, β = 0.9, L = 500`` (``L`` in characters here).
5. Every rollout that verifies is a candidate; the shortest one wins. Nothing unverified is ever returned as correct.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Rollout = Callable[[tuple[str, ...], int], Awaitable[list[str]]]
IsCorrect = Callable[[str], Awaitable[bool]]

_NUMBERED = re.compile(r"^\s*(?:step\s*\d+|第\s*\d+\s*步|\d+[.)、]|[-*•])\s*", re.IGNORECASE)


def split_steps(solution: str) -> list[str]:
    """Reasoning steps: non-empty lines, with display math (``$$ … $$``, ``\\[ … \\]``) and continuation lines of a
    numbered step kept together with it."""
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
    visits: int = 0  # N: times this state was expanded or rolled out from
    rollouts: int = 0
    correct: int = 0

    @property
    def mc(self) -> float:
        return self.correct / self.rollouts if self.rollouts else 0.0


@dataclass(frozen=True)
class SearchParams:
    rollouts_per_estimate: int = 4  # k
    c_puct: float = 0.125
    alpha: float = 0.5
    beta: float = 0.9
    length_scale: int = 500  # L
    stop_at_first: bool = True  # stop once a verified solution exists (else: explore until the budget ends)


@dataclass
class SearchResult:
    best: str | None  # the shortest verified solution, or None
    candidates: list[str]
    first_error_step: int | None  # 1-based index of the first wrong step in the first solution, if found
    step_labels: list[dict]  # process-reward data: {"steps": [...], "mc": float, "label": "+"/"-"}
    trace: list[dict]  # what happened, in order, for a trace view
    rollouts: int = 0
    tree: dict[tuple[str, ...], Node] = field(default_factory=dict)


class BudgetExceeded(Exception):
    """Raised by a rollout callable when its question's budget is spent; the search then stops cleanly."""


class OmegaSearch:
    """One question's search state. ``run()`` drives it; the callables do the I/O."""

    def __init__(self, rollout: Rollout, is_correct: IsCorrect, params: SearchParams = SearchParams()) -> None:
        self.rollout, self.is_correct, self.p = rollout, is_correct, params
        self.tree: dict[tuple[str, ...], Node] = {}
        self.pool: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (good prefix, wrong continuation steps)
        self.candidates: list[str] = []
        self.trace: list[dict] = []
        self.n_rollouts = 0

    def node(self, steps: tuple[str, ...]) -> Node:
        if steps not in self.tree:
            self.tree[steps] = Node(steps)
        return self.tree[steps]

    async def estimate(self, steps: tuple[str, ...]) -> Node:
        """MC estimate of a prefix from k rollouts; correct rollouts become candidates, wrong ones join the pool."""
        node = self.node(steps)
        outs = await self.rollout(steps, self.p.rollouts_per_estimate)
        node.visits += 1
        oks = []
        for text in outs:
            self.n_rollouts += 1
            ok = await self.is_correct(text)
            oks.append(ok)
            node.rollouts += 1
            node.correct += ok
            if ok:
                self.candidates.append(text)
        for text, ok in zip(outs, oks):
            full = tuple(split_steps(text))
            if not ok and full[: len(steps)] == steps and len(full) > len(steps) and node.mc > 0:
                self.pool.append((steps, full[len(steps):]))
        self.trace.append({"event": "estimate", "prefix_steps": len(steps), "rollouts": len(outs),
                           "correct": sum(oks), "mc": node.mc})
        return node

    def score(self, prefix: tuple[str, ...], rest: tuple[str, ...]) -> float:
        """Q + U for bisecting the wrong rollout ``rest`` that continues the good ``prefix``."""
        p, node = self.p, self.tree[prefix]
        q = p.alpha ** (1 - node.mc) * p.beta ** (len(join_steps(rest)) / p.length_scale)
        total = sum(n.visits for n in self.tree.values())
        u = p.c_puct * math.sqrt(total) / (1 + node.visits)
        return q + u

    async def bisect(self, prefix: tuple[str, ...], rest: tuple[str, ...], stop_early: bool) -> tuple[int, int]:
        """Binary search the first wrong step of ``prefix + rest`` (``prefix`` assumed good, the whole known wrong).

        Returns ``(good, bad)``: the longest prefix found good and the shortest found bad (in steps); when
        ``bad == good + 1``, step number ``bad`` is the first wrong one. ``stop_early`` stops at the first verified
        rollout instead.
        """
        good, bad = len(prefix), len(prefix) + len(rest)
        steps = prefix + rest
        while bad - good > 1 and not (stop_early and self.candidates):
            mid = (good + bad) // 2
            node = self.tree.get(steps[:mid])
            if node is None or node.rollouts == 0:
                node = await self.estimate(steps[:mid])
            good, bad = (mid, bad) if node.mc > 0 else (good, mid)
            self.trace.append({"event": "bisect", "mid": mid, "mc": node.mc, "good": good, "bad": bad})
        return good, bad

    async def run(self, first_solution: str) -> SearchResult:
        """Search from a wrong first solution until a verified one is found or the budget runs out.

        First the wrong solution's first wrong step is located (complete binary search: these are the process
        labels), then, while nothing verified, rollouts continue from the deepest good prefix (or from scratch).
        With ``stop_at_first=False`` the search goes on bisecting wrong rollouts chosen by Q + U until the budget ends.
        """
        first = tuple(split_steps(first_solution))
        first_node = self.node(first)
        first_node.rollouts, first_node.visits = 1, 1  # the wrong attempt itself: MC = 0
        first_error: int | None = None
        try:
            if first:
                good, bad = await self.bisect((), first, stop_early=False)
                if good == 0:  # nothing after step 0 looked good: is the empty prefix good at all?
                    await self.estimate(())
                if bad == good + 1 and self.tree.get(first[:good], Node(())).mc > 0:
                    first_error = bad
                    self.trace.append({"event": "first_error", "step": bad, "text": first[good]})
            while not (self.candidates and self.p.stop_at_first):
                if self.pool and not self.p.stop_at_first:
                    i = max(range(len(self.pool)), key=lambda j: self.score(*self.pool[j]))
                    prefix, rest = self.pool.pop(i)
                    self.trace.append({"event": "select", "prefix_steps": len(prefix), "rollout_steps": len(rest)})
                    await self.bisect(prefix, rest, stop_early=False)
                    continue
                good_nodes = [n for n in self.tree.values() if n.mc > 0]
                start = max(good_nodes, key=lambda n: (n.mc, len(n.steps))).steps if good_nodes else ()
                self.trace.append({"event": "retry", "prefix_steps": len(start)})
                await self.estimate(start)
        except BudgetExceeded:
            self.trace.append({"event": "budget_exhausted"})
        labels = [
            {"steps": list(n.steps), "mc": round(n.mc, 3), "rollouts": n.rollouts, "label": "+" if n.mc > 0 else "-"}
            for n in sorted(self.tree.values(), key=lambda n: len(n.steps))
            if n.steps and n.rollouts
        ]
        best = min(self.candidates, key=len) if self.candidates else None
        return SearchResult(best, list(self.candidates), first_error, labels, self.trace, self.n_rollouts, self.tree)
