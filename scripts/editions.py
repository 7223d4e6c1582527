"""The Chinese edition of the notebooks, written from one source.

The English notebooks are the source of every code cell. ``notebooks/i18n/zh/<name>.yaml`` holds, for each markdown
cell (by cell id), the English text it translates and the Chinese text, and, for code cells, line replacements that
may change only comments and the ``LANGUAGE`` setting. ``build`` writes ``notebooks/zh/<name>``
(and ``notebooks/zh/solutions/<name>`` from ``notebooks/solutions``); stored outputs are kept for code cells whose
code (comments aside) did not change, so a translation fix needs no re-execution.

    python scripts/editions.py build    # write the Chinese notebooks
    python scripts/editions.py check    # fail if a translation is missing or stale, or a notebook is out of date
    python scripts/editions.py stubs    # add entries (English text, zh: TODO) for cells that lack a translation

A changed English markdown cell makes its translation stale: ``check`` (and tests/test_editions.py) print the change
and fail until the entry's ``english`` and ``zh`` are updated.
"""

from __future__ import annotations

import difflib
import io
import sys
import tokenize
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "i18n" / "zh"
TODO = "TODO"


class EditionError(Exception):
    pass


def pairs() -> list[tuple[Path, Path, Path]]:
    """(English notebook, translation file, Chinese notebook) for every chapter and solutions notebook."""
    found = []
    for sub in ("", "solutions"):
        for en in sorted((NOTEBOOKS / sub).glob("[0-9][0-9]_*.ipynb")):
            found.append((en, SOURCES / sub / f"{en.stem}.yaml", NOTEBOOKS / "zh" / sub / en.name))
    return found


