"""Structure of the chapter and solutions notebooks, both editions, and the stamp that ties each one's stored outputs
to the code that made them (their execution is checked by nbval, strict mode: the light ones in the fast tier, all of
them in ``make test-all``; tests/tiers.py)."""

import ast
import os
import re
import sys

import nbformat
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402  (scripts/notebooks.py: the stamps)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))  # the chapters, English
CHAPTERS = NOTEBOOKS + sorted((ROOT / "notebooks/zh").glob("[0-9][0-9]_*.ipynb"))  # and Chinese
SOLUTIONS = sorted((ROOT / "notebooks/solutions").glob("*.ipynb")) + sorted((ROOT / "notebooks/zh/solutions").glob("*.ipynb"))
EVERY = CHAPTERS + SOLUTIONS


def name(path) -> str:
    return path.relative_to(ROOT / "notebooks").as_posix()
SECRET_PATTERNS = [re.compile(p) for p in (r"sk-[A-Za-z0-9_\-]{16,}", r"hf_[A-Za-z0-9]{20,}", r"Bearer\s+[A-Za-z0-9_\-]{12,}")]


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.extend(str(v) for v in out.get("data", {}).values())
        parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def test_there_are_chapter_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "01_setup.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_with_badge_and_learning_goals(path):
    nb = nbformat.read(path, as_version=4)
    intro = nb.cells[0]
    assert intro.cell_type == "markdown" and intro.source.startswith("# Chapter ")
    badge = f"https://colab.research.google.com/github/cotlib/cotlib/blob/main/notebooks/{path.name}"
    assert badge in intro.source, "the Colab badge must point at this notebook's own path"
    assert "What you'll learn" in intro.source
    assert "**Time:**" in intro.source and "2-core laptop CPU" in intro.source
    if path.name in ("01_setup.ipynb", "06_unsloth_sft.ipynb"):
        assert "Change runtime type" in intro.source, "say how to switch Colab to a GPU runtime"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_pictures_render_anywhere(path):
    """GitHub, JupyterLab at any root and Colab: absolute URLs (or cell attachments), never a relative path."""
    markdown = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", markdown) + re.findall(r'<img[^>]+src="([^"]+)"', markdown):
        assert target.startswith(("https://", "attachment:")), f"{target} does not render in Colab"
        if target.startswith("https://raw.githubusercontent.com/cotlib/cotlib/main/"):
            assert (ROOT / target.split("/main/", 1)[1]).is_file(), f"{target} is not in the repository"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_same_colab_only_install_cell(path):
    first = code_cells(nbformat.read(path, as_version=4))[0]
    reference = code_cells(nbformat.read(CHAPTERS[len(NOTEBOOKS)] if "zh" in path.parts else NOTEBOOKS[0], as_version=4))[0]
    assert first.source == reference.source
    assert 'if "google.colab" in sys.modules:' in first.source
    assert first.outputs == [], "the install cell prints nothing outside Colab"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_committed_executed_clean_and_secret_free(path):
    nb = nbformat.read(path, as_version=4)
    cells = code_cells(nb)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), "re-run with `make execute`"
    secret = os.environ.get("COTLIB_API_KEY") or os.environ.get("HF_TOKEN")
    for cell in cells:
        for out in cell.outputs:
            assert out.output_type != "error", f"stored error in cell {cell.execution_count}"
            assert not (out.output_type == "stream" and out.name == "stderr"), (
                f"stderr stored in cell {cell.execution_count}: {out.text[:200]}")
        text = output_text(cell) + cell.source
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"something like a secret in cell {cell.execution_count}"
        if secret:
            assert secret not in text


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_every_section_checks_its_results_and_chapters_end_with_exercises(path):
    nb = nbformat.read(path, as_version=4)
    section, has_code, has_assert = None, False, False
    for cell in nb.cells + [nbformat.v4.new_markdown_cell("## end")]:
        if cell.cell_type == "markdown" and re.search(r"^## ", cell.source, re.M):
            assert not (has_code and not has_assert), f"section {section!r} runs code but asserts nothing"
            section, has_code, has_assert = cell.source.splitlines()[0], False, False
        elif cell.cell_type == "code" and section is not None:
            has_code = True
            has_assert |= bool(re.search(r"^\s*assert ", cell.source, re.M))
    if path in CHAPTERS:
        ending = "\n".join(c.source for c in nb.cells[-2:] if c.cell_type == "markdown")
        assert re.search(r"^## (Exercises|练习)$", ending, re.M) and re.search(r"^## (Self-check|自测)$", ending, re.M)
        assert all(tier in ending for tier in ("★ ", "★★ ", "★★★ ")), "exercises come in three tiers"
        assert f"solutions/{path.name}" in ending, "link the worked solutions"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_no_runaway_generation_per_token_output_or_double_escaped_markdown(path):
    nb = nbformat.read(path, as_version=4)
    for cell in code_cells(nb):
        assert output_text(cell).count("### Response:") <= 1, f"runaway generation in cell {cell.execution_count}"
        streams = [out for out in cell.outputs if out.output_type == "stream"]
        assert len(streams) <= 10, f"cell {cell.execution_count} stored {len(streams)} outputs: stream into one"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            assert "\\\\boxed" not in cell.source and "\\\\frac" not in cell.source, "markdown shows \\\\ literally"
            assert not re.search(r"\\\\\n", cell.source), "a bash line continuation is a single backslash"


STALE_PROGRESS = re.compile(r"(?<![\d.])0%\|")  # tqdm's first frame: "  0%|", "Map:   0%|"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_no_stale_progress_bars(path):
    """A stored progress bar must show where it ended, not its first frame (or a widget only a live kernel draws)."""
    for cell in code_cells(nbformat.read(path, as_version=4)):
        assert not STALE_PROGRESS.search(output_text(cell)), f"a 0% progress bar stored in cell {cell.execution_count}"
        for out in cell.outputs:
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), (
                f"a widget stored in cell {cell.execution_count}: it shows as its first frame outside a live kernel")


