"""The generation engine against a scripted OpenAI-compatible server on loopback."""

import asyncio
import json
import os
import signal
import subprocess
import time

import pytest

from cotlib import client, config, data, errors, generate, prompts, verify, view
from cotlib.generate import GenerationConfig, RunLimits, SearchParams
from scripted_llm import AdditionWorld, ScriptedLLM, cli_generate

FAST = RunLimits(concurrency=4, timeout=2.0, max_retries=4, backoff_base=0.01, backoff_cap=0.05)


def endpoint(server):
    return config.Endpoint(server.base_url, server.model, config.Secret("sk-test"))


def run(world_or_server, pairs, out, cfg=GenerationConfig(), limits=FAST):
    return generate.generate(pairs, out, endpoint=endpoint(world_or_server), cfg=cfg, limits=limits, progress=False)


def test_default_search_resamples_first(tmp_path):
    world = AdditionWorld(4, planted={1: 4, 2: 2}, period=2)  # a fresh sample verifies every second time
    with ScriptedLLM(world) as server:
        summary = run(server, data.load_qa(world.qa()), tmp_path / "out.jsonl")
    records = generate.load_records(tmp_path / "out.jsonl")
    searched = [r for r in records if r.method == "search"]
    assert summary.verified == 4 and len(searched) == 2
    for rec in searched:
        assert rec.found_at_prefix == 0 and not rec.escalated and rec.first_error_step is None
        assert 2 <= rec.calls <= 3 and {e["event"] for e in rec.trace} == {"resample"}


def test_direct_search_and_failure_records(tmp_path):
    world = AdditionWorld(6, planted={1: 4, 2: 2}, hopeless={3})
    pairs = data.load_qa(world.qa())
    cfg = GenerationConfig(max_calls_per_question=30, search=SearchParams(rollouts_per_estimate=4, collect_step_labels=True))
    with ScriptedLLM(world) as server:
        summary = run(server, pairs, tmp_path / "out.jsonl", cfg)
    records = {r.question: r for r in generate.load_records(tmp_path / "out.jsonl")}
    assert summary.generated == 6 and summary.verified == 5 and summary.by_method == {"direct": 3, "search": 2, "failed": 1}
    for i, pair in enumerate(pairs):
        rec = records[pair.question]
        assert set(rec.to_dict()) >= {"question", "answer", "solution", "verified", "method", "calls", "tokens_in", "tokens_out",
                            "first_error_step", "rollouts", "latency_s", "teacher", "step_labels"}
        assert rec.teacher == "scripted-teacher" and rec.answer == pair.answer
        if rec.verified:
            assert verify.check(rec.solution, pair.answer).correct  # never unverified
        if i in (1, 2):
            assert rec.method == "search" and rec.first_error_step == world.planted[i]
            assert rec.rollouts > 0 and rec.calls > 1
            labels = {len(label["steps"]): label["label"] for label in rec.step_labels}
            assert labels[world.planted[i]] == "-"
            html = view.trace_html(rec)
            assert html.count("background:#fee2e2") == 1 and f"first wrong step: step {world.planted[i]}" in html
        if i == 3:
            assert rec.method == "failed" and rec.solution is None and rec.verified is False
            assert rec.best_attempt and rec.calls <= cfg.max_calls_per_question
        if i in (0, 4, 5):
            assert rec.method == "direct" and rec.calls == 1


def test_rationalization_is_a_flagged_last_resort(tmp_path):
    world = AdditionWorld(1, hopeless={0})

    def reply(body):
        if "The correct final answer is" in body["messages"][-1]["content"]:
            return "Step 1: 100 + 23 = 123.\nThe answer is \\boxed{123}."
        return world(body)

    with ScriptedLLM(reply) as server:
        run(server, data.load_qa(world.qa()), tmp_path / "r.jsonl", GenerationConfig(max_calls_per_question=6, rationalize=True))
    (rec,) = generate.load_records(tmp_path / "r.jsonl")
    assert rec.method == "rationalized" and rec.verified and rec.calls == 6


def test_faults_are_retried(tmp_path):
    world = AdditionWorld(3)
    with ScriptedLLM(world, timeout_sleep=3.0) as server:
        server.faults = ["429", "500", "garbage", "empty", "timeout"]
        summary = run(server, data.load_qa(world.qa()), tmp_path / "f.jsonl")
    assert summary.verified == 3 and summary.errors == []
    assert summary.usage.retries == 5 and summary.usage.calls == 3


