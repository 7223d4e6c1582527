"""Generation sharded over 2 local Ray workers against a scripted OpenAI-compatible server on loopback."""

import json
import pickle
import sys

import pytest

from cotlib import config, data, generate, shard, store
from cotlib.errors import AuthError, CotlibError, ShardError
from cotlib.generate import RunLimits
from cotlib.store import RecordStore
from scripted_llm import AdditionWorld, ScriptedLLM

ray = pytest.importorskip("ray")

FAST = RunLimits(concurrency=4, timeout=5.0, max_retries=4, backoff_base=0.01, backoff_cap=0.05)
KEY = "sk-shard-test-0123456789"


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the whole file (starting one takes ~8 s on 2 cores)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage report
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, logging_level="WARNING")
        yield
        ray.shutdown()


def endpoint(server):
    return config.Endpoint(server.base_url, server.model, config.Secret(KEY))


def get(record, name):
    return record[name] if isinstance(record, dict) else getattr(record, name)


def as_dict(record):
    """A record as a plain dict, minus its wall time (records were dicts, now ``CoTRecord``)."""
    out = record.to_dict() if hasattr(record, "to_dict") else dict(record)
    out.pop("latency_s")
    return out


def lines(path):
    """The (id, config) keys of a store, one per line as written: duplicates would show here, not in ``load()``."""
    return [(r["id"], r["config"]) for r in map(json.loads, path.read_text().splitlines())]


def write_store(path, ids, config_key="c1", solution=None):
    for i in ids:
        record = {"id": f"q{i}", "config": config_key, "question": f"Q{i}?", "answer": str(i), "method": "failed",
                  "verified": False, "best_attempt": solution}
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def test_shards_are_stable_and_cover_every_question():
    ids = [p.id for p in data.load_qa(AdditionWorld(40).qa())]
    assert [shard.shard_of(i, 3) for i in ids] == [shard.shard_of(i, 3) for i in ids]
    assert shard.shard_of("abc", 7) == 2  # a stable hash: a change would move questions between shard stores
    assert {shard.shard_of(i, 2) for i in ids} == {0, 1}


def test_each_worker_gets_its_share_of_the_limits():
    limits = RunLimits(concurrency=8, timeout=3.0, requests_per_minute=90, max_calls=5, max_tokens=None)
    a, b = shard.split_limits(limits, 2, 8)
    assert (a.concurrency, b.concurrency) == (4, 4) and a.requests_per_minute == b.requests_per_minute == 45
    assert (a.max_calls, b.max_calls) == (3, 2) and a.max_tokens is b.max_tokens is None and a.timeout == 3.0
    assert [s.concurrency for s in shard.split_limits(RunLimits(), 3, 2)] == [1, 1, 1]  # at least one each


def test_the_key_travels_hidden_and_secret_still_refuses_pickling():
    ep = config.Endpoint("http://127.0.0.1:1/v1", "m", config.Secret(KEY))
    spec = pickle.loads(pickle.dumps(shard.EndpointSpec.of(ep)))
    assert KEY not in repr(spec) and spec.endpoint() == ep
    with pytest.raises(TypeError):
        pickle.dumps(ep)


def test_without_ray_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ShardError, match=r'pip install "cotlib\[ray\]"') as raised:
        shard.generate_sharded([], tmp_path / "o.jsonl", endpoint=config.Endpoint("http://x/v1", "m", config.Secret("k")))
    assert isinstance(raised.value, CotlibError)


def test_merge_keeps_each_key_once(tmp_path):
    a, b, dest = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "dest.jsonl"
    write_store(a, [1, 2, 3])
    write_store(b, [2, 3, 4], solution="from b")  # overlaps a
    write_store(b, [1], config_key="c2")  # same question, another config: a different record
    write_store(dest, [1])  # a merge interrupted after its first record
    assert store.merge([a, b, dest], dest) == 4
    assert sorted(lines(dest)) == [("q1", "c1"), ("q1", "c2"), ("q2", "c1"), ("q3", "c1"), ("q4", "c1")]
    kept = RecordStore(dest).load()
    assert get(kept["q2", "c1"], "best_attempt") is get(kept["q3", "c1"], "best_attempt") is None  # first source wins
    assert store.merge([a, b], dest) == 0 and len(lines(dest)) == 5


