"""The guarantees RELIABILITY.md lists: no wrong data, no stuck or lost run, no crash on bad input.

Each test reproduces a defect found by an independent harness (issue #10) and shows it fixed.
"""

import argparse
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cotlib import client, config, data, errors, export, generate, hub, solve, store, verify
from cotlib.generate import CoTRecord, GenerationConfig, RunLimits
from scripted_llm import AdditionWorld, ScriptedLLM, cli_generate

FAULTS = ("429", "500", "503", "timeout", "truncated", "no_choices", "empty", "null_content")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def endpoint(server):
    return config.Endpoint(server.base_url, server.model, config.Secret("sk-test"))


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -------------------------------------------------------------------------------------------- faults and kills


def test_twenty_percent_faults_over_200_questions_lose_and_duplicate_nothing(tmp_path):
    world = AdditionWorld(200, planted={i: 2 + i % 4 for i in range(0, 200, 5)})
    pairs = data.load_qa(world.qa())
    out = tmp_path / "faults.jsonl"
    with ScriptedLLM(world, timeout_sleep=1.0) as server:
        server.fault_mix = (0.2, FAULTS, random.Random(7))
        limits = RunLimits(concurrency=16, timeout=0.5, max_retries=8, backoff_base=0.01, backoff_cap=0.05)
        summary = generate.generate(pairs, out, endpoint=endpoint(server), limits=limits, progress=False,
                                    cfg=GenerationConfig(max_calls_per_question=30))
    ids = [r["id"] for r in lines(out)]
    assert summary.errors == [] and summary.generated == 200
    assert sorted(ids) == sorted(p.id for p in pairs), "0 lost, 0 duplicated"
    assert summary.usage.retries >= 40  # the faults really happened and were retried
    assert all(verify.check(r["solution"], r["answer"]).correct for r in lines(out) if r["verified"])


def test_ten_kill_9_trials_then_resume_lose_and_duplicate_nothing(tmp_path):
    world = AdditionWorld(30)
    out = tmp_path / "k.jsonl"
    rng = random.Random(3)
    with ScriptedLLM(world, latency=0.05) as server:
        cmd = cli_generate(world, server, tmp_path, out)
        kills = 0
        for _ in range(10):
            proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.6, 1.2))  # start-up, then a few records, then the kill lands mid-run
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait()
        subprocess.run(cmd, check=True, capture_output=True)
    ids = [r["id"] for r in lines(out)]
    assert kills >= 5
    assert len(ids) == len(set(ids)) == 30


# ------------------------------------------------------------------------------------------ malformed replies


@pytest.mark.parametrize("fault", ["no_choices", "null_content", "empty", "truncated"])
def test_a_malformed_reply_is_retried_not_fatal(tmp_path, fault):
    world = AdditionWorld(3)
    with ScriptedLLM(world) as server:
        server.faults = [fault] * 2
        summary = generate.generate(data.load_qa(world.qa()), tmp_path / "m.jsonl", endpoint=endpoint(server),
                                    limits=RunLimits(concurrency=1, backoff_base=0.01, backoff_cap=0.02), progress=False)
    assert summary.generated == 3 and summary.verified == 3 and summary.usage.retries == 2


def test_an_unexpected_error_in_one_question_is_its_failed_record(tmp_path, monkeypatch):
    world = AdditionWorld(4)
    pairs = data.load_qa(world.qa())
    real = solve.solve_one

    async def flaky(pair, *args):
        if pair.id == pairs[1].id:
            raise KeyError("a bug in one question")
        return await real(pair, *args)

    monkeypatch.setattr(generate, "solve_one", flaky)
    with ScriptedLLM(world) as server:
        summary = generate.generate(pairs, tmp_path / "u.jsonl", endpoint=endpoint(server), progress=False)
    records = {r["id"]: r for r in lines(tmp_path / "u.jsonl")}
    assert summary.generated == 4 and summary.verified == 3 and len(summary.errors) == 1
    failed = records[pairs[1].id]
    assert failed["method"] == "failed" and not failed["verified"] and "KeyError" in failed["verdict_reason"]
    assert export.select(list(records.values())).summary()["kept"] == 3


def test_bugs_are_not_retried():
    assert not client.retryable(KeyError("x")) and not client.retryable(TypeError("x"))
    assert client.retryable(errors.MalformedReply("x"))


# ------------------------------------------------------------------------------------------------- the store


