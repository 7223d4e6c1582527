"""scripts/notebooks.py: the stamp that ties a notebook's stored outputs to the code and inputs that made them."""

import sys

import nbformat

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402

CHAPTER = ROOT / "notebooks" / "03_cot_generation.ipynb"


def copy(tmp_path, path=CHAPTER):
    """A stamped notebook copied into the repository's tree (where its inputs resolve), removed by the caller."""
    dest = path.parent / f"99_stamp_test_{tmp_path.name}.ipynb"
    dest.write_bytes(path.read_bytes())
    return dest


def test_editing_a_code_cell_is_caught_and_named(tmp_path):
    dest = copy(tmp_path)
    try:
        assert notebooks.state(dest).problem is None
        nb = nbformat.read(dest, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code" and "import" in c.source)
        cell.source += "\nprint('edited')"
        nbformat.write(nb, dest)
        found = notebooks.state(dest)
        assert found.problem == "code changed since its stored outputs were made"
        assert found.line().startswith(f"notebooks/{dest.name}: code changed") and "make execute FOLDERS=notebooks" in found.line()
        assert notebooks.main(["check"]) == 1
    finally:
        dest.unlink()


def test_comments_and_markdown_are_not_code(tmp_path):
    dest = copy(tmp_path)
    try:
        nb = nbformat.read(dest, as_version=4)
        next(c for c in nb.cells if c.cell_type == "code").source += "\n# a comment, translated or reworded"
        next(c for c in nb.cells if c.cell_type == "markdown").source += "\n\nA reworded paragraph."
        nbformat.write(nb, dest)
        assert notebooks.state(dest).problem is None
    finally:
        dest.unlink()


def test_an_unstamped_notebook_is_named(tmp_path):
    dest = copy(tmp_path)
    try:
        nb = nbformat.read(dest, as_version=4)
        del nb.metadata["cotlib"]
        nbformat.write(nb, dest)
        assert "no stamp" in notebooks.state(dest).line()
    finally:
        dest.unlink()


def test_inputs_are_the_imported_modules_followed_through_their_imports():
    nb = nbformat.read(CHAPTER, as_version=4)
    files = {p.relative_to(ROOT).as_posix() for p in notebooks.module_closure(nb)}
    assert {"cotlib/__init__.py", "cotlib/generate.py", "cotlib/verify.py", "cotlib/search.py"} <= files
    assert "cotlib/datagen.py" in files  # CoTDataGenerator, imported lazily by cotlib/__init__.py
    assert "cotlib/train.py" not in files  # chapter 3 never imports the trainer
    made = notebooks.inputs(nb)
    assert "constraints.txt" in made and any(k.startswith("cotlib/data/") for k in made)


def test_a_changed_input_is_reported_not_failed(tmp_path, monkeypatch):
    dest = copy(tmp_path)
    try:
        real = notebooks.inputs
        monkeypatch.setattr(notebooks, "inputs", lambda nb: {**real(nb), "cotlib/verify.py": "changed"})
        found = notebooks.state(dest)
        assert found.problem is None and found.changed == ("cotlib/verify.py",)
        assert found.line() == f"notebooks/{dest.name}: inputs changed since its outputs were made (cotlib/verify.py)"
    finally:
        dest.unlink()