def test_sharded_run_equals_the_single_process_run_and_reruns_for_free(tmp_path, ray_local):
    def world():
        return AdditionWorld(12, planted={1: 3, 4: 2, 7: 5}, hopeless={10})

    pairs = data.load_qa(world().qa())
    with ScriptedLLM(world()) as server:
        generate.generate(pairs, tmp_path / "single.jsonl", endpoint=endpoint(server), limits=FAST, progress=False)
        single_calls = len(server.requests)
    out = tmp_path / "out.jsonl"
    with ScriptedLLM(world()) as server:
        summary = shard.generate_sharded(pairs, out, endpoint=endpoint(server), limits=FAST, workers=2)
        assert len(server.requests) == single_calls == summary.usage.calls
        again = shard.generate_sharded(pairs, out, endpoint=endpoint(server), limits=FAST, workers=2)
        assert len(server.requests) == single_calls  # nothing asked again
    assert summary.generated == 12 and summary.skipped == 0 and summary.stopped is None and summary.errors == []
    assert summary.by_method == {"direct": 8, "search": 3, "failed": 1}  # searches too, not only direct answers
    assert again.generated == 0 and again.skipped == 12
    assert sorted(i for i, _ in lines(out)) == sorted(p.id for p in pairs)  # each question once
    expected = {get(r, "id"): as_dict(r) for r in generate.load_records(tmp_path / "single.jsonl")}
    got = {d["id"]: d for d in map(as_dict, generate.load_records(out))}
    assert got == expected and summary.verified == sum(d["verified"] for d in got.values())
    for i in (0, 1):  # one store per shard, each holding its own questions
        assert {q for q, _ in lines(shard.shard_dir(out) / f"{i}.jsonl")} == {
            p.id for p in pairs if shard.shard_of(p.id, 2) == i}


def test_an_interrupted_run_resumes_without_loss_or_duplicates(tmp_path, ray_local):
    world = AdditionWorld(16)  # every question direct: one call each
    pairs = data.load_qa(world.qa())
    out = tmp_path / "out.jsonl"
    with ScriptedLLM(world) as server:
        capped = shard.generate_sharded(pairs, out, endpoint=endpoint(server), workers=2,
                                        limits=RunLimits(concurrency=2, max_calls=4, timeout=5.0))
        assert capped.generated == 4 and "shard 0" in capped.stopped and "shard 1" in capped.stopped
        assert len(server.requests) == 4 and len(lines(out)) == 4
        # a run killed after shard 0 wrote more records but before they were merged
        merged = {i for i, _ in lines(out)}
        rest0 = [p for p in pairs if shard.shard_of(p.id, 2) == 0 and p.id not in merged]
        generate.generate(rest0[:3], shard.shard_dir(out) / "0.jsonl", endpoint=endpoint(server), limits=FAST,
                          progress=False)
        assert len(server.requests) == 7
        resumed = shard.generate_sharded(pairs, out, endpoint=endpoint(server), limits=FAST, workers=2)
        assert len(server.requests) == 16  # every question asked exactly once over the three runs
    assert resumed.skipped == 7 and resumed.generated == 9 and resumed.stopped is None
    assert sorted(i for i, _ in lines(out)) == sorted(p.id for p in pairs)


def test_a_refused_key_stops_the_run_without_showing_the_key(tmp_path, ray_local):
    world = AdditionWorld(8)
    with ScriptedLLM(world) as server:
        server.faults = ["401"] * 100
        with pytest.raises(AuthError) as raised:
            shard.generate_sharded(data.load_qa(world.qa()), tmp_path / "k.jsonl", endpoint=endpoint(server),
                                   limits=FAST, workers=2)
    assert "HTTP 401" in str(raised.value) and KEY not in str(raised.value)
    assert generate.load_records(tmp_path / "k.jsonl") == []
