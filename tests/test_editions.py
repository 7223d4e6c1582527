"""The Chinese edition: written from the English notebooks and notebooks/i18n/zh by scripts/editions.py, in sync,
with the same code; and every relative link of the notebooks and documents resolves."""

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import editions  # noqa: E402

PAIRS = editions.pairs()
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_chapter_and_solutions_notebook_has_a_chinese_edition():
    folders = [en.parent.relative_to(ROOT / "notebooks").as_posix() for en, _, _ in PAIRS]
    assert folders.count(".") == 6 and folders.count("solutions") == 6
    assert all(zh.is_file() for _, _, zh in PAIRS)


def test_translations_are_complete_current_and_built():
    """Fails on a missing or stale translation, a code difference, a leftover result marker or an unbuilt notebook."""
    assert editions.sync(write=False) == []


@pytest.mark.parametrize("en,zh", [(en, zh) for en, _, zh in PAIRS], ids=lambda p: str(p.relative_to(ROOT)))
def test_code_cells_match_beyond_comments_and_language(en, zh):
    english, chinese = (nbformat.read(p, as_version=4) for p in (en, zh))
    assert [c.cell_type for c in english.cells] == [c.cell_type for c in chinese.cells]
    for a, b in zip(english.cells, chinese.cells):
        if a.cell_type == "code":
            assert editions.same_code(a.source, b.source), f"cell {a.id} of {zh.name} differs from the English code"
            assert a.metadata.get("tags") == b.metadata.get("tags")
        else:
            assert CJK.search(b.source), f"markdown cell {b.id} of {zh.relative_to(ROOT)} is not in Chinese"
    setting = [line for c in chinese.cells if c.cell_type == "code" for line in c.source.splitlines()
               if line.startswith("LANGUAGE = ")]
    assert all(line.startswith('LANGUAGE = "zh"') for line in setting)


def test_the_code_check_sees_a_real_difference():
    assert editions.same_code('x = f(1)  # one', 'x = f(1)  # 一')
    assert editions.same_code('LANGUAGE = "en"  # or "zh"', 'LANGUAGE = "zh"  # 或 "en"')
    assert not editions.same_code("x = f(1)", "x = f(2)")
    assert not editions.same_code('print("done")', 'print("完成")')


@pytest.mark.parametrize("en,zh", [(en, zh) for en, _, zh in PAIRS], ids=lambda p: str(p.relative_to(ROOT)))
def test_chinese_notebooks_open_with_their_own_badge_and_a_language_switch(en, zh):
    intro = nbformat.read(zh, as_version=4).cells[0].source
    path = zh.relative_to(ROOT).as_posix()
    assert f"https://colab.research.google.com/github/cotlib/cotlib/blob/main/{path}" in intro
    assert f"[English]({os.path.relpath(en, zh.parent)})" in intro and "**中文**" in intro
    assert f"[中文]({os.path.relpath(zh, en.parent)})" in nbformat.read(en, as_version=4).cells[0].source
    assert intro.startswith("# 第")


def markdown_files() -> list[Path]:
    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    return [p for p in notebooks if "outputs" not in p.parts] + [ROOT / "README.md", ROOT / "README.zh.md",
                                                                 *sorted((ROOT / "docs").glob("*.md"))]


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    text = re.sub(r"```.*?```", "", markdown_of(path), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#", "mailto:", "attachment:")):
            continue
        assert (path.parent / target.split("#")[0]).exists(), f"{path.relative_to(ROOT)} links to missing {target}"


def test_each_readme_and_guide_links_to_the_other_language():
    assert "(README.zh.md)" in (ROOT / "README.md").read_text() and "(README.md)" in (ROOT / "README.zh.md").read_text()
    assert "(INSTRUCTORS.zh.md)" in (ROOT / "docs/INSTRUCTORS.md").read_text()
    assert "(INSTRUCTORS.md)" in (ROOT / "docs/INSTRUCTORS.zh.md").read_text()


def test_build_keeps_outputs_only_while_the_code_is_the_same(tmp_path):
    en = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Chapter 9", id="m1"),
                                         nbformat.v4.new_code_cell("x = 1  # one", id="c1"),
                                         nbformat.v4.new_code_cell("y = 2", id="c2")])
    nbformat.write(en, tmp_path / "09_x.ipynb")
    (tmp_path / "09_x.yaml").write_text(editions.dump({
        "markdown": [{"id": "m1", "english": "# Chapter 9", "zh": "# 第 9 章"}],
        "code": [{"en": "x = 1  # one", "zh": "x = 1  # 一"}]}), encoding="utf-8")
    old = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 旧", id="m1"),
                                          nbformat.v4.new_code_cell("x = 1  # 旧的注释", id="c1"),
                                          nbformat.v4.new_code_cell("y = 3", id="c2")])
    for cell in old.cells[1:]:
        cell.execution_count, cell.outputs = 1, [nbformat.v4.new_output("stream", text="out")]
    nb, problems = editions.render(tmp_path / "09_x.ipynb", tmp_path / "09_x.yaml", old)
    assert problems == [] and nb.cells[0].source == "# 第 9 章" and nb.cells[1].source == "x = 1  # 一"
    assert nb.cells[1].outputs and nb.cells[1].execution_count == 1  # only a comment changed: outputs kept
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None  # the code changed: run it again


def test_a_malformed_translation_file_is_named_with_its_entry(tmp_path):
    broken = tmp_path / "09_x.yaml"
    broken.write_text("markdown:\n- id: m1\n  english: '# Chapter 9'\ncode: []\n", encoding="utf-8")
    with pytest.raises(editions.EditionError, match=r"09_x.yaml: markdown entry 1: field 'zh' must be text"):
        editions.load_source(broken)
    broken.write_text("markdown: [unclosed\n", encoding="utf-8")
    with pytest.raises(editions.EditionError, match=r"(?s)09_x.yaml: not valid YAML: .*line 2"):
        editions.load_source(broken)