def test_a_failed_write_stops_the_run_loudly_and_keeps_what_was_saved(tmp_path, monkeypatch):
    world = AdditionWorld(5)
    out = tmp_path / "full.jsonl"
    real_write, writes = os.write, []

    def disk_full_on_third(fd, payload):
        if payload.startswith(b'{"id"'):
            writes.append(payload)
            if len(writes) == 3:
                real_write(fd, payload[:10])  # a short write, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, payload)

    monkeypatch.setattr(store.os, "write", disk_full_on_third)
    with ScriptedLLM(world) as server, pytest.raises(errors.StoreError, match="No space left"):
        generate.generate(data.load_qa(world.qa()), out, endpoint=endpoint(server),
                          limits=RunLimits(concurrency=1), progress=False)
    monkeypatch.undo()
    saved = lines(out)  # every line parses: no half line is left
    assert len(saved) == len(writes) - 1 >= 2, "every record but the failed one is saved, intact"
    assert writes[2].decode() not in out.read_text()


def test_a_short_write_is_never_success(tmp_path, monkeypatch):
    records = store.RecordStore(tmp_path / "s.jsonl")
    monkeypatch.setattr(store.os, "write", lambda fd, payload: len(payload) - 1)
    with pytest.raises(errors.StoreError, match="short write"):
        records.append(CoTRecord(id="a", question="q", answer="1", method="failed", verified=False, config="c"))


def test_a_damaged_line_anywhere_is_set_aside_and_its_question_redone(tmp_path):
    world = AdditionWorld(4)
    pairs = data.load_qa(world.qa())
    out = tmp_path / "d.jsonl"
    with ScriptedLLM(world) as server:
        generate.generate(pairs, out, endpoint=endpoint(server), progress=False)
        good = out.read_text().splitlines()
        out.write_text("\n".join([good[0], good[1][:25] + "\x00garbled", *good[2:]]) + "\n")
        with pytest.warns(UserWarning, match="1 damaged line"):
            again = generate.generate(pairs, out, endpoint=endpoint(server), progress=False)
    assert again.generated == 1 and again.skipped == 3
    assert sorted(r["id"] for r in lines(out)) == sorted(p.id for p in pairs)
    assert "garbled" in (tmp_path / "d.jsonl.damaged").read_text()


def test_a_second_run_on_the_same_store_fails_fast(tmp_path):
    world = AdditionWorld(6)
    out = tmp_path / "two.jsonl"
    with ScriptedLLM(world, latency=0.3) as server:
        cmd = cli_generate(world, server, tmp_path, out, concurrency=1)
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (tmp_path / "two.jsonl.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        start = time.monotonic()
        second = subprocess.run(cmd, capture_output=True, text=True)
        assert second.returncode == 2 and "in use by another run" in second.stderr
        assert time.monotonic() - start < 30
        assert first.wait(120) == 0
        calls = len(server.requests)
    ids = [r["id"] for r in lines(out)]
    assert len(ids) == len(set(ids)) == 6 and calls == 6, "each record written and paid for once"


# ------------------------------------------------------------------------------------------------------- CLI


def test_cli_timeout_and_retries_and_dotenv_key_with_base_url(tmp_path, monkeypatch, capsys):
    from cotlib import cli

    world = AdditionWorld(1)
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps(world.qa()))
    (tmp_path / ".env").write_text("MY_KEY=sk-from-dotenv-123456\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MY_KEY", raising=False)
    with ScriptedLLM(world, timeout_sleep=1.0) as server:
        server.faults = ["timeout"] * 3
        start = time.monotonic()
        code = cli.main(["generate", "--input", str(qa), "--output", str(tmp_path / "o.jsonl"), "--base-url",
                         server.base_url, "--model", server.model, "--api-key-env", "MY_KEY", "--timeout", "0.3",
                         "--max-retries", "1", "--no-progress"])
        seconds = time.monotonic() - start
        headers_seen = len(server.requests)
    assert code == 1 and seconds < 8 and headers_seen == 2  # one try + one retry, each cut at 0.3 s
    assert "gave up after 2 attempts" in capsys.readouterr().err
    args = argparse.Namespace(base_url=server.base_url, model="m", api_key_env="MY_KEY")
    assert cli._endpoint(args).api_key.reveal() == "sk-from-dotenv-123456"


