"""The typed generation record, its schema versions, and the one adapter onto camel's private attributes."""

import json

import pytest

from cotlib import config, datagen, store
from cotlib.errors import RecordError
from cotlib.records import SCHEMA_VERSION, CoTRecord, as_records

V1 = {  # a record as cotlib wrote it before the schema field (issue 11's stores and checkpoints)
    "id": "a1", "config": "c0ffee", "question": "What is 2 + 2?", "answer": "4", "teacher": "SmolLM2-135M-Instruct",
    "language": "en", "meta": {"type": "small_sum"}, "solution": "2 + 2 = 4.\n\\boxed{4}", "verified": True,
    "method": "search", "extracted": "4", "verdict_reason": "equal", "first_attempt": "\\boxed{5}",
    "best_attempt": None, "first_error_step": 1, "rollouts": 3, "step_labels": [], "trace": [], "calls": 4,
    "retries": 0, "tokens_in": 100, "tokens_out": 40, "latency_s": 1.5,
}


def test_round_trip_and_schema_version():
    record = CoTRecord.from_json(V1)
    assert record.schema == SCHEMA_VERSION and record.escalated is False and record.found_at_prefix is None
    again = CoTRecord.from_json(record.to_json())
    assert again == record and json.loads(record.to_json())["schema"] == SCHEMA_VERSION
    assert record.key == ("a1", "c0ffee") and record.text == V1["solution"]


def test_an_older_store_is_read_and_extended(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(V1) + "\n")
    records = store.RecordStore(path)
    loaded = records.load()
    assert list(loaded) == [("a1", "c0ffee")] and loaded["a1", "c0ffee"].verified
    new = CoTRecord(id="b2", question="q", answer="1", method="direct", verified=True, solution="\\boxed{1}", config="c0ffee")
    records.append(new)
    assert [r.id for r in store.load_records(path)] == ["a1", "b2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": SCHEMA_VERSION + 1}, "newer than this cotlib reads"),
        ({"verified": "yes"}, "'verified' must be true or false"),
        ({"method": "guess"}, "'method' must be one of"),
        ({"calls": -1}, "'calls' must be a count"),
        ({"first_error_step": 0}, "'first_error_step' must be a step number"),
        ({"solution": None}, "verified but field 'solution' is empty"),
    ],
)
def test_malformed_records_name_the_field(change, message):
    with pytest.raises(RecordError, match=message):
        CoTRecord.from_json({**V1, **change})
    with pytest.raises(RecordError, match=r"record 0 \(id a1\): .*" + message.split("'")[0]):
        as_records([{**V1, **change}])


def test_a_missing_field_is_named():
    with pytest.raises(RecordError, match="record 'a1': missing field 'answer'"):
        CoTRecord.from_json({k: v for k, v in V1.items() if k != "answer"})


def test_the_camel_adapter_reads_a_real_chat_agent():
    """Fails when camel renames the private attributes :func:`cotlib.datagen.endpoint_of` reads."""
    endpoint = config.Endpoint("http://127.0.0.1:9/v1", "some-model", config.Secret("sk-secret"))
    agent = config.chat_agent(endpoint, "You solve problems.")
    seen = datagen.endpoint_of(agent)
    assert (seen.base_url, seen.model, seen.api_key.reveal()) == ("http://127.0.0.1:9/v1", "some-model", "sk-secret")


def test_the_trace_view_separates_the_first_attempts_search_from_later_probes():
    from cotlib import view

    trace = [{"event": "resample", "n": 1}, {"event": "escalate"},
             {"event": "bisect", "mid": 1, "mc": 0.5, "good": 1, "bad": 2},
             {"event": "first_error", "step": 2, "text": "Step 2: wrong."},
             {"event": "select", "prefix_steps": 1, "rollout_steps": 2},
             {"event": "bisect", "mid": 2, "mc": 0.0, "good": 1, "bad": 2}]
    record = CoTRecord.from_json({**V1, "first_attempt": "Step 1: fine.\nStep 2: wrong.\n\\boxed{5}", "first_error_step": 2,
                                  "trace": trace, "escalated": True})
    html = view.trace_html(record)
    assert html.count("<tr><td>") == 1 and "1 fresh sample(s) first, then the binary search" in html
    assert "Then 1 more probe(s) on wrong rollouts" in html
    assert html.count("background:#fee2e2") == 1 and html.count("background:#dcfce7") == 1
