"""Verifier benchmark: agreement with the labeled set and with Math-Verify's own test suite (through the adapter
of tests/test_mathverify_suite.py, with the policy differences of tests/data/mathverify_policy.json counted apart),
and the time per check (first pass, no prediction caching).

Run: .venv/bin/python bench/bench_verify.py
"""

import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from cotlib.verify import check

ROOT = Path(__file__).parents[1]
CASES = [json.loads(line) for line in (ROOT / "tests/data/verify_cases.jsonl").read_text().splitlines() if line]


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
    math_verify_suite()


def math_verify_suite() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_mathverify_suite import CASES as SUITE, LISTED, verdict

    agree = false_accepts = 0
    for line, case in enumerate(SUITE, start=1):
        v = verdict(case)
        agree += v.correct == case["expected"]
        false_accepts += v.correct and not case["expected"]
    n, rules = len(SUITE), Counter(c["rule"] for c in LISTED.values())
    print(f"Math-Verify's suite: {n} cases  agree {agree} ({agree / n:.1%})  documented policy {len(LISTED)}  "
          f"({', '.join(f'{r} {k}' for r, k in rules.most_common())})  "
          f"with policy {(agree + len(LISTED)) / n:.1%}  false accepts {false_accepts}")


if __name__ == "__main__":
    main()
