"""Executed notebooks and the stamp that says what their stored outputs were made from.

Every chapter and solutions notebook is committed executed. When one is executed (``execute``) or re-executed and
found to reproduce its stored outputs under nbval (``verify``), a *stamp* is written into its metadata
(``metadata.cotlib.executed``): a hash of its code cells (comments aside) and a hash of each file its outputs depend
on (the cotlib modules its code imports, followed through their own imports; the bundled data; ``constraints.txt``).
Only those two commands write it. Then:

- code changed since the outputs were made  -> ``check`` fails and names the notebook (the fast test tier runs it);
- inputs changed since                     -> ``stale`` names it; CI re-executes it under nbval (``make test-stale``).

    python scripts/notebooks.py execute notebooks notebooks/zh     # run each folder in order, from an empty outputs/
    python scripts/notebooks.py verify notebooks/zh/solutions      # nbval strict; stamp the notebooks that pass
    python scripts/notebooks.py verify --from-report all.xml      # the same, from a test-all run's JUnit report
    python scripts/notebooks.py check                              # exit 1 if a notebook's code is not what ran
    python scripts/notebooks.py stale                              # the notebooks to re-run, with their folders' prefixes
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from editions import python_lines  # noqa: E402  (magics blanked, as the editions check does)

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "notebooks/solutions", "notebooks/zh", "notebooks/zh/solutions")
PACKAGE = ROOT / "cotlib"
#: what every notebook's outputs depend on besides the modules it imports
COMMON = ("constraints.txt",)
#: the environment notebooks are executed in (as the Makefile's OFFLINE): no download, progress bars stored as text
OFFLINE = {"COTLIB_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "COTLIB_PROGRESS": "text"}
CLI_CALL = re.compile(r'which\("cotlib"\)|^\s*!\s*cotlib\b|-m cotlib\b', re.M)


def notebooks(folders=FOLDERS) -> list[Path]:
    """The chapter/solutions notebooks of ``folders`` (relative to the repository or absolute), in execution order."""
    return [p for f in folders for p in sorted((ROOT / f).glob("[0-9][0-9]_*.ipynb"))]


def rel(path: Path) -> str:
    return Path(path).resolve().relative_to(ROOT).as_posix()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def code_text(source: str) -> str:
    """A code cell as its outputs depend on it: comments, trailing spaces and blank lines removed, the same on every
    Python (tokenize finds the comments; its other tokens differ between 3.11 and 3.12+, f-strings for one)."""
    lines = source.split("\n")
    blanked = python_lines(source)  # magics and shell lines kept as they are, but not tokenized
    try:
        comments = [t.start for t in tokenize.generate_tokens(io.StringIO(blanked).readline) if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, IndentationError, SyntaxError) as err:
        raise SystemExit(f"cannot tokenize a code cell: {err}") from err
    for row, col in reversed(comments):
        lines[row - 1] = lines[row - 1][:col]
    return "\n".join(line.rstrip() for line in lines if line.strip())


def code_hash(nb) -> str:
    """The code the outputs came from: every code cell's :func:`code_text`."""
    return _digest("\x1e".join(code_text(c.source) for c in nb.cells if c.cell_type == "code").encode())


def _imported(tree: ast.AST) -> set[str]:
    """cotlib module names an AST imports, anywhere in it (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cotlib"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cotlib":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from cotlib import data`: a module
    return found


def _module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_closure(nb) -> list[Path]:
    """The cotlib source files a notebook's code imports, followed through their own imports."""
    code = "\n".join(python_lines(c.source) for c in nb.cells if c.cell_type == "code")
    names = _imported(ast.parse(code))
    if CLI_CALL.search("\n".join(c.source for c in nb.cells if c.cell_type == "code")):
        names.add("cotlib.cli")
    names.add("cotlib")
    seen: dict[Path, None] = {}
    todo = sorted(names)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing cotlib.a.b runs cotlib/__init__ and cotlib/a/__init__ too
            path = _module_file(".".join(parts[:i]))
            if path and path not in seen:
                seen[path] = None
                todo.extend(_imported(ast.parse(path.read_text())))
    return sorted(seen)


def inputs(nb) -> dict[str, str]:
    """Each file the outputs depend on -> its content hash."""
    files = module_closure(nb) + sorted(p for p in (PACKAGE / "data").rglob("*") if p.is_file())
    files += [ROOT / name for name in COMMON]
    return {rel(p): _digest(p.read_bytes()) for p in files}


