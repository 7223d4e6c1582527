"""The search, as pure logic: fake rollouts in-process, no server."""

import asyncio

import pytest

from cotlib import search, verify
from cotlib.search import OmegaSearch, SearchParams, split_steps

GOLD = "42"
GOOD = [f"Step {i}: a correct step number {i}." for i in range(1, 9)] + ["The answer is \\boxed{42}."]


def wrong_from(e):
    return GOOD[: e - 1] + [f"Step {e}: a mistake."] + [f"Step {j}: more." for j in range(e + 1, 9)] + ["The answer is \\boxed{41}."]


class FakeTeacher:
    """Good prefixes continue correctly on every ``period``-th rollout; prefixes with a mistake never recover."""

    def __init__(self, period=2, never=False):
        self.period, self.never, self.calls, self.counter = period, never, 0, 0

    async def rollout(self, prefix, n):
        outs = []
        for _ in range(n):
            self.calls += 1
            self.counter += 1
            ok = list(prefix) == GOOD[: len(prefix)] and self.counter % self.period == 0 and not self.never
            rest = GOOD[len(prefix):] if ok else wrong_from(len(prefix) + 1)[len(prefix):]
            outs.append("\n".join(list(prefix) + rest))
        return outs


async def is_correct(text):
    return verify.check(text, GOLD).correct


@pytest.mark.parametrize("planted", [1, 2, 4, 5, 8])
def test_binary_search_finds_the_planted_first_wrong_step(planted):
    teacher = FakeTeacher(period=2)
    result = asyncio.run(OmegaSearch(teacher.rollout, is_correct, SearchParams(rollouts_per_estimate=2)).run(
        "\n".join(wrong_from(planted))))
    assert result.first_error_step == planted
    assert result.best is not None and verify.check(result.best, GOLD).correct
    assert all(verify.check(c, GOLD).correct for c in result.candidates)
    probes = [e for e in result.trace if e["event"] == "bisect"]
    assert len(probes) <= 4  # ceil(log2(9 steps))
    labels = {len(label["steps"]): label["label"] for label in result.step_labels}
    assert labels[planted] == "-" and labels.get(planted - 1, "+") == "+"


def test_nothing_unverified_is_returned_and_budget_stops_the_search():
    teacher = FakeTeacher(never=True)

    async def capped(prefix, n):
        if teacher.calls >= 20:
            raise search.BudgetExceeded()
        return await teacher.rollout(prefix, n)

    result = asyncio.run(OmegaSearch(capped, is_correct).run("\n".join(wrong_from(3))))
    assert result.best is None and result.candidates == []
    assert result.first_error_step is None  # no prefix was ever shown good
    assert teacher.calls == 20 and result.trace[-1]["event"] == "budget_exhausted"
    assert all(label["label"] == "-" for label in result.step_labels)


def test_exploration_mode_bisects_wrong_rollouts_by_q_plus_u():
    teacher = FakeTeacher(period=3)
    budget = {"calls": 0}

    async def capped(prefix, n):
        if budget["calls"] >= 40:
            raise search.BudgetExceeded()
        budget["calls"] += n
        return await teacher.rollout(prefix, n)

    s = OmegaSearch(capped, is_correct, SearchParams(rollouts_per_estimate=3, stop_at_first=False))
    result = asyncio.run(s.run("\n".join(wrong_from(6))))
    assert result.first_error_step == 6
    assert any(e["event"] == "select" for e in result.trace)
    assert len(result.candidates) >= 2 and result.best == min(result.candidates, key=len)


def test_q_plus_u_prefers_promising_short_and_rarely_visited():
    s = OmegaSearch(FakeTeacher().rollout, is_correct)
    a, b = s.node(("x",)), s.node(("y",))
    a.rollouts, a.correct, a.visits = 4, 3, 1
    b.rollouts, b.correct, b.visits = 4, 1, 1
    assert s.score(("x",), ("s",)) > s.score(("y",), ("s",))  # higher MC
    assert s.score(("x",), ("s",)) > s.score(("x",), ("s" * 2000,))  # shorter rollout
    b.correct, b.visits = 3, 5
    assert s.score(("x",), ("s",)) > s.score(("y",), ("s",))  # fewer visits


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("Step 1: 3.5 + 1.25 = 4.75.\nStep 2: So \\boxed{4.75}.", ["Step 1: 3.5 + 1.25 = 4.75.", "Step 2: So \\boxed{4.75}."]),
        ("First, $\\frac{1}{2}$. Then 0.5.\n\nAnswer: 0.5", ["First, $\\frac{1}{2}$. Then 0.5.", "Answer: 0.5"]),
        ("首先，3 + 5 = 8。然后乘以 2。\n答案是 \\boxed{16}", ["首先，3 + 5 = 8。然后乘以 2。", "答案是 \\boxed{16}"]),
        ("1. Expand:\n   (a+b)^2\n2. Done.", ["1. Expand:\n   (a+b)^2", "2. Done."]),
        ("We compute\n$$\n\\binom{8}{2} = 28\n$$\nSo 28.", ["We compute", "$$\n\\binom{8}{2} = 28\n$$", "So 28."]),
    ],
)
def test_split_steps_never_on_periods(text, steps):
    assert split_steps(text) == steps
