"""Search-policy benchmark: resampling, OmegaPRM and the adaptive default, side by side, over a difficulty sweep.

The teacher is scripted (tests/scripted_llm.py ``StepWorld``): each of 6 steps is wrong with probability p, a wrong
step spoils the rest, and rollouts continue from the prefix they are given. For each p in {0.05, 0.15, 0.3}:

1. **Threshold** (in-process, the pure search, thousands of questions): calls per verified sample of the adaptive
   policy for several ``escalate_after`` values, beside the two pure policies. This is where the default comes from.
2. **Sweep** (cotlib's engine against the scripted server in its own process, ``--latency`` per call, concurrency
   16): calls and wall time per verified sample for ``resample``, ``omega`` and ``adaptive``; the default must stay
   within 15% of the better pure policy on every setting.

Run: .venv/bin/python bench/bench_search.py [--questions 768] [--latency 0.01] [--sim 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from scripted_llm import ServedWorld, StepWorld  # noqa: E402

from cotlib import config, data, generate  # noqa: E402
from cotlib.search import SearchParams  # noqa: E402
from cotlib.sweep import simulate  # noqa: E402

PS = (0.05, 0.15, 0.3)
POLICIES = ("resample", "omega", "adaptive")
BUDGET = generate.GenerationConfig().max_calls_per_question


def run_engine(server: ServedWorld, qa: dict[str, str], policy: str, concurrency: int) -> dict:
    endpoint = config.Endpoint(server.base_url, "scripted-teacher", config.Secret("x"))
    cfg = generate.GenerationConfig(search=SearchParams(policy=policy))
    pairs = data.load_qa(qa)
    with tempfile.TemporaryDirectory() as tmp:
        before, start = server.requests(), time.perf_counter()
        summary = generate.generate(pairs, Path(tmp) / "out.jsonl", endpoint=endpoint, cfg=cfg,
                                    limits=generate.RunLimits(concurrency=concurrency), progress=False)
        wall = time.perf_counter() - start
    calls = server.requests() - before
    return {"calls": calls / summary.verified, "wall_ms": 1000 * wall / summary.verified,
            "verified": summary.verified / len(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=768, help="per engine run (fewer: noisier at p = 0.3)")
    parser.add_argument("--latency", type=float, default=0.01)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sim", type=int, default=3000, help="simulated questions per threshold setting")
    args = parser.parse_args()

    default = SearchParams().escalate_after
    thresholds = sorted({0, 2, 4, 8, 12, default})
    print(f"1. escalate_after (pure search, {args.sim} simulated questions per cell, {BUDGET} calls per question): "
          "calls per verified sample")
    print(f"{'p':>5} {'resample':>9} {'omega':>7} " + " ".join(f"{'T=' + str(t):>6}" for t in thresholds))
    for p in PS:
        pure = [simulate(SearchParams(policy=name), p, args.sim, BUDGET).calls_per_verified for name in ("resample", "omega")]
        adaptive = [simulate(SearchParams(escalate_after=t), p, args.sim, BUDGET).calls_per_verified for t in thresholds]
        print(f"{p:5.2f} {pure[0]:9.2f} {pure[1]:7.2f} " + " ".join(f"{c:6.2f}" for c in adaptive))

    print(f"\n2. the engine: {args.questions} questions per run, {args.latency * 1000:.0f} ms per call, "
          f"concurrency {args.concurrency}, default escalate_after={default}")
    print(f"{'p':>5} {'policy':<9} {'calls/verified':>15} {'ms/verified':>12} {'verified':>9}")
    worst = 0.0
    for p in PS:
        qa = StepWorld(args.questions, p).qa()
        with ServedWorld("step", args.questions, args.latency, p) as server:
            rows = {name: run_engine(server, qa, name, args.concurrency) for name in POLICIES}
        for name, r in rows.items():
            print(f"{p:5.2f} {name:<9} {r['calls']:15.2f} {r['wall_ms']:12.1f} {r['verified']:9.0%}")
        better = min(rows["resample"]["calls"], rows["omega"]["calls"])
        gap = rows["adaptive"]["calls"] / better - 1
        worst = max(worst, gap)
        print(f"{'':5} default vs the better pure policy: {gap:+.0%} calls per verified sample")
    print(f"worst gap over the sweep: {worst:+.0%}  (target <= +15%)")


if __name__ == "__main__":
    main()
