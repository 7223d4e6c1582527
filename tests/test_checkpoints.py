"""Each chapter starts on its own: the bundled checkpoint stands in for what earlier chapters did not leave."""

import json

import nbformat
import pytest

from conftest import ROOT
from cotlib import checkpoints, data, export, generate

CHAPTERS = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if int(p.name[:2]) in checkpoints.NEEDS]


def test_bundled_checkpoint_loads_and_is_the_pipelines_own():
    made = checkpoints.manifest()
    assert made["files"] == checkpoints.FILES and made["teacher"] and made["date"]
    train = data.load_qa(checkpoints.DIR / "qa_train.jsonl")
    heldout = data.load_qa(checkpoints.DIR / "qa_heldout.jsonl")
    demo = data.bundled("demo")
    assert train == data.split(demo, "train") and heldout == data.split(demo, "heldout")
    records = generate.load_records(checkpoints.DIR / "cot_records.jsonl")
    assert records and {r.teacher for r in records} == set(made["teacher"].split(", "))
    splits = export.read_splits(checkpoints.DIR)
    rows = splits["train"] + splits["test"]
    assert {r["instruction"] for r in rows if r["method"] != "reference"} == {
        r.question for r in export.select(records).records}
    assert len(rows) >= 200 and splits["test"], "offline, reference solutions make a dataset worth training on"
    assert all(r["teacher"] == export.REFERENCE_TEACHER for r in rows if r["method"] == "reference")


def test_ensure_copies_only_what_is_missing_and_says_so(tmp_path, capsys):
    (tmp_path / "cot_records.jsonl").write_text("")  # chapter 3 ran here: its file is kept as it is
    checkpoints.ensure(5, tmp_path)
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "alpaca_train.jsonl, alpaca_test.jsonl, curation.json not in" in said and "chapter 4 not run" in said
    assert (tmp_path / "cot_records.jsonl").read_text() == ""
    assert (tmp_path / "alpaca_train.jsonl").read_bytes() == (checkpoints.DIR / "alpaca_train.jsonl").read_bytes()
    checkpoints.ensure(5, tmp_path)
    assert capsys.readouterr().out == "", "nothing to say when every file is there"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_a_chapter_asks_for_its_inputs_before_it_reads_them(path):
    """Run alone (a fresh Colab runtime, a workshop that starts at chapter 4), a chapter copies the bundled checkpoint
    for what no earlier chapter left, before any cell reads outputs/; the solutions notebooks run that path each time
    (their folder has no chapter outputs), and their stored outputs show the checkpoint's line."""
    chapter = int(path.name[:2])
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    asks = [i for i, src in enumerate(cells) if f"checkpoints.ensure({chapter}" in src
            or (chapter == 6 and "hub.ensure_published(" in src)]  # chapter 6: ensure(6) inside, then it publishes
    reads = [i for i, src in enumerate(cells) for name in checkpoints.NEEDS[chapter] if name in src]
    assert asks and reads and asks[0] <= min(reads), f"chapter {chapter} reads {checkpoints.NEEDS[chapter]} before ensure"


def test_solutions_start_from_the_bundled_checkpoint():
    for chapter in (3, 4, 5):
        path = next((ROOT / "notebooks" / "solutions").glob(f"{chapter:02d}_*.ipynb"))
        nb = nbformat.read(path, as_version=4)
        said = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert "using the bundled checkpoint" in said, f"solutions {chapter} did not run the chapter-alone path"


def test_save_keeps_a_pipeline_run_as_the_checkpoint(tmp_path):
    outputs = tmp_path / "outputs"
    for chapter in checkpoints.NEEDS:
        checkpoints.ensure(chapter, outputs)
    saved = checkpoints.save(outputs, tmp_path / "kept")
    made = json.loads((saved / "manifest.json").read_text())
    assert made["files"] == checkpoints.FILES and made["teacher"] == checkpoints.manifest()["teacher"]
    for name in checkpoints.FILES:
        assert (saved / name).read_bytes() == (checkpoints.DIR / name).read_bytes()
