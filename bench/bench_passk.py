"""The offline teacher's pass@k per question type: which demo questions can it solve, and how often?

For ``--per-type`` training questions of each type and language, one greedy attempt (chapter 3's direct attempt) and
``--samples`` rollouts at the rollout temperature, all with chapter 3's prompt, checked with ``verify.check``.
pass@k is the unbiased estimate 1 - C(n-c, k) / C(n, k) per question (Chen et al., 2021), averaged: pass@4 is the
chance that one Monte-Carlo estimate of chapter 3's search (4 rollouts from scratch) finds a verified solution.

Run (the local teacher is started if needed): .venv/bin/python bench/bench_passk.py [--per-type 5] [--samples 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from math import comb
from pathlib import Path

from cotlib import client, config, data, generate, local, prompts, verify


def pass_at_k(n: int, c: int, k: int) -> float:
    return 1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k)


async def measure(pairs: list[data.QAPair], samples: int, max_new_tokens: int, concurrency: int) -> list[dict]:
    cfg = generate.GenerationConfig()
    teacher = client.Teacher(config.resolve(config.load_settings()), generate.RunLimits(concurrency=concurrency),
                               max_new_tokens=max_new_tokens)

    async def one(pair: data.QAPair) -> dict:
        messages = prompts.direct_messages(pair.question, pair.meta["lang"])
        usage = client.Usage()
        replies = await asyncio.gather(teacher.complete(messages, cfg.temperature, usage),
                                       *(teacher.complete(messages, cfg.rollout_temperature, usage) for _ in range(samples)))
        ok = [(await asyncio.to_thread(verify.check, r.answer, pair.answer)).correct for r in replies]
        return {"id": pair.id, "type": pair.meta["type"], "tier": pair.meta["tier"], "lang": pair.meta["lang"],
                "greedy": ok[0], "sampled": sum(ok[1:]), "samples": samples, "tokens_out": usage.tokens_out}

    try:
        return await asyncio.gather(*(one(p) for p in pairs))
    finally:
        await teacher.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-type", type=int, default=5, help="questions per type and language")
    parser.add_argument("--samples", type=int, default=6, help="sampled rollouts per question")
    parser.add_argument("--max-new-tokens", type=int, default=320)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--json", default="bench/passk.json", help="where to keep the per-question results")
    args = parser.parse_args()
    local.ensure_teacher()
    train = data.split(data.bundled("demo"), "train")
    pairs = [p for t in data.TASK_TYPES for lang in ("en", "zh")
             for p in [q for q in train if q.meta["type"] == t and q.meta["lang"] == lang][: args.per_type]]
    start = time.perf_counter()
    results = asyncio.run(measure(pairs, args.samples, args.max_new_tokens, args.concurrency))
    seconds = time.perf_counter() - start
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"SmolLM2-135M-Instruct (llama.cpp, local teacher): {len(pairs)} demo training questions, greedy + "
          f"{args.samples} samples at T={generate.GenerationConfig().rollout_temperature}, {seconds:.0f} s\n")
    print("| tier | type | lang | greedy pass@1 | sampled pass@1 | pass@4 |")
    print("|---|---|---|---|---|---|")
    for t in data.TASK_TYPES:
        for lang in ("en", "zh"):
            rows = [r for r in results if r["type"] == t and r["lang"] == lang]
            greedy = sum(r["greedy"] for r in rows) / len(rows)
            sampled = sum(r["sampled"] for r in rows) / sum(r["samples"] for r in rows)
            at4 = sum(pass_at_k(r["samples"], r["sampled"], 4) for r in rows) / len(rows)
            print(f"| {rows[0]['tier']} | {t} | {lang} | {greedy:.2f} | {sampled:.2f} | {at4:.2f} |")
    for tier in ("easy", "standard"):
        rows = [r for r in results if r["tier"] == tier]
        print(f"{tier}: greedy {sum(r['greedy'] for r in rows)}/{len(rows)}, sampled "
              f"{sum(r['sampled'] for r in rows)}/{sum(r['samples'] for r in rows)}")


if __name__ == "__main__":
    main()
