"""The simulated teacher behind chapter 3's sweep and bench/bench_search.py."""

import asyncio
import random

from cotlib import sweep
from cotlib.search import SearchParams


def test_a_wrong_step_spoils_the_rest_and_the_answer():
    rng = random.Random(1)
    assert sweep.draw_steps([], rng, p=0.0)[-1] == "The answer is \\boxed{3}."
    spoiled = sweep.draw_steps(["Step 1: a mistake here."], rng, p=0.0)
    assert len(spoiled) == 6 and all(sweep.WRONG in s for s in spoiled[:-1]) and spoiled[-1].endswith("{13}.")


def test_easy_questions_cost_one_call_and_hard_ones_hit_the_budget():
    assert sweep.simulate(SearchParams(), p=0.0, questions=50).calls == 50
    hopeless = sweep.simulate(SearchParams(), p=1.0, questions=5, budget=10)
    assert hopeless.verified == 0 and hopeless.calls == 50


def test_the_sweep_runs_inside_a_running_event_loop():
    """Chapter 3 calls it from a Jupyter kernel, whose event loop is running."""

    async def in_a_kernel():
        return sweep.compare(ps=(0.15,), questions=300)

    outcomes = asyncio.run(in_a_kernel())
    assert [o.policy for o in outcomes] == ["resample", "omega", "adaptive (escalate after 8)"]
    resample, omega, adaptive = (o.calls_per_verified for o in outcomes)
    assert resample < omega and adaptive <= 1.15 * resample


def test_one_probability_per_step():
    rng = random.Random(0)
    first_always_wrong = sweep.draw_steps([], rng, p=[1.0, 0, 0, 0, 0, 0])
    assert all(sweep.WRONG in s for s in first_always_wrong[:-1])
    only_last = sweep.draw_steps([], rng, p=[0, 0, 0, 0, 0, 1.0])
    assert [sweep.WRONG in s for s in only_last[:-1]] == [False] * 5 + [True]
    outcome = sweep.simulate(SearchParams(policy="omega"), p=[0.7, 0.02, 0.02, 0.02, 0.02, 0.02], questions=50)
    assert outcome.p == (0.7, 0.02, 0.02, 0.02, 0.02, 0.02) and 0 < outcome.verified <= 50
