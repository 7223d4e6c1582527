"""Chapter 4: records to Alpaca / chat / step-label rows."""

import json

import pytest

from cotlib import export
from cotlib.export import ExportError, select


def rec(i, verified=True, method="direct", question=None, **kw):
    base = {"id": f"id{i}", "question": question or f"Question {i}?", "answer": str(i), "verified": verified,
            "method": method if verified else "failed", "teacher": "t",
            "solution": f"Step 1: think.\nThe answer is \\boxed{{{i}}}." if verified else None,
            "best_attempt": None if verified else "Step 1: oops.\nThe answer is \\boxed{0}.",
            "first_attempt": "Step 1: ok.\nStep 2: wrong.\nThe answer is \\boxed{0}.", "first_error_step": None}
    base.update(kw)
    return base


RECORDS = [rec(0), rec(1, method="search", first_error_step=2), rec(2, verified=False), rec(3, method="rationalized"),
           rec(4, question="question 0?")]


def test_verified_only_by_default_deduplicated_with_reasons():
    sel = select(RECORDS)
    assert [r.id for r in sel.records] == ["id0", "id1", "id3"]
    assert sel.summary() == {"kept": 3, "dropped: not verified": 1, "dropped: duplicate question": 1}
    rows = export.to_alpaca(sel)
    assert rows[0] == {"instruction": "Question 0?", "input": "", "output": RECORDS[0]["solution"]}


def test_switches_keep_unverified_flagged_and_drop_rationalized():
    rows = export.to_alpaca(select(RECORDS, include_unverified=True, include_rationalized=False), metadata=True)
    assert [(r["id"], r["verified"], r["method"]) for r in rows] == [("id0", True, "direct"), ("id1", True, "search"),
                                                                    ("id2", False, "failed")]
    assert rows[2]["output"] == RECORDS[2]["best_attempt"]


def test_chat_and_original_transform():
    chat = export.to_chat(select(RECORDS[:1]))
    assert [m["role"] for m in chat[0]["messages"]] == ["system", "user", "assistant"]
    assert chat[0]["messages"][2]["content"] == RECORDS[0]["solution"]
    assert export.from_qa_pairs({"q": "a"}) == [{"instruction": "q", "input": "", "output": "a"}]


def test_step_labels_in_trl_stepwise_format():
    rows = export.to_prm([RECORDS[1]])
    assert rows[0] == {"prompt": "Question 1?", "completions": ["Step 1: ok.", "Step 2: wrong."], "labels": [True, False]}
    assert rows[1]["labels"] == [True, True]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not a record", r"record 1: expected an object"),
        ({k: v for k, v in rec(9).items() if k != "answer"}, r"record 1 \(id id9\): missing field 'answer'"),
        (rec(9, solution="  "), r"record 1 \(id id9\): verified but field 'solution' is empty"),
        (rec(9, question=" "), r"record 1 \(id id9\): field 'question' must be non-empty text"),
    ],
)
def test_bad_records_are_named_and_nothing_is_written(tmp_path, bad, message):
    out = export.write_json(export.to_alpaca(select(RECORDS)), tmp_path / "alpaca.json")
    before = out.read_text()
    with pytest.raises(ExportError, match=message):
        export.write_json(export.to_alpaca(select([RECORDS[0], bad])), out)
    assert out.read_text() == before


def test_atomic_write_keeps_the_old_file_when_serialization_fails(tmp_path):
    out = export.write_jsonl([{"a": 1}], tmp_path / "x.jsonl")
    with pytest.raises(TypeError):
        export.write_jsonl([{"a": object()}], out)
    assert out.read_text() == '{"a": 1}\n' and not (tmp_path / "x.jsonl.part").exists()


def test_split_is_deterministic_disjoint_and_stable_as_data_grows():
    rows = [{"instruction": f"q{i}", "input": "", "output": "o"} for i in range(200)]
    split = export.train_test_split(rows, 0.2)
    assert len(split["train"]) + len(split["test"]) == 200 and 20 < len(split["test"]) < 60
    assert export.train_test_split(rows, 0.2) == split
    bigger = export.train_test_split(rows + [{"instruction": "new", "input": "", "output": "o"}], 0.2)
    assert all(r in bigger["test"] for r in split["test"])


def test_written_files_and_dataset_round_trip(tmp_path):
    rows = export.to_alpaca(select(RECORDS), metadata=True)
    assert json.loads(export.write_json(rows, tmp_path / "a.json").read_text()) == rows
    assert [json.loads(line) for line in export.write_jsonl(rows, tmp_path / "a.jsonl").read_text().splitlines()] == rows
    ds = export.to_dataset({"train": rows, "test": []})
    assert list(ds) == ["train"] and ds["train"].num_rows == 3 and ds["train"][0]["instruction"] == "Question 0?"


def test_token_lengths_use_the_given_tokenizer():
    def fake_tokenizer(text):
        return {"input_ids": text.split()}

    assert export.token_lengths([{"instruction": "a b", "input": "", "output": "c"}], fake_tokenizer) == [3]


def test_reference_solutions_top_up_a_small_selection_labelled_and_checked():
    from cotlib import data

    pairs = data.split(data.bundled("demo"), "train")
    teacher = rec(0, question=pairs[0].question)
    sel = export.add_references(select([teacher]), pairs[:10])
    assert len(sel.records) == 10 and sel.references == 9, "the teacher's own row is kept, not duplicated"
    assert sel.summary() == {"kept": 10, "of which reference solutions": 9}
    refs = [r for r in sel.records if r.method == "reference"]
    assert all(r.verified and r.teacher == export.REFERENCE_TEACHER and r.text == r.solution for r in refs)
    assert len(export.add_references(select([]), pairs, up_to=5).records) == 5
    wrong = data.QAPair("x", "What is 2 + 2?", "4", {"reference": "Step 1: 2 + 2 = 5.\nThe answer is \\boxed{5}."})
    with pytest.raises(ExportError, match="does not verify"):
        export.add_references(select([]), [wrong])
