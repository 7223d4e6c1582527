"""Generation benchmark: camel's CoTDataGenerator loop vs cotlib's engine, same questions, same server, one run.

A scripted OpenAI-compatible server on loopback (tests/scripted_llm.py, in its own process) answers with 250 ms
latency: every third question's first attempt is wrong from a planted step, and any fresh sample is right (the easy
mix: the ideal is one resample per wrong first attempt). ``--period 4`` makes fresh samples right one time in four. camel's generator runs as in the original tutorial (``solve`` per question, sequentially; its ``search_limit``
is set so that its worst case matches cotlib's 24 calls per question); cotlib runs at concurrency 16. Both outputs
are checked with cotlib.verify. Prints wall-time ratio, LLM calls per verified sample, and cotlib's time against the
ideal (ceil(calls / concurrency) × latency: each request slot finishes at most one call per latency).

Run: .venv/bin/python bench/bench_generate.py [--questions 64] [--latency 0.25] [--concurrency 16] [--period 1]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from scripted_llm import AdditionWorld, ServedWorld  # noqa: E402

from cotlib import client, config, data, generate, prompts, verify  # noqa: E402


def camel_generator_class():
    """camel's CoTDataGenerator, loaded from its file: importing camel.datagen would pull torch and rouge."""
    import camel

    path = Path(camel.__file__).parent / "datagen" / "cot_datagen.py"
    spec = importlib.util.spec_from_file_location("camel_cot_datagen", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CoTDataGenerator


def run_camel(server: ServedWorld, qa: dict[str, str], search_limit: int) -> dict:
    from camel.agents import ChatAgent

    endpoint = config.Endpoint(server.base_url, "scripted-teacher", config.Secret("x"), 32768)
    make = lambda t: ChatAgent(system_message="You are a genius at slow-thinking data and code",  # noqa: E731
                               model=config.create_model(endpoint, temperature=t), token_limit=32768)
    generator = camel_generator_class()(generator_agent=make(0.8), verifier_agent=make(0.0), golden_answers=qa,
                                        search_limit=search_limit)
    before, start = server.requests(), time.perf_counter()
    verified = 0
    for question, gold in qa.items():
        solution = generator.solve(question)
        verified += verify.check(solution, gold).correct
    return {"wall": time.perf_counter() - start, "calls": server.requests() - before, "verified": verified}


def run_cotlib(server: ServedWorld, qa: dict[str, str], concurrency: int) -> dict:
    endpoint = config.Endpoint(server.base_url, "scripted-teacher", config.Secret("x"))
    limits = generate.RunLimits(concurrency=concurrency)
    pairs = data.load_qa(qa)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        teacher = client.Teacher(endpoint, limits)
        asyncio.run(teacher.complete(prompts.direct_messages("Q0: What is 100 + 23?", "en"), 0.0, client.Usage()))
        startup = time.perf_counter() - start  # imports done; client set-up + one request
        before, start = server.requests(), time.perf_counter()
        summary = generate.generate(pairs, Path(tmp) / "out.jsonl", endpoint=endpoint, limits=limits, progress=False)
        wall = time.perf_counter() - start
    return {"wall": wall, "calls": server.requests() - before, "verified": summary.verified, "startup": startup}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--period", type=int, default=1, help="a fresh sample is right every PERIOD-th time")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # camel warns about unknown model ids

    search_limit = (24 - 2) // 2  # camel: 2 calls for the direct attempt, 2 per search iteration
    qa = AdditionWorld(args.questions, period=args.period).qa()  # the served world's questions and answers
    with ServedWorld(args.questions, args.latency, args.period) as server:
        camel = run_camel(server, qa, search_limit)
    with ServedWorld(args.questions, args.latency, args.period) as server:
        ours = run_cotlib(server, qa, args.concurrency)
    rounds = -(-ours["calls"] // args.concurrency)  # each slot finishes at most one call per latency
    ideal = rounds * args.latency
    n = args.questions
    least = n + len(range(0, n, 3))  # one call per question, plus one resample per wrong first attempt
    print(f"{n} questions, {args.latency * 1000:.0f} ms latency, cotlib concurrency {args.concurrency}")
    for name, r in (("camel CoTDataGenerator", camel), ("cotlib", ours)):
        per = r["calls"] / r["verified"] if r["verified"] else float("inf")
        print(f"{name:<24} wall {r['wall']:7.2f} s  calls {r['calls']:5d}  verified {r['verified']:3d}/{n}  "
              f"calls per verified sample {per:5.2f}")
    print(f"speed-up (camel wall / cotlib wall): {camel['wall'] / ours['wall']:.1f}x  (target >= 10x)")
    ratio = (ours["calls"] / ours["verified"]) / (camel["calls"] / camel["verified"]) if camel["verified"] else 0.0
    print(f"calls per verified sample, cotlib / camel: {ratio:.2f}  (target <= 0.6)")
    print(f"cotlib vs ideal (ceil(calls / concurrency) x latency = {rounds} x {args.latency:.2f} = {ideal:.2f} s): "
          f"{ours['wall'] / ideal:.2f}x  (target <= 1.3)")
    if args.period == 1:
        print(f"cotlib calls vs the fewest possible ({least}): {ours['calls'] / least:.2f}x  (target <= 1.3)")
    print(f"cotlib start-up (client set-up + first question): {ours['startup']:.2f} s, reported apart")


if __name__ == "__main__":
    main()
