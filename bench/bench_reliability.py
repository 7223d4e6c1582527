"""Reliability figures for RELIABILITY.md: the fault-injected run, pathological answers, the boxed scan, kill -9.

Everything runs on this machine: a scripted OpenAI-compatible server on loopback (tests/scripted_llm.py) injects
faults into 20% of the calls (429 with Retry-After, 500, 503, a stall past the timeout, truncated JSON, empty
choices, empty and null content); the verifier gets the answers that used to hang or crash it.

Run: .venv/bin/python bench/bench_reliability.py [--questions 200] [--kills 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from scripted_llm import AdditionWorld, ScriptedLLM, cli_generate  # noqa: E402

from cotlib import config, data, generate, verify  # noqa: E402

FAULTS = ("429", "500", "503", "timeout", "truncated", "no_choices", "empty", "null_content")
PATHOLOGICAL = {
    "\\boxed{41 = 42} (gold 42)": ("\\boxed{41 = 42}", "42"),
    "\\boxed{10^{10^{10}}}": ("\\boxed{10^{10^{10}}}", "10"),
    "\\boxed{2^{2^{2^{2^{2^{2}}}}}}": ("\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "4"),
    "20 000 unclosed \\boxed{": ("\\boxed{" * 20_000 + "4", "4"),
    "a 5000-digit answer": ("\\boxed{" + "7" * 5000 + "}", "7" * 5000),
}


def fault_run(n: int) -> None:
    world = AdditionWorld(n, planted={i: 2 + i % 4 for i in range(0, n, 5)})
    pairs = data.load_qa(world.qa())
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM(world, timeout_sleep=1.0) as server:
        injected: Counter = Counter()
        rng = random.Random(7)

        class Mix:  # counts what the server injects
            def random(self) -> float:
                return rng.random()

            def choice(self, kinds):
                kind = rng.choice(kinds)
                injected[kind] += 1
                return kind

        server.fault_mix = (0.2, FAULTS, Mix())
        endpoint = config.Endpoint(server.base_url, server.model, config.Secret("sk-bench"))
        limits = generate.RunLimits(concurrency=16, timeout=0.5, max_retries=8, backoff_base=0.01, backoff_cap=0.05)
        start = time.perf_counter()
        summary = generate.generate(pairs, Path(tmp) / "r.jsonl", endpoint=endpoint, limits=limits, progress=False,
                                    cfg=generate.GenerationConfig(max_calls_per_question=30))
        seconds = time.perf_counter() - start
        ids = [json.loads(line)["id"] for line in (Path(tmp) / "r.jsonl").read_text().splitlines()]
        requests = len(server.requests)
    lost = len({p.id for p in pairs} - set(ids))
    print(f"fault run: {n} questions, {requests} requests, {sum(injected.values())} faults injected "
          f"({sum(injected.values()) / requests:.0%}: {', '.join(f'{k} {v}' for k, v in sorted(injected.items()))})")
    print(f"  -> {summary.generated} records, {lost} lost, {len(ids) - len(set(ids))} duplicated, "
          f"{summary.usage.retries} retries, {len(summary.errors)} question errors, {seconds:.1f} s")


def kill_trials(kills: int) -> None:
    world = AdditionWorld(30)
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM(world, latency=0.05) as server:
        out = Path(tmp) / "k.jsonl"
        cmd = cli_generate(world, server, tmp, out)
        rng, landed = random.Random(3), 0
        for _ in range(kills):
            proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.6, 1.2))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                landed += 1
            proc.wait()
        subprocess.run(cmd, check=True, capture_output=True)
        ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    print(f"kill -9: {landed} of {kills} trials killed a run mid-way; after resuming: {len(set(ids))}/30 questions, "
          f"{len(ids) - len(set(ids))} duplicated")


def pathological() -> None:
    verify.check("\\boxed{2(x+1)}", "2x+2")  # start the sandbox processes, reported apart
    for name, (text, gold) in PATHOLOGICAL.items():
        start = time.perf_counter()
        verdict = verify.check(text, gold)
        print(f"  {name:<34} {time.perf_counter() - start:5.2f} s  correct={verdict.correct}  {verdict.reason[:60]}")
    start = time.perf_counter()
    verify.boxed_answers("\\boxed{" * 200_000)
    print(f"  boxed scan of 200 000 unclosed \\boxed{{ {time.perf_counter() - start:5.2f} s (linear)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    fault_run(args.questions)
    kill_trials(args.kills)
    print("verifier on answers that used to hang or crash it:")
    pathological()


if __name__ == "__main__":
    main()
