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
    """Good prefixes continue correctly on every ``period``-th rollout; prefixes with a mistake never recover;
    ``root_never``: fresh solutions (the empty prefix) never verify."""

    def __init__(self, period=2, never=False, root_never=False):
        self.period, self.never, self.root_never, self.calls, self.counter = period, never, root_never, 0, 0

    async def rollout(self, prefix, n):
        outs = []
        for _ in range(n):
            self.calls += 1
            self.counter += 1
            ok = (list(prefix) == GOOD[: len(prefix)] and self.counter % self.period == 0 and not self.never
                  and not (self.root_never and not prefix))
            rest = GOOD[len(prefix):] if ok else wrong_from(len(prefix) + 1)[len(prefix):]
            outs.append("\n".join(list(prefix) + rest))
        return outs


def capped(teacher, budget):
    async def rollout(prefix, n):
        if teacher.calls >= budget:
            raise search.BudgetExceeded()
        return await teacher.rollout(prefix, n)

    return rollout


async def is_correct(text):
    return verify.check(text, GOLD).correct


def test_adaptive_resamples_first_and_stops_at_the_first_verified_sample():
    teacher = FakeTeacher(period=3)
    result = asyncio.run(OmegaSearch(teacher.rollout, is_correct).run("\n".join(wrong_from(4))))
    assert teacher.calls == 3 and result.rollouts == 3  # one at a time, none after the verified one
    assert result.best == "\n".join(GOOD) and result.found_at_prefix == 0
    assert not result.escalated and result.first_error_step is None
    assert [e["event"] for e in result.trace] == ["resample"] * 3


@pytest.mark.parametrize("escalate_after", [0, 2, 5])
def test_adaptive_escalates_to_the_binary_search_when_resampling_keeps_failing(escalate_after):
    teacher = FakeTeacher(period=1, root_never=True)  # no fresh sample verifies; any good prefix continues well
    params = SearchParams(escalate_after=escalate_after)
    result = asyncio.run(OmegaSearch(capped(teacher, 40), is_correct, params).run("\n".join(wrong_from(7))))
    events = [e["event"] for e in result.trace]
    assert events[:escalate_after + 1] == ["resample"] * escalate_after + ["escalate"]
    assert result.escalated and result.best is not None and verify.check(result.best, GOLD).correct
    assert result.found_at_prefix > 0  # continued a good prefix of the wrong attempt
    assert teacher.calls == escalate_after + 1  # the first probe (the middle of 9 steps) is good at once


def test_a_probe_stops_as_soon_as_its_sign_is_known():
    teacher = FakeTeacher(period=2)
    s = OmegaSearch(teacher.rollout, is_correct, SearchParams(rollouts_per_estimate=6))
    node = asyncio.run(s.estimate(tuple(GOOD[:3])))
    assert teacher.calls == 2 and node.rollouts == 2 and node.mc == 0.5  # good: known at the first verified one
    bad = asyncio.run(s.estimate(tuple(wrong_from(2)[:3])))
    assert bad.rollouts == 6 and bad.mc == 0  # bad: known only after k wrong ones


def test_resample_policy_never_escalates():
    teacher = FakeTeacher(never=True)
    result = asyncio.run(OmegaSearch(capped(teacher, 30), is_correct, SearchParams(policy="resample")).run(
        "\n".join(wrong_from(3))))
    assert result.best is None and not result.escalated and teacher.calls == 30
    assert {e["event"] for e in result.trace} == {"resample", "budget_exhausted"}


@pytest.mark.parametrize("planted", [1, 2, 4, 5, 8])
def test_step_labels_locate_the_planted_first_wrong_step(planted):
    teacher = FakeTeacher(period=2)
    params = SearchParams(rollouts_per_estimate=2, collect_step_labels=True)
    first = wrong_from(planted)
    result = asyncio.run(OmegaSearch(capped(teacher, 24), is_correct, params).run("\n".join(first)))
    assert result.first_error_step == planted
    assert result.best is not None and verify.check(result.best, GOLD).correct
    assert all(verify.check(c, GOLD).correct for c in result.candidates)
    first_probes = [e for e in result.trace if e["event"] == "bisect"][:4]
    assert [e["mid"] for e in first_probes][0] == 4  # the middle of 9 steps first
    labels = {len(label["steps"]): label["label"] for label in result.step_labels
              if label["steps"] == first[: len(label["steps"])]}  # the first attempt's prefixes
    assert labels[planted] == "-" and labels.get(planted - 1, "+") == "+"


def test_omega_policy_bisects_without_resampling():
    teacher = FakeTeacher(period=2)
    result = asyncio.run(OmegaSearch(teacher.rollout, is_correct, SearchParams(policy="omega")).run(
        "\n".join(wrong_from(6))))
    assert result.trace[0]["event"] == "escalate" and result.escalated
    assert result.trace[1] == {"event": "estimate", "prefix_steps": 4, "rollouts": 2, "correct": True, "mc": 0.5}
    assert result.found_at_prefix == 4


def test_nothing_unverified_is_returned_and_budget_stops_the_search():
    teacher = FakeTeacher(never=True)
    result = asyncio.run(OmegaSearch(capped(teacher, 20), is_correct).run("\n".join(wrong_from(3))))
    assert result.best is None and result.candidates == []
    assert result.first_error_step is None  # no prefix was ever shown good
    assert teacher.calls == 20 and result.trace[-1]["event"] == "budget_exhausted"
    assert all(label["label"] == "-" for label in result.step_labels)


def test_exploration_mode_bisects_wrong_rollouts_by_q_plus_u():
    teacher = FakeTeacher(period=3)
    s = OmegaSearch(capped(teacher, 40), is_correct, SearchParams(rollouts_per_estimate=3, collect_step_labels=True))
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