# ----------------------------------------------------------------------------------------------- bad input


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                                          max_size=4), max_leaves=20))
def test_load_qa_raises_only_its_own_error_on_any_json_value(value):
    try:
        pairs = data.load_qa(value) if isinstance(value, (dict, list)) else data.load_qa([value])
    except data.QADataError as err:
        assert str(err)
    else:
        assert pairs and all(p.question and p.answer for p in pairs)


@FUZZ
@given(st.binary(max_size=300))
def test_load_qa_file_raises_only_its_own_error_on_any_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "qa.json"
    path.write_bytes(raw)
    try:
        data.load_qa(path)
    except data.QADataError as err:
        assert str(path) in str(err)


@pytest.mark.parametrize(("text", "says"), [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"q\\ud800": "1"}', "not valid Unicode"),
    ("{}", "no questions"),
    ("[]", "no questions"),
])
def test_load_qa_named_errors(tmp_path, text, says):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(data.QADataError, match=says):
        data.load_qa(path)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("{}^=0123456789x+-*/ .,") + ["\\boxed{", "^{", "\\frac", "\\lor", "\\sqrt"]),
                max_size=40).map("".join), st.sampled_from(["42", "\\frac{1}{2}", "x+1", "3"]))
def test_verify_never_raises_and_never_takes_more_than_two_seconds(text, gold):
    start = time.perf_counter()
    verdict = verify.check(text, gold)
    assert time.perf_counter() - start < 2.0 and isinstance(verdict.correct, bool) and verdict.reason
    if verdict.correct:
        assert not verify.is_relation(verify.normalize(verdict.extracted)) or verify.is_relation(verify.normalize(gold))


RECORD = st.fixed_dictionaries({
    "id": st.text(max_size=5), "question": st.one_of(st.text(max_size=10), st.none(), st.integers()),
    "answer": st.text(max_size=5), "verified": st.one_of(st.booleans(), st.sampled_from(["false", "0", 0, 1, [0], None])),
    "method": st.one_of(st.sampled_from(["direct", "search", "failed"]), st.integers()),
}, optional={"solution": st.one_of(st.text(max_size=20), st.none(), st.integers()),
             "first_attempt": st.one_of(st.text(max_size=20), st.none(), st.lists(st.text())),
             "first_error_step": st.one_of(st.integers(-2, 5), st.none(), st.text(max_size=2)),
             "calls": st.one_of(st.integers(-1, 9), st.text(max_size=2)), "tokens_in": st.integers(0, 9)})


@FUZZ
@given(st.lists(st.one_of(RECORD, st.integers(), st.text(max_size=5)), max_size=5))
def test_export_and_card_raise_only_export_errors(records):
    for build in (export.select, export.to_prm, lambda rs: hub.build_card("me/x", 1, rs)):
        try:
            build(records)
        except export.ExportError as err:
            assert "record" in str(err)


@pytest.mark.parametrize("flag", ["false", "0", [0], 1, None])
def test_verified_must_be_a_real_boolean(flag):
    record = {"id": "a", "question": "q", "answer": "1", "verified": flag, "method": "direct", "solution": "\\boxed{1}"}
    with pytest.raises(export.ExportError, match="'verified' must be true or false"):
        export.select([record])


def test_verify_cases_cover_the_new_families():
    from test_verify import CASES

    notes = " ".join(c["note"] for c in CASES)
    for family in ("relation", "power tower", "huge number", "unclosed", "injected"):
        assert family in notes, family
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(verify.check(c["prediction"], c["gold"]).correct == c["expected"] for c in CASES)


# -------------------------------------------------------------------------------------------- the loopback Hub


@pytest.fixture
def local_hub(tmp_path):
    from cotlib.localhub import LocalHub

    with LocalHub(tmp_path / "hub", {"tok-alice": "alice"}, max_body=1_000_000) as server:
        yield server


