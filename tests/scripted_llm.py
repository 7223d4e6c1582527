"""A scripted OpenAI-compatible chat server on loopback, for tests and benchmarks.

Replies come from a Python function of the request; faults (429, 500, timeouts, garbage, empty replies) can be
queued for the next requests. :class:`AdditionWorld` scripts a teacher that is right or wrong by design.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cotlib.sweep import draw_steps

FAULTS = ("429", "500", "401", "timeout", "garbage", "empty")


class ScriptedLLM:
    def __init__(self, reply: Callable[[dict], str], latency: float = 0.0, model: str = "scripted-teacher",
                 timeout_sleep: float = 3.0) -> None:
        self.reply, self.latency, self.model, self.timeout_sleep = reply, latency, model, timeout_sleep
        self.requests: list[dict] = []
        self.faults: list[str] = []  # injected in order, one per request
        self.fault_mix: tuple[float, tuple[str, ...], random.Random] | None = None  # (rate, kinds, rng): random faults
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK would add ~40 ms

            def log_message(self, *args: object) -> None:
                pass

            def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("/stats"):
                    return self.send(200, json.dumps({"requests": len(outer.requests)}).encode())
                self.send(200, json.dumps({"object": "list", "data": [{"id": outer.model, "object": "model"}]}).encode())

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with outer.lock:
                    outer.requests.append(body)
                    fault = outer.faults.pop(0) if outer.faults else None
                    if fault is None and outer.fault_mix is not None:
                        rate, kinds, rng = outer.fault_mix
                        fault = rng.choice(kinds) if rng.random() < rate else None
                time.sleep(outer.latency)
                if fault == "429":
                    return self.send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0"})
                if fault in ("500", "503"):
                    return self.send(int(fault), b'{"error": {"message": "boom"}}')
                if fault == "truncated":
                    return self.send(200, b'{"id": "cmpl-1", "object": "chat.completion", "choices": [{"ind')
                if fault == "no_choices":
                    return self.send(200, json.dumps({"id": "c", "object": "chat.completion", "created": 0,
                                                      "model": outer.model, "choices": []}).encode())
                if fault == "401":
                    return self.send(401, b'{"error": {"message": "bad key"}}')
                if fault == "timeout":
                    time.sleep(outer.timeout_sleep)
                if fault == "garbage":
                    return self.send(200, b"{this is not json")
                reply = "" if fault == "empty" else None if fault == "null_content" else outer.reply(body)
                # a reply is the content, or a dict of message fields (a reasoning model's "reasoning_content")
                message = {"role": "assistant", **(reply if isinstance(reply, dict) else {"content": reply})}
                reasoning_tokens = message.pop("reasoning_tokens", None)
                written = len(message.get("content") or "") + len(message.get("reasoning_content") or "")
                prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
                usage = {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": written // 4 + 1,
                         "total_tokens": len(prompt) // 4 + written // 4 + 2}
                if reasoning_tokens is not None:
                    usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
                self.send(200, json.dumps({
                    "id": "cmpl-1", "object": "chat.completion", "created": int(time.time()), "model": outer.model,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": message}], "usage": usage,
                }).encode())

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog (5) refuses bursts of concurrent clients

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class AdditionWorld:
    """Questions "Q<i>: What is <a> + <b>?" with a canonical solution of 6 steps and a boxed-answer line.

    - ``planted[i] = e``: the greedy (temperature 0) answer to question i goes wrong from step ``e`` on.
    - ``hopeless``: questions the teacher never gets right.
    - A first attempt (temperature 0, or camel's prompt with no "Existing content") is deterministic; retries
      (temperature > 0, or camel's prompt with context) and rollouts continue a prefix: a prefix of canonical steps continues correctly on every
      ``period``-th call for that (question, prefix) and wrongly otherwise; a prefix holding a wrong step never
      recovers. ``period=4`` with 4 rollouts per estimate makes every good prefix's MC exactly 1/4.
    - camel's verifier prompt is answered {"is_correct": <the golden answer is boxed in the student answer>}, and its
      partial-solution scorer {"score": 0.85} (the example score its own prompt shows).
    """

    STEPS = 6

    def __init__(self, n: int, planted: dict[int, int] | None = None, hopeless: set[int] | None = None,
                 period: int = 4) -> None:
        self.questions = {f"Q{i}: What is {100 + 7 * i} + {23 + 3 * i}?": (100 + 7 * i, 23 + 3 * i) for i in range(n)}
        self.planted, self.hopeless, self.period = planted or {}, hopeless or set(), period
        self.counters: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()

    def qa(self) -> dict[str, str]:
        return {q: str(a + b) for q, (a, b) in self.questions.items()}

    def canonical(self, a: int, b: int) -> list[str]:
        return [f"Step 1: We add {a} and {b}.", f"Step 2: The tens and ones of {a} are {a // 10} and {a % 10}.",
                f"Step 3: The tens and ones of {b} are {b // 10} and {b % 10}.",
                f"Step 4: Tens: {a // 10} + {b // 10} = {a // 10 + b // 10}.",
                f"Step 5: Ones: {a % 10} + {b % 10} = {a % 10 + b % 10}.",
                f"Step 6: Total: {a + b}.", f"The answer is \\boxed{{{a + b}}}."]

    def wrong_from(self, a: int, b: int, e: int) -> list[str]:
        steps = self.canonical(a, b)
        wrong = [f"Step {e}: Carrying wrongly gives {a + b + 10} (off by ten)."]
        wrong += [f"Step {j}: Continuing from the mistake." for j in range(e + 1, self.STEPS)]
        return steps[: e - 1] + wrong + [f"Step {self.STEPS}: Total: {a + b + 10}.", f"The answer is \\boxed{{{a + b + 10}}}."]

    def __call__(self, body: dict) -> str:
        user = body["messages"][-1]["content"]
        if "Student Answer:" in user:  # camel's verifier prompt (structured output)
            student = user.split("Student Answer:", 1)[1].split("Correct Answer:", 1)[0]
            gold = user.split("Correct Answer:", 1)[1].split("\n", 1)[0].strip()
            return json.dumps({"is_correct": f"\\boxed{{{gold}}}" in student})
        if "give a score between 0-1" in user:  # camel's partial-solution scorer: copies its prompt's example
            return json.dumps({"score": 0.85})
        question = next(q for q in self.questions if q in user)
        index = int(question[1:question.index(":")])
        a, b = self.questions[question]
        good = self.canonical(a, b)
        prefix = re.search(r"beginning of a solution:\n(.*?)\n\nContinue", user, re.S)
        steps = prefix.group(1).split("\n") if prefix else []
        camel_context = user.split("Existing content:", 1)[1].split("Requirements:", 1)[0].strip() if "Existing content:" in user else ""
        first_attempt = not prefix and (body.get("temperature", 0) == 0 if "Existing content:" not in user else not camel_context)
        if first_attempt:
            if index in self.planted:
                return "\n".join(self.wrong_from(a, b, self.planted[index]))
            return "\n".join(good) if index not in self.hopeless else "\n".join(self.wrong_from(a, b, 1))
        with self.lock:
            key = (question, len(steps))
            self.counters[key] = self.counters.get(key, 0) + 1
            lucky = self.counters[key] % self.period == 0
        prefix_ok = steps == good[: len(steps)]
        if prefix_ok and lucky and index not in self.hopeless:
            return "\n".join(good[len(steps):])
        return "\n".join(self.wrong_from(a, b, len(steps) + 1)[len(steps):])


class StepWorld:
    """Questions "Q<i>: What is <a> + <b>?" whose solutions have ``steps`` steps, each wrong with probability ``p``.

    A step after a wrong one is wrong too; the boxed answer is right only when every step is. A first attempt
    (temperature 0) is drawn once per question (greedy is deterministic); resamples and rollouts are fresh draws
    that continue the prefix they are given (a prefix holding a wrong step never recovers). The difficulty sweep of
    bench/bench_search.py runs on it.
    """

    def __init__(self, n: int, p: float, steps: int = 6, seed: int = 0) -> None:
        self.questions = {f"Q{i}: What is {100 + 7 * i} + {23 + 3 * i}?": (100 + 7 * i, 23 + 3 * i) for i in range(n)}
        self.p, self.steps, self.seed = p, steps, seed
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def qa(self) -> dict[str, str]:
        return {q: str(a + b) for q, (a, b) in self.questions.items()}

    def draw(self, done: list[str], rng: random.Random, a: int, b: int) -> list[str]:
        return draw_steps(done, rng, self.p, self.steps, a, b)

    def __call__(self, body: dict) -> str:
        user = body["messages"][-1]["content"]
        question = next(q for q in self.questions if q in user)
        a, b = self.questions[question]
        prefix = re.search(r"beginning of a solution:\n(.*?)\n\nContinue", user, re.S)
        done = prefix.group(1).split("\n") if prefix else []
        if not prefix and body.get("temperature", 0) == 0:
            return "\n".join(self.draw([], random.Random(f"{self.seed}:{question}"), a, b))
        with self.lock:
            return "\n".join(self.draw(done, self.rng, a, b))


def cli_generate(world: AdditionWorld, server: ScriptedLLM, folder, output, concurrency: int = 2) -> list[str]:
    """The ``cotlib generate`` command line for ``world``'s questions (written to ``folder/qa.json``) on ``server``."""
    import json
    import sys
    from pathlib import Path

    qa = Path(folder) / "qa.json"
    qa.write_text(json.dumps(world.qa()))
    return [sys.executable, "-m", "cotlib.cli", "generate", "--input", str(qa), "--output", str(output),
            "--base-url", server.base_url, "--model", server.model, "--concurrency", str(concurrency), "--no-progress"]


class ServedWorld:
    """A world served by ``python tests/scripted_llm.py ARGS`` (see :func:`serve_world`) in a process of its own, so
    that a benchmark's client does not pay the server's CPU time; ``requests()`` counts what it answered."""

    def __init__(self, *args: object) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, __file__, *map(str, args)], stdout=subprocess.PIPE, text=True)
        self.base_url = self.proc.stdout.readline().strip()

    def requests(self) -> int:
        import urllib.request

        with urllib.request.urlopen(self.base_url + "/stats") as resp:
            return json.load(resp)["requests"]

    def __enter__(self) -> ServedWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait()


def serve_world() -> None:
    """Serve a scripted world in its own process, printing the base URL; ``GET /v1/stats`` counts requests.
    Benchmarks use it so that the server's CPU time is not the client's.

    - ``python tests/scripted_llm.py N LATENCY [PERIOD]``: an AdditionWorld, every third question planted;
    - ``python tests/scripted_llm.py step N LATENCY P``: a StepWorld.
    """
    import sys

    if sys.argv[1] == "step":
        n, latency, p = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
        world = StepWorld(n, p)
    else:
        n, latency = int(sys.argv[1]), float(sys.argv[2])
        period = int(sys.argv[3]) if len(sys.argv) > 3 else 4
        world = AdditionWorld(n, planted={i: 2 + i % 4 for i in range(0, n, 3)}, period=period)
    with ScriptedLLM(world, latency=latency) as server:
        print(server.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    serve_world()