def test_a_refused_key_stops_the_whole_run_at_once_with_one_message(tmp_path):
    world = AdditionWorld(200)
    with ScriptedLLM(world) as server:
        server.faults = ["401"] * 1000
        with pytest.raises(errors.AuthError) as raised:
            run(server, data.load_qa(world.qa()), tmp_path / "k.jsonl", limits=RunLimits(concurrency=4, max_retries=3))
        assert len(server.requests) <= 4  # the requests already in flight, no retries, no new questions
    assert "HTTP 401" in str(raised.value) and "COTLIB_API_KEY" in str(raised.value) and "sk-test" not in str(raised.value)
    assert generate.load_records(tmp_path / "k.jsonl") == []


def test_rerun_of_a_finished_run_costs_zero_calls(tmp_path):
    world = AdditionWorld(5, planted={2: 3})
    pairs = data.load_qa(world.qa())
    with ScriptedLLM(world) as server:
        first = run(server, pairs, tmp_path / "o.jsonl")
        n = len(server.requests)
        again = run(server, pairs, tmp_path / "o.jsonl")
        assert len(server.requests) == n
    assert first.generated == 5 and again.generated == 0 and again.skipped == 5
    other = GenerationConfig(language="zh")
    assert other.key("scripted-teacher") != GenerationConfig().key("scripted-teacher")


def test_run_budget_stops_cleanly_and_resumes(tmp_path):
    world = AdditionWorld(8)
    pairs = data.load_qa(world.qa())
    out = tmp_path / "b.jsonl"
    with ScriptedLLM(world) as server:
        summary = run(server, pairs, out, limits=RunLimits(concurrency=1, max_calls=3, backoff_base=0.01))
        assert summary.stopped and "3 calls" in summary.stopped and summary.generated == 3
        assert len(generate.load_records(out)) == 3
        rest = run(server, pairs, out)
    assert rest.skipped == 3 and rest.generated == 5
    assert sorted(r.id for r in generate.load_records(out)) == sorted(p.id for p in pairs)


def test_token_budget_per_question(tmp_path):
    world = AdditionWorld(1, hopeless={0})
    with ScriptedLLM(world) as server:
        run(server, data.load_qa(world.qa()), tmp_path / "t.jsonl", GenerationConfig(max_tokens_per_question=400))
    (rec,) = generate.load_records(tmp_path / "t.jsonl")
    # the cap is checked before each call, so at most the k rollouts already in flight overshoot it
    assert rec.method == "failed" and 1 < rec.calls <= 1 + GenerationConfig().search.rollouts_per_estimate
    assert rec.tokens_in + rec.tokens_out >= 400


def test_concurrency_overlaps_requests(tmp_path):
    world = AdditionWorld(16)
    pairs = data.load_qa(world.qa())
    with ScriptedLLM(world, latency=0.2) as server:
        start = time.perf_counter()
        run(server, pairs, tmp_path / "c.jsonl", limits=RunLimits(concurrency=8))
        elapsed = time.perf_counter() - start
    assert elapsed < 16 * 0.2 / 2  # sequential would take 3.2 s


def test_requests_per_minute_limit_spaces_requests(tmp_path):
    world = AdditionWorld(4)
    with ScriptedLLM(world) as server:
        start = time.perf_counter()
        run(server, data.load_qa(world.qa()), tmp_path / "rpm.jsonl", limits=RunLimits(concurrency=4, requests_per_minute=600))
        assert time.perf_counter() - start >= 0.3  # 4 requests, 0.1 s apart


def test_works_inside_a_running_event_loop(tmp_path):
    world = AdditionWorld(2)

    async def notebook_cell():
        with ScriptedLLM(world) as server:
            return run(server, data.load_qa(world.qa()), tmp_path / "j.jsonl")

    assert asyncio.run(notebook_cell()).verified == 2