def raw_request(hub_server, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[int, bytes]:
    """One HTTP request written by hand (so that headers can lie about the body), and the status line's code."""
    import socket

    host, port = hub_server.endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        reply = sock.recv(65536)
    return int(reply.split(b" ", 2)[1]), reply


def test_hub_checks_the_token_before_reading_a_body_and_caps_its_size(local_hub):
    start = time.monotonic()
    status, _ = raw_request(local_hub, "POST /api/repos/create HTTP/1.1\nHost: x\nContent-Length: 68719476736\n"
                                       "Authorization: Bearer wrong\n")
    assert status == 401 and time.monotonic() - start < 5  # 64 GiB announced, none of it read
    status, _ = raw_request(local_hub, "POST /api/repos/create HTTP/1.1\nHost: x\nContent-Length: 68719476736\n")
    assert status == 413
    status, _ = raw_request(local_hub, "POST /api/repos/create HTTP/1.1\nHost: x\nContent-Length: 2000000\n"
                                       "Authorization: Bearer tok-alice\n")
    assert status == 413
    status, _ = raw_request(local_hub, "POST /api/repos/create HTTP/1.1\nHost: x\nContent-Length: nonsense\n"
                                       "Authorization: Bearer tok-alice\n")
    assert status == 400


def test_hub_answers_malformed_requests_with_400(local_hub):
    auth = "Authorization: Bearer tok-alice\nContent-Type: application/json\n"
    body = b'{"name": "d", "type": "dataset"}'
    status, _ = raw_request(local_hub, f"POST /api/repos/create HTTP/1.1\nHost: x\n{auth}Content-Length: {len(body)}\n",
                            body)
    assert status == 200

    def commit(*ops: dict) -> int:
        lines = [{"key": "header", "value": {"summary": "s"}}, *ops]
        payload = "\n".join(json.dumps(line) for line in lines).encode()
        return raw_request(local_hub, f"POST /api/datasets/alice/d/commit/main HTTP/1.1\nHost: x\n{auth}"
                                      f"Content-Length: {len(payload)}\n", payload)[0]

    assert commit({"key": "file", "value": {"path": "ok.txt", "content": "aGk=", "encoding": "base64"}}) == 200
    assert commit({"key": "file", "value": {"path": "bad.txt", "content": "not base64!", "encoding": "base64"}}) == 400
    assert commit({"key": "file", "value": {"path": "a\u0000b.txt", "content": "x"}}) == 400
    assert commit({"key": "file", "value": {"path": "a\\b.txt", "content": "x"}}) == 400
    assert commit({"key": "file", "value": {"path": ["not", "a", "path"], "content": 5}}) == 400
    garbage = b"{not json"
    status, _ = raw_request(local_hub, f"POST /api/repos/create HTTP/1.1\nHost: x\n{auth}"
                                       f"Content-Length: {len(garbage)}\n", garbage)
    assert status == 400


def test_push_without_a_card_still_publishes_a_valid_one(tmp_path):
    code = f"""
import os
from cotlib import hub
connection = hub.connect(root={str(tmp_path / 'hub')!r})
import datasets
dataset = datasets.DatasetDict({{"train": datasets.Dataset.from_list([{{"instruction": "1+1?", "input": "", "output": "2"}}])}})
hub.push_dataset(dataset, connection.repo_id, token=connection.token)
card = hub.load_card(connection.repo_id, token=connection.token)
print(card.data.license, card.data.size_categories, card.data.task_categories)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "apache-2.0 ['n<1K'] ['question-answering', 'text-generation']" in out.stdout


PUSH = """
import sys
from cotlib import hub
hub.use_endpoint(sys.argv[1])  # before huggingface_hub and datasets are imported
import datasets
from cotlib.localhub import route_client
route_client(sys.argv[1])
dataset = datasets.DatasetDict({"train": datasets.Dataset.from_list([{"instruction": "1+1?", "input": "", "output": "2"}])})
try:
    hub.push_dataset(dataset, "alice/d", token="tok-alice")
    print("pushed")
except hub.HubError as err:
    print("HubError:", err)
back = hub.load_dataset("alice/d", token="tok-alice")
print("rows", back.num_rows, "license", hub.load_card("alice/d", token="tok-alice").data.license)
"""


@pytest.mark.parametrize(("failures", "says"), [(2, "pushed"), (99, "is published and complete, but its card")])
def test_transient_5xx_during_a_push_leaves_the_repo_complete(local_hub, monkeypatch, failures, says):
    from cotlib.localhub import HubError

    real, commits = local_hub.store.apply, []

    def flaky(rtype, rid, author, header, ops):
        commits.append(header.get("summary"))
        if len(commits) > 1 + (failures == 99) and len(commits) <= 1 + failures:  # (the first is the repo's creation)
            raise HubError(503, "Service temporarily unavailable")
        return real(rtype, rid, author, header, ops)

    monkeypatch.setattr(local_hub.store, "apply", flaky)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    out = subprocess.run([sys.executable, "-c", PUSH, local_hub.endpoint], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert says in out.stdout and "rows 1" in out.stdout
    assert ("license apache-2.0" in out.stdout) == (failures == 2)
