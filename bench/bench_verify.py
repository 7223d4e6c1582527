"""Verifier benchmark: agreement with the labeled set and time per check (first pass, no prediction caching).

Run: .venv/bin/python bench/bench_verify.py
"""

import json
import statistics
import time
from pathlib import Path

from cotlib.verify import check

CASES = [json.loads(line) for line in (Path(__file__).parents[1] / "tests/data/verify_cases.jsonl").read_text().splitlines() if line]


def main() -> None:
    check("\\boxed{\\frac{1}{2}}", "0.5")  # import-time warm-up of sympy/math-verify, reported apart
    times, agree, by_method = [], 0, {}
    for case in CASES:
        start = time.perf_counter()
        verdict = check(case["prediction"], case["gold"])
        times.append(time.perf_counter() - start)
        agree += verdict.correct == case["expected"]
        by_method[verdict.method] = by_method.get(verdict.method, 0) + 1
    n = len(CASES)
    print(f"cases: {n}  agreement: {agree}/{n} = {agree / n:.1%}")
    print(f"per check: mean {statistics.mean(times) * 1e6:.0f} µs, median {statistics.median(times) * 1e6:.0f} µs, "
          f"p95 {sorted(times)[int(0.95 * n)] * 1e6:.0f} µs, max {max(times) * 1e3:.1f} ms")
    print("decided by:", ", ".join(f"{m} {c}" for m, c in sorted(by_method.items())))


if __name__ == "__main__":
    main()