def python_lines(source: str) -> str:
    """A code cell's source with IPython magics and shell escapes blanked, so that it tokenizes as Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")) + "\n"


def code_tokens(source: str) -> list[str]:
    """The code of a cell without its comments."""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(python_lines(source)).readline)
        return [t.string for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE)]
    except (tokenize.TokenError, IndentationError) as err:
        raise EditionError(f"cannot tokenize a code cell: {err}") from err


def same_code(en: str, zh: str) -> bool:
    """True when two code cells differ only in comments and the value of ``LANGUAGE``."""
    def normal(src: str) -> list[str]:
        return code_tokens("\n".join(("LANGUAGE = None" if line.startswith("LANGUAGE = ") else line)
                                     for line in src.splitlines()))
    return normal(en) == normal(zh)


def translate_code(source: str, replace: dict[str, str]) -> str:
    return "\n".join(replace.get(line, line) for line in source.split("\n"))


def load_source(path: Path) -> dict:
    """A translation file; a malformed one is an :class:`EditionError` naming the file and the entry."""
    if not path.exists():
        return {"markdown": [], "code": []}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise EditionError(f"{path}: not valid YAML: {err}") from None
    src = {"markdown": data.get("markdown") or [], "code": data.get("code") or []}
    for part, keys in (("markdown", ("id", "english", "zh")), ("code", ("en", "zh"))):
        for i, entry in enumerate(src[part], start=1):
            missing = [k for k in keys if not isinstance(entry, dict) or not isinstance(entry.get(k), str)]
            if missing:
                raise EditionError(f"{path}: {part} entry {i}: field {missing[0]!r} must be text")
    return src


def render(en_path: Path, src_path: Path, old: nbformat.NotebookNode | None) -> tuple[nbformat.NotebookNode, list[str]]:
    """The Chinese notebook, and every problem found (missing, stale or unused translations; code that differs)."""
    en = nbformat.read(en_path, as_version=4)
    src = load_source(src_path)
    where = src_path.relative_to(ROOT) if src_path.is_relative_to(ROOT) else src_path
    markdown = {m["id"]: m for m in src["markdown"]}
    replace = {c["en"]: c["zh"] for c in src["code"]}
    used: set[str] = set()
    kept = {c.id: c for c in old.cells} if old is not None else {}
    problems: list[str] = []
    cells = []
    for cell in en.cells:
        if cell.cell_type == "markdown":
            entry = markdown.get(cell.id)
            if entry is None or entry.get("zh", TODO) == TODO:
                problems.append(f"{where}: markdown cell {cell.id} has no translation")
                text = cell.source
            else:
                if entry.get("english", "").rstrip("\n") != cell.source:
                    change = "\n".join(difflib.unified_diff(entry.get("english", "").splitlines(),
                                                            cell.source.splitlines(), lineterm="", n=0))
                    problems.append(f"{where}: markdown cell {cell.id} changed in English since it was translated; "
                                    f"update english and zh:\n{change}")
                text = entry["zh"].rstrip("\n")
                if "<!--RESULT-->" in text:
                    problems.append(f"{where}: markdown cell {cell.id} still marks a result to check against the "
                                    f"Chinese run (<!--RESULT-->)")
            new = nbformat.v4.new_markdown_cell(text, id=cell.id, metadata=cell.metadata)
        else:
            text = translate_code(cell.source, replace)
            used |= {line for line in cell.source.split("\n") if line in replace}
            if not same_code(cell.source, text):
                problems.append(f"{where}: code cell {cell.id} differs beyond comments and LANGUAGE")
            for comment in comments(text):
                if comment.isascii():
                    problems.append(f"{where}: code cell {cell.id} has an untranslated comment: {comment}")
            new = nbformat.v4.new_code_cell(text, id=cell.id, metadata=cell.metadata)
            previous = kept.get(cell.id)
            if previous is not None and previous.cell_type == "code" and code_tokens(previous.source) == code_tokens(text):
                # only comments changed (or nothing): the stored outputs still belong to this code
                new.outputs, new.execution_count = previous.outputs, previous.execution_count
        cells.append(new)
    problems += [f"{where}: markdown translation {i} matches no cell" for i in markdown.keys() - {c.id for c in en.cells}]
    problems += [f"{where}: code replacement matches no line: {line}" for line in replace.keys() - used]
    # the English notebook's metadata, but the Chinese one's own execution stamp (scripts/notebooks.py)
    metadata = {k: v for k, v in en.metadata.items() if k != "cotlib"}
    if old is not None and "cotlib" in old.metadata:
        metadata["cotlib"] = old.metadata["cotlib"]
    nb = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    nb.nbformat, nb.nbformat_minor = en.nbformat, en.nbformat_minor
    return nb, problems


def sources_of(nb: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    return [(c.id, c.cell_type, c.source) for c in nb.cells]


def sync(write: bool) -> list[str]:
    """Render every Chinese notebook; write it (``build``) or report it as out of date (``check``)."""
    problems = []
    for en, src, zh in pairs():
        old = nbformat.read(zh, as_version=4) if zh.exists() else None
        nb, found = render(en, src, old)
        problems += found
        if write:
            zh.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, zh)
        elif old is None or sources_of(old) != sources_of(nb):
            problems.append(f"{zh.relative_to(ROOT)} is out of date: run `python scripts/editions.py build`")
    return problems


def comments(source: str) -> list[str]:
    return [t.line.rstrip("\n") for t in tokenize.generate_tokens(io.StringIO(python_lines(source)).readline)
            if t.type == tokenize.COMMENT]


def stubs() -> None:
    """Append an entry, with the English text and ``zh: TODO``, for each markdown cell and comment lacking one."""
    for en_path, src_path, _ in pairs():
        en = nbformat.read(en_path, as_version=4)
        src = load_source(src_path)
        have = {m["id"] for m in src["markdown"]}
        replace = {c["en"] for c in src["code"]}
        for cell in en.cells:
            if cell.cell_type == "markdown" and cell.id not in have:
                src["markdown"].append({"id": cell.id, "english": cell.source, "zh": TODO})
            elif cell.cell_type == "code":
                for line in comments(cell.source):
                    if line not in replace:
                        src["code"].append({"en": line, "zh": TODO})
                        replace.add(line)
        src_path.parent.mkdir(parents=True, exist_ok=True)
        src_path.write_text(dump(src), encoding="utf-8")


class _Literal(str):
    pass


yaml.add_representer(_Literal, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|"),
                     Dumper=yaml.SafeDumper)


def dump(src: dict) -> str:
    def block(entry: dict) -> dict:
        return {k: _Literal(v) if isinstance(v, str) and "\n" in v else v for k, v in entry.items()}
    data = {"markdown": [block(m) for m in src["markdown"]], "code": src["code"]}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command not in ("build", "check", "stubs"):
        print("usage: python scripts/editions.py [build|check|stubs]", file=sys.stderr)
        return 2
    if command == "stubs":
        stubs()
        return 0
    try:
        problems = sync(write=command == "build")
    except EditionError as err:
        problems = [str(err)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