def test_truncated_last_line_is_set_aside_on_resume(tmp_path):
    world = AdditionWorld(3)
    pairs = data.load_qa(world.qa())
    out = tmp_path / "t.jsonl"
    with ScriptedLLM(world) as server:
        run(server, pairs[:2], out)
        with open(out, "ab") as f:
            f.write(b'{"id": "half a rec')
        with pytest.warns(UserWarning, match="1 damaged line"):
            summary = run(server, pairs, out)
    assert summary.skipped == 2 and summary.generated == 1
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["verified"] for line in lines)


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    world = AdditionWorld(12)
    out = tmp_path / "k.jsonl"
    with ScriptedLLM(world, latency=0.15) as server:
        cmd = cli_generate(world, server, tmp_path, out)
        proc = subprocess.Popen(cmd, start_new_session=True)
        deadline = time.monotonic() + 30
        while (not out.exists() or len(out.read_text().splitlines()) < 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = len(generate.load_records(out))
        assert 3 <= done_before < 12
        n_requests = len(server.requests)
        subprocess.run(cmd, check=True, capture_output=True)
        resumed = len(server.requests) - n_requests
    records = generate.load_records(out)
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12 and len(records) == 12
    assert resumed == 12 - done_before  # one direct call per remaining question, none redone


def test_estimate_brackets_the_run():
    est = generate.estimate(100, GenerationConfig(max_calls_per_question=24), pass_rate=0.6, model="gpt-4o-mini")
    assert est["min"]["calls"] == 100 <= est["expected"]["calls"] <= est["max"]["calls"] == 2400
    assert est["max"]["cost_usd"] > est["min"]["cost_usd"] > 0
    assert generate.estimate(10, model="unknown-model")["min"]["cost_usd"] is None


def test_default_concurrency_suits_the_backend():
    local = config.Endpoint("http://127.0.0.1:8080/v1", "m", config.Secret("x"))
    hosted = config.Endpoint("https://api.deepseek.com/v1", "m", config.Secret("x"))
    assert client.Teacher(local).concurrency == 2 and client.Teacher(hosted).concurrency == 8
    assert client.Teacher(hosted, RunLimits(concurrency=3)).concurrency == 3


def test_language_and_config_validation():
    with pytest.raises(ValueError, match="language"):
        GenerationConfig(language="fr")
    assert "答案" in prompts.direct_messages("q", "zh")[0]["content"]


def test_facade_reads_like_the_original_tutorial(tmp_path):
    from camel.agents import ChatAgent

    from cotlib import CoTDataGenerator

    world = AdditionWorld(3, planted={1: 3})
    with ScriptedLLM(world) as server:
        agent = ChatAgent(system_message="You are a genius at slow-thinking data and code",
                          model=config.create_model(endpoint(server), temperature=0.0))
        gen = CoTDataGenerator(agent, golden_answers=world.qa(), search_limit=30,
                               limits=RunLimits(backoff_base=0.01))
        questions = list(world.qa())
        answer = gen.get_answer(questions[0])
        assert gen.verify_answer(questions[0], answer)
        assert not gen.verify_answer(questions[1], gen.get_answer(questions[1]))
        solution = gen.solve(questions[1])
        assert solution is not None and gen.verify_answer(questions[1], solution)
        assert gen.solutions[questions[1]].method == "search"
        with pytest.raises(ValueError, match="no golden answer"):
            gen.solve("an unknown question")
    gen.export_solutions(tmp_path / "solutions.json")
    exported = json.loads((tmp_path / "solutions.json").read_text())
    assert exported["solutions"][0]["verified"] and exported["golden_answers"] == world.qa()


def test_worked_examples_go_in_as_earlier_turns_and_come_back_after_each_reset():
    from cotlib import CoTDataGenerator

    messages = prompts.direct_messages("What is 2 + 3?", "en")
    turns = [(m["role"], m["content"]) for m in messages[1:-1]]
    assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "What is 2 + 3?"}
    assert turns == [(role, text) for q, a in prompts.EXAMPLES["en"] for role, text in (("user", q), ("assistant", a))]
    assert prompts.continue_messages("q", ("Step 1: x",), "zh")[1:-1] == prompts.direct_messages("q", "zh")[1:-1]
    world = AdditionWorld(2)
    with ScriptedLLM(world) as server:
        agent = config.chat_agent(endpoint(server), prompts.SYSTEM_PROMPTS["en"], temperature=0.0)
        gen = CoTDataGenerator(agent, golden_answers=world.qa(), examples=prompts.EXAMPLES["en"])
        first, second = list(world.qa())
        gen.get_answer(first)
        gen.get_answer(second)
        sent = [m["content"] for m in server.requests[-1]["messages"]]
    assert sent[1:-1] == [text for q, a in prompts.EXAMPLES["en"] for text in (q, a)], "the examples, once each"
    assert sent[-1] == second and first not in sent, "the previous question was forgotten"


def test_cli_refuses_an_output_file_that_is_not_a_records_file(tmp_path, capsys):
    from cotlib import cli

    world = AdditionWorld(1)
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps(world.qa()))
    out = tmp_path / "notes.jsonl"
    out.write_text("my notes, not records\n")
    with ScriptedLLM(world) as server:
        code = cli.main(["generate", "--input", str(qa), "--output", str(out), "--base-url", server.base_url,
                         "--model", server.model, "--no-progress"])
        assert server.requests == []
    assert code == 2 and f"{out}:1: not a generation record" in capsys.readouterr().err
    assert out.read_text() == "my notes, not records\n"