def is_check_cell(cell) -> bool:
    """Only asserts (with the imports and names they need, and their "checked" line): the notebook's own tests."""
    tree = ast.parse(cell.source)
    def allowed(s: ast.stmt) -> bool:
        if isinstance(s, ast.Expr):
            return isinstance(s.value, ast.Call) and getattr(s.value.func, "id", None) == "print"
        return isinstance(s, (ast.Assert, ast.Import, ast.ImportFrom, ast.Assign))

    return any(isinstance(s, ast.Assert) for s in tree.body) and all(allowed(s) for s in tree.body)


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_check_cells_are_collapsed_and_say_what_they_checked(path):
    checks = [c for c in code_cells(nbformat.read(path, as_version=4)) if is_check_cell(c)]
    assert checks
    for cell in checks:
        assert cell.metadata.get("jupyter", {}).get("source_hidden"), f"check cell {cell.execution_count} is not collapsed"
        shown = output_text(cell).strip().splitlines()
        assert len(shown) == 1 and shown[0].startswith("✓ checked"), (
            f"check cell {cell.execution_count} must print one '✓ checked ...' line, not {shown}")


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_stored_outputs_were_made_by_this_code(path):
    """The fast tier executes only the light notebooks: every other one is guarded by its stamp (scripts/notebooks.py),
    written by `make execute` (or an nbval run that reproduced the outputs): the code that made the outputs is this."""
    found = notebooks.state(path)
    assert found.problem is None, found.line()


def test_a_notebook_whose_inputs_changed_is_re_run_with_its_folders_prefix(tmp_path, monkeypatch):
    """`make test-stale` (in CI) gets, for each folder, every notebook up to the last one whose inputs changed."""
    changed = {"03_b.ipynb"}
    monkeypatch.setattr(notebooks, "state", lambda p: notebooks.State(p, None, ("cotlib/x.py",) if p.name in changed else ()))
    paths = [tmp_path / "a" / n for n in ("01_a.ipynb", "02_a.ipynb")] + [tmp_path / n for n in ("01_b.ipynb", "03_b.ipynb", "04_b.ipynb")]
    assert notebooks.stale(paths) == [tmp_path / "01_b.ipynb", tmp_path / "03_b.ipynb"]
