"""Each chapter starts on its own: executed alone in an empty folder, offline, with no local teacher running."""

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT
from cotlib import checkpoints, data, export, generate, local

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# the Chinese edition has the same code: the quick chapters that start from a checkpoint show that it works there too
CHAPTERS += [ROOT / "notebooks" / "zh" / name for name in ("04_alpaca_export.ipynb", "05_hf_upload.ipynb")]


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


@pytest.fixture
def no_teacher(tmp_path, monkeypatch):
    """A private cache with no teacher recorded (the student checkpoint linked in, to save its 25 s conversion)."""
    cache = tmp_path / "cache"
    (cache / "student").mkdir(parents=True)
    os.symlink(local.student_checkpoint(), cache / "student" / local.MODEL_ID)
    monkeypatch.setenv("COTLIB_CACHE", str(cache))
    for name in ("COTLIB_BASE_URL", "COTLIB_MODEL", "COTLIB_API_KEY", "COTLIB_LOCAL_TEACHER"):
        monkeypatch.delenv(name, raising=False)
    assert local.running_teacher() is None
    yield cache
    local.stop_teacher()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_chapter_runs_alone_in_an_empty_folder(path, tmp_path, no_teacher):
    folder = tmp_path / "learner"
    folder.mkdir()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    said = "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    if int(path.name[:2]) in checkpoints.NEEDS:
        assert "using the bundled checkpoint" in said
    if path.stem == "03_cot_generation":  # the method working for real, on the 135M offline teacher
        records = generate.load_records(folder / "outputs" / "cot_records.jsonl")
        assert {"direct", "search", "failed"} <= {r.method for r in records}
        assert any(r.escalated for r in records) and all(r.found_at_prefix is not None for r in records
                                                          if r.method == "search")
        labelled = generate.load_records(folder / "outputs" / "step_label_records.jsonl")
        assert any(r.first_error_step for r in labelled) and export.to_prm(labelled)
    if path.stem == "06_unsloth_sft":
        assert "published chapter 4's export" in said
        report = json.loads((folder / "outputs" / "sft_report.json").read_text())
        assert report["train_rows"] >= 200 and report["after"]["questions"] >= 30
        assert report["after"]["one_boxed_share"] >= 0.8 and report["after"]["accuracy"] > report["before"]["accuracy"]


def test_save_keeps_a_pipeline_run_as_the_checkpoint(tmp_path):
    outputs = tmp_path / "outputs"
    for chapter in checkpoints.NEEDS:
        checkpoints.ensure(chapter, outputs)
    saved = checkpoints.save(outputs, tmp_path / "kept")
    made = json.loads((saved / "manifest.json").read_text())
    assert made["files"] == checkpoints.FILES and made["teacher"] == checkpoints.manifest()["teacher"]
    for name in checkpoints.FILES:
        assert (saved / name).read_bytes() == (checkpoints.DIR / name).read_bytes()