def stamp(path: Path) -> None:
    """Record, in the notebook's metadata, the code and inputs its stored outputs were just made from."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("cotlib", {})["executed"] = {"code": code_hash(nb), "inputs": inputs(nb)}
    nbformat.write(nb, path)


@dataclass(frozen=True)
class State:
    path: Path
    problem: str | None  # why the stored outputs cannot be trusted at all (code changed, never stamped)
    changed: tuple[str, ...]  # inputs changed since: the outputs may be stale

    def line(self) -> str:
        folder = rel(self.path.parent)
        if self.problem:
            return f"{rel(self.path)}: {self.problem}; run `make execute FOLDERS={folder}`"
        return f"{rel(self.path)}: inputs changed since its outputs were made ({', '.join(self.changed)})"


def state(path: Path) -> State:
    nb = nbformat.read(path, as_version=4)
    made = nb.metadata.get("cotlib", {}).get("executed")
    if not made:
        return State(path, "never executed by `make execute` (no stamp)", ())
    if made["code"] != code_hash(nb):
        return State(path, "code changed since its stored outputs were made", ())
    now = inputs(nb)
    changed = sorted(k for k in now.keys() | made["inputs"].keys() if now.get(k) != made["inputs"].get(k))
    return State(path, None, tuple(changed))


def stale(paths: list[Path]) -> list[Path]:
    """The notebooks to re-run so that every notebook with changed inputs is compared: in each folder, everything up
    to its last stale notebook (a chapter reads what the earlier ones left in outputs/)."""
    run = []
    for folder in dict.fromkeys(p.parent for p in paths):
        in_folder = [p for p in paths if p.parent == folder]
        flagged = [i for i, p in enumerate(in_folder) if state(p).changed]
        run += in_folder[: flagged[-1] + 1] if flagged else []
    return run


def clean(folder: Path) -> None:
    """Each execution starts from an empty outputs/ (no result depends on an earlier run)."""
    shutil.rmtree(folder / "outputs", ignore_errors=True)


def execute(folders: list[str]) -> int:
    """Execute each folder's notebooks in order, in place, from an empty outputs/, and stamp each one that ran."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ.update(OFFLINE)
    failed = 0
    for folder in folders:
        clean(ROOT / folder)
        for path in notebooks([folder]):
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=1800, kernel_name="python3", record_timing=False,
                                    resources={"metadata": {"path": str(path.parent)}})
            try:
                client.execute()
            except CellExecutionError as err:
                print(f"FAILED {rel(path)}: {str(err).strip().splitlines()[-1]}", flush=True)
                failed += 1
                break  # the later notebooks of this folder read what this one did not write
            nbformat.write(nb, path)
            stamp(path)
            print(f"executed {rel(path)}", flush=True)
    return 1 if failed else 0


def verify(folders: list[str], report: Path | None = None) -> int:
    """Re-execute the folders' notebooks under nbval (strict, sanitized as the tests are: one pytest session, each
    folder from an empty outputs/) and stamp each notebook whose every cell reproduced its stored output: such an
    execution vouches for them. ``report``: stamp from the JUnit XML report of a pytest run already made of this tree
    (``make test-all PYTEST_ARGS=--junitxml=FILE``) instead of running again."""
    paths = notebooks(folders)
    if report is None:
        report = Path(tempfile.mkdtemp()) / "nbval.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "", f"--junitxml={report}", *map(rel, paths)],
                       cwd=ROOT, env={**os.environ, **OFFLINE})
    passed = _passed(report)
    for path in paths:
        ok = passed.get(rel(path))
        if ok:
            stamp(path)
        print(f"{'verified' if ok else 'NOT VERIFIED'} {rel(path)}{'' if ok is not None else ' (not run)'}", flush=True)
    return 0 if all(passed.get(rel(p)) for p in paths) else 1


def _passed(report: Path) -> dict[str, bool]:
    """notebook -> every one of its nbval cells passed, from a pytest JUnit XML report."""
    found: dict[str, bool] = {}
    for case in ET.parse(report).iter("testcase"):
        module, _, notebook = case.get("classname", "").rpartition(".")
        if notebook != "ipynb":
            continue
        name = module.replace(".", "/") + ".ipynb"
        found[name] = found.get(name, True) and not any(child.tag in ("failure", "error") for child in case)
    return found


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "execute":
        return execute(args or list(FOLDERS))
    if command == "verify":
        report = Path(args[args.index("--from-report") + 1]) if "--from-report" in args else None
        folders = [a for a in args if a != "--from-report" and Path(a) != report] or list(FOLDERS)
        return verify(folders, report)
    if command == "check":
        bad = [s for s in map(state, notebooks()) if s.problem]
        for s in bad:
            print(s.line())
        return 1 if bad else 0
    if command == "stale":
        for path in stale(notebooks(args or FOLDERS)):
            print(rel(path))
        return 0
    print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
