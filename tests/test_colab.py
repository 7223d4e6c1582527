"""Colab's install cell: the pure parts, and a simulation of a Colab runtime (Python 3.13, its own torch)."""

import json
import os
import subprocess
import textwrap

import nbformat
import pytest

from conftest import ROOT
from cotlib import colab

INSTALL_CELL = next(c for c in nbformat.read(ROOT / "notebooks/01_setup.ipynb", as_version=4).cells
                    if c.cell_type == "code").source
COLAB_TORCH = "2.13.0"  # not the pinned 2.14.1: the cell must leave whatever Colab has alone


def test_changes_and_held_constraints():
    before = {"torch": "2.9.0", "numpy": "2.0.0", "pandas": "2.2.2", "cotlib": "0.1.0"}
    after = {**before, "pandas": "3.1.1", "unsloth": "2026.10.9"}
    assert colab.changes(before, after) == ({"unsloth": "2026.10.9"}, {"pandas": ("2.2.2", "3.1.1")})
    found = {**before, "triton": "3.5.0"}
    assert colab.hold_constraints(found, []) == "torch==2.9.0\ntriton==3.5.0\n"
    assert colab.hold_constraints(found, ["pandas", "cotlib", "absent"]) == "torch==2.9.0\ntriton==3.5.0\npandas==2.2.2\n"


def test_imported_distributions():
    import pandas  # noqa: F401  (imported in this process)

    assert {"pandas", "numpy"} <= colab.imported_distributions(["pandas.core.frame", "numpy", "json"])
    assert colab.imported_distributions(["json"]) == set()


def test_summary_says_what_was_installed_and_whether_to_restart():
    report = colab.InstallReport({"cotlib": "0.1.0", "unsloth": "2026.10.9"}, {"pandas": ("2.2.2", "3.1.1")},
                                 {"torch": "2.9.0"}, 95.2, ("pandas",))
    text = report.summary()
    assert "in 95 s: 2 packages added, 1 changed; kept Colab's torch 2.9.0" in text
    assert "unsloth 2026.10.9" in text and "pandas 2.2.2 -> 3.1.1" in text and "Restart the session once" in text
    assert "No restart needed." in colab.InstallReport({}, {}, {}, 1.0, ()).summary()


def test_install_falls_back_and_asks_for_a_restart_when_imported_packages_must_change(monkeypatch, capsys):
    import psutil  # noqa: F401  (imported by this "kernel")

    before = {"torch": "2.9.0", "psutil": "7.2.2", "cotlib": "0.1.0"}
    after = {**before, "psutil": "5.9.8", "unsloth": "2026.10.9"}
    states, calls = iter([before, after]), []
    monkeypatch.setattr(colab, "installed", lambda: next(states))
    monkeypatch.setattr(colab, "_pip_install", lambda source, extra, held, quiet: calls.append(held) or len(calls) > 1)
    monkeypatch.setattr("cotlib.local.fetch_gguf", lambda: None)
    report = colab.install("file:///nowhere")
    assert calls == ["torch==2.9.0\npsutil==7.2.2\n", "torch==2.9.0\n"]  # imported packages held first, then only torch
    assert report.restart_for == ("psutil",) and report.kept == {"torch": "2.9.0"}
    said = capsys.readouterr().out
    assert "holding only Colab's torch family" in said and "Restart the session once" in said


def test_install_cell_is_the_same_everywhere_and_pins_no_torch():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.source == INSTALL_CELL, path.name
    assert "torch" not in INSTALL_CELL.replace("Colab's own torch", "")
    assert "%pip" not in INSTALL_CELL and "!pip" not in INSTALL_CELL


def python313() -> str | None:
    found = subprocess.run([str(ROOT / "scripts/find-python"), "3.13"], capture_output=True, text=True)
    return found.stdout.strip() or None


CHAPTERS = ("02_data_prep", "04_alpaca_export", "05_hf_upload")
RUN = textwrap.dedent("""
    import pathlib, sys, time, nbformat
    from nbclient import NotebookClient
    def run(nb, folder):
        folder.mkdir()
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
        return nb
    if sys.argv[2] == "--cell":  # the install cell in a Jupyter kernel, as Colab runs it (google.colab imported)
        cells = [nbformat.v4.new_code_cell("import google.colab"), nbformat.v4.new_code_cell(sys.argv[3])]
        nb = run(nbformat.v4.new_notebook(cells=cells), pathlib.Path(sys.argv[1]) / "cell")
        print("".join(out.get("text", "") for out in nb.cells[1].outputs))
    else:
        for name in sys.argv[2:]:
            start = time.monotonic()
            run(nbformat.read(f"notebooks/{name}.ipynb", as_version=4), pathlib.Path(sys.argv[1]) / name)
            print(name, round(time.monotonic() - start, 1), "s")
""")


@pytest.mark.slow  # 209 s measured (a fresh venv with its own torch): make test-all
@pytest.mark.colab_sim
@pytest.mark.skipif(python313() is None, reason="needs Python 3.13, what Colab runs")
def test_colab_cell_in_a_fresh_python313_runtime_keeps_torch_and_chapters_run(tmp_path):
    venv = tmp_path / "colab-runtime"
    py = str(venv / "bin/python")
    subprocess.run([python313(), "-m", "venv", str(venv)], check=True)
    pip = [py, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "pip==25.3"], check=True)
    # what a Colab runtime has before the cell runs: its own torch build and a Jupyter kernel, with the psutil 5.9
    # that Colab pins (camel-ai 0.2.90 needs psutil<6; an IPython that needs psutil>=7 would force one restart,
    # see test_install_falls_back_and_asks_for_a_restart_when_imported_packages_must_change)
    subprocess.run([*pip, f"torch=={COLAB_TORCH}", "ipykernel==7.4.0", "nbclient==0.11.0", "psutil==5.9.8",
                    "ipython==9.12.0"], check=True)

    fake = tmp_path / "fake"
    (fake / "google/colab").mkdir(parents=True)  # a namespace package `google`, like Colab's
    (fake / "google/colab/__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(fake), "COTLIB_SOURCE": ROOT.as_uri(), "COTLIB_CACHE": str(tmp_path / "cache")}
    for name in ("VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    cell = subprocess.run([py, "-c", RUN, str(tmp_path), "--cell", INSTALL_CELL], env=env, capture_output=True, text=True)
    assert cell.returncode == 0, (cell.stdout + cell.stderr)[-4000:]
    print(cell.stdout)
    assert "cotlib installed in" in cell.stdout and f"kept Colab's torch {COLAB_TORCH}" in cell.stdout
    assert "No restart needed." in cell.stdout, "nothing the kernel had imported may change"

    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    versions = subprocess.run([py, "-c", "import importlib.metadata as m, json; print(json.dumps("
                               "{n: m.version(n) for n in ('torch', 'cotlib', 'unsloth', 'camel-ai')}))"],
                              capture_output=True, text=True, check=True)
    assert json.loads(versions.stdout)["torch"] == COLAB_TORCH
    assert subprocess.run([py, "-c", "import llama_cpp"], capture_output=True).returncode != 0, "nothing compiled"

    run = subprocess.run([py, "-c", RUN, str(tmp_path), *CHAPTERS], cwd=ROOT, capture_output=True, text=True,
                         env={**env, "COTLIB_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    print(run.stdout)
