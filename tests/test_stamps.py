"""scripts/notebooks.py: the stamp that ties a notebook's stored outputs to the code and inputs that made them."""

import shutil
import sys

import nbformat
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402

CHAPTER = ROOT / "notebooks" / "03_cot_generation.ipynb"


@pytest.fixture
def copy(tmp_path):
    """Chapter 3, stamped, copied beside it (where its inputs resolve); removed afterwards."""
    dest = CHAPTER.parent / f"99_stamp_test_{tmp_path.name}.ipynb"
    dest.write_bytes(CHAPTER.read_bytes())
    yield dest
    dest.unlink()


def edit(path, change):
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def first(nb, kind, containing=""):
    return next(c for c in nb.cells if c.cell_type == kind and containing in c.source)


def test_editing_a_code_cell_is_caught_and_named(copy):
    assert notebooks.state(copy).problem is None
    edit(copy, lambda nb: setattr(first(nb, "code", "import"), "source", first(nb, "code", "import").source + "\nx = 1"))
    found = notebooks.state(copy)
    assert found.problem == "code changed since its stored outputs were made"
    assert found.line() == (f"notebooks/{copy.name}: code changed since its stored outputs were made; "
                            "run `make execute FOLDERS=notebooks`")
    assert notebooks.main(["check"]) == 1


def test_a_changed_magic_line_is_a_code_change(copy):
    edit(copy, lambda nb: nb.cells.insert(1, nbformat.v4.new_code_cell("!pip list")))
    assert notebooks.state(copy).problem == "code changed since its stored outputs were made"


def test_comments_and_markdown_are_not_code(copy):
    def reword(nb):
        first(nb, "code").source += "\n# a comment, translated or reworded"
        first(nb, "markdown").source += "\n\nA reworded paragraph."
    edit(copy, reword)
    assert notebooks.state(copy).problem is None


def test_an_unstamped_notebook_is_named(copy):
    edit(copy, lambda nb: nb.metadata.pop("cotlib"))
    assert "no stamp" in notebooks.state(copy).line()


def test_inputs_are_the_imported_modules_followed_through_their_imports():
    nb = nbformat.read(CHAPTER, as_version=4)
    files = {p.relative_to(ROOT).as_posix() for p in notebooks.module_closure(nb)}
    assert {"cotlib/__init__.py", "cotlib/generate.py", "cotlib/verify.py", "cotlib/search.py"} <= files
    assert "cotlib/datagen.py" in files  # CoTDataGenerator, imported lazily by cotlib/__init__.py
    assert "cotlib/train.py" not in files  # chapter 3 never imports the trainer
    made = notebooks.inputs(nb)
    assert "constraints.txt" in made and any(k.startswith("cotlib/data/") for k in made)


def test_a_changed_input_is_reported_not_failed(copy, monkeypatch):
    real = notebooks.inputs
    monkeypatch.setattr(notebooks, "inputs", lambda nb: {**real(nb), "cotlib/verify.py": "changed"})
    found = notebooks.state(copy)
    assert found.problem is None and found.changed == ("cotlib/verify.py",)
    assert found.line() == f"notebooks/{copy.name}: inputs changed since its outputs were made (cotlib/verify.py)"


def test_the_chinese_build_keeps_each_notebooks_own_stamp():
    """scripts/editions.py writes zh notebooks from the English ones: the English stamp must not travel with it."""
    for en in notebooks.notebooks(["notebooks"]):
        zh = ROOT / "notebooks" / "zh" / en.name
        stamps = [nbformat.read(p, as_version=4).metadata["cotlib"]["executed"]["code"] for p in (en, zh)]
        assert stamps[0] != stamps[1] or "LANGUAGE" not in "".join(
            c.source for c in nbformat.read(en, as_version=4).cells if c.cell_type == "code")


def test_code_text_is_the_same_on_every_python():
    """CI checks the stamps on 3.11, 3.12 and 3.13, whose tokenizers split f-strings differently: the hashed text
    comes from the source itself, with only the comments (found by tokenize) cut."""
    cell = 'x = f"{n:#x} # not a comment"  # a comment\n\n%time y = 1  # magic kept\n    \nprint(x)  '
    assert notebooks.code_text(cell) == 'x = f"{n:#x} # not a comment"\n%time y = 1  # magic kept\nprint(x)'


@pytest.fixture
def folder(tmp_path):
    """A notebook folder inside the repository (stamps name files relative to it), removed afterwards."""
    path = ROOT / "notebooks" / f"stamp_test_{tmp_path.name}"
    path.mkdir()
    yield path
    shutil.rmtree(path)


def tiny(path, *sources):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)


def test_execute_runs_a_folder_in_order_from_empty_outputs_and_stamps_what_ran(folder, capsys):
    (folder / "outputs").mkdir()
    (folder / "outputs" / "left.txt").write_text("from an earlier run")
    tiny(folder / "01_a.ipynb", "import os\nos.makedirs('outputs', exist_ok=True)\nprint(sorted(os.listdir('outputs')))\nopen('outputs/a.txt', 'w').write('a')")
    tiny(folder / "02_b.ipynb", "print(open('outputs/a.txt').read())")  # reads what 01 left
    tiny(folder / "03_c.ipynb", "raise ValueError('broken')")
    tiny(folder / "04_d.ipynb", "print('never run')")
    assert notebooks.execute([notebooks.rel(folder)]) == 1
    said = capsys.readouterr().out
    assert "FAILED" in said and "03_c.ipynb" in said and "04_d" not in said
    runs = {p.name: nbformat.read(p, as_version=4) for p in folder.glob("*.ipynb")}
    assert runs["01_a.ipynb"].cells[0].outputs[0].text == "[]\n"  # outputs/ emptied first
    assert runs["02_b.ipynb"].cells[0].outputs[0].text == "a\n"
    assert [notebooks.state(folder / n).problem for n in ("01_a.ipynb", "02_b.ipynb")] == [None, None]
    assert "no stamp" in notebooks.state(folder / "03_c.ipynb").line()  # a failed run stamps nothing
    assert not runs["04_d.ipynb"].cells[0].outputs


def test_verify_from_a_report_stamps_only_notebooks_whose_every_cell_passed(folder, tmp_path):
    for name in ("01_a.ipynb", "02_b.ipynb"):
        tiny(folder / name, "x = 1", "y = 2")
    module = notebooks.rel(folder).replace("/", ".")
    report = tmp_path / "junit.xml"
    report.write_text(f"""<testsuites><testsuite>
      <testcase classname="{module}.01_a.ipynb" name="Cell 0"/><testcase classname="{module}.01_a.ipynb" name="Cell 1"/>
      <testcase classname="{module}.02_b.ipynb" name="Cell 0"/>
      <testcase classname="{module}.02_b.ipynb" name="Cell 1"><failure message="output differs"/></testcase>
      <testcase classname="tests.test_x" name="test_y"/></testsuite></testsuites>""")
    assert notebooks.verify([notebooks.rel(folder)], report) == 1
    assert notebooks.state(folder / "01_a.ipynb").problem is None
    assert "no stamp" in notebooks.state(folder / "02_b.ipynb").line()
