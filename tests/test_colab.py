"""Colab's install cell: the pure parts, and a replay on Colab's published GPU runtime (tests/data/colab/)."""

import importlib.util
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


def test_series_and_patch_holds():
    assert colab.series("5.9.5") == "5.9" and colab.series("2026.10.9") == "2026.10" and colab.series("7") is None
    found = {"torch": "2.11.0", "psutil": "5.9.5", "ipython": "7.34.0", "odd": "v1"}
    assert colab.hold_constraints(found, ["psutil", "ipython", "odd"], patches=True) == (
        "torch==2.11.0\nipython>=7.34.0,==7.34.*\nodd==v1\npsutil>=5.9.5,==5.9.*\n")
    found["certifi"] = "2026.7.22"  # a CA bundle: held exactly at first, free with patches
    assert colab.hold_constraints(found, ["certifi"]) == "torch==2.11.0\ncertifi==2026.7.22\n"
    assert colab.hold_constraints(found, ["certifi"], patches=True) == "torch==2.11.0\n"


def fake_install(monkeypatch, states, resolves):
    """install() with pip replaced: ``resolves`` says which attempt (0, 1, 2) succeeds; returns the constraints tried."""
    calls = []
    states = iter(states)
    monkeypatch.setattr(colab, "installed", lambda: next(states))
    monkeypatch.setattr(colab, "ready", lambda extra="colab": False)
    monkeypatch.setattr(colab, "_pip_install", lambda source, extra, held, quiet: calls.append(held) or
                        len(calls) - 1 == resolves)
    monkeypatch.setattr("cotlib.local.fetch_gguf", lambda: None)
    return calls


def test_a_patch_release_or_a_ca_bundle_under_the_kernel_needs_no_restart(monkeypatch, capsys):
    import psutil  # noqa: F401  (imported by this "kernel", as Colab's ipykernel imports it)

    import certifi  # noqa: F401

    before = {"torch": "2.11.0", "psutil": "5.9.5", "certifi": "2026.7.22"}
    after = {**before, "psutil": "5.9.8", "certifi": "2026.10.19.post1", "camel-ai": "0.2.90"}
    calls = fake_install(monkeypatch, [before, after], resolves=1)
    report = colab.install("file:///nowhere")
    assert calls[0].endswith("psutil==5.9.5\n") and calls[1].endswith("psutil>=5.9.5,==5.9.*\n")
    assert report.safe_changes == ("certifi", "psutil") and report.restart_for == ()
    said = capsys.readouterr().out
    assert "allowing them patch releases" in said and "psutil 5.9.5 -> 5.9.8 under the running kernel: a patch release" in said
    assert "certifi 2026.7.22 -> 2026.10.19.post1 under the running kernel: data the kernel reads" in said
    assert "No restart needed." in said


def test_install_falls_back_and_asks_for_a_restart_when_imported_packages_must_change(monkeypatch, capsys):
    import psutil  # noqa: F401  (imported by this "kernel")

    before = {"torch": "2.9.0", "psutil": "7.2.2", "cotlib": "0.1.0"}
    after = {**before, "psutil": "5.9.8", "unsloth": "2026.10.9"}
    calls = fake_install(monkeypatch, [before, after], resolves=2)
    report = colab.install("file:///nowhere")
    assert calls == ["torch==2.9.0\npsutil==7.2.2\n", "torch==2.9.0\npsutil>=7.2.2,==7.2.*\n", "torch==2.9.0\n"]
    assert report.restart_for == ("psutil",) and report.safe_changes == () and report.kept == {"torch": "2.9.0"}
    said = capsys.readouterr().out
    assert "holding only Colab's torch family" in said and "Restart the session once" in said


def test_ready_means_the_cell_does_nothing(monkeypatch, capsys):
    requires = ["camel-ai==0.2.90", "torch==2.14.1; extra == \"train\"", "transformers[serving]==5.17.0; extra == \"colab\""]
    monkeypatch.setattr(colab.importlib.metadata, "requires", lambda name: requires)
    have = {"cotlib": "0.1.0", "camel-ai": "0.2.90", "transformers": "5.17.0", "torch": "2.11.0"}
    monkeypatch.setattr(colab, "installed", lambda: dict(have))
    assert colab.ready()  # the train extra's torch pin is not the colab extra's business
    monkeypatch.setattr(colab, "_pip_install", lambda *a: pytest.fail("pip must not run"))
    report = colab.install("file:///nowhere")
    assert report.restart_for == () and report.added == {} and "nothing to do" in capsys.readouterr().out
    have["transformers"] = "5.15.0"
    assert not colab.ready()


def test_install_cell_is_the_same_everywhere_and_pins_no_torch():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.source == INSTALL_CELL, path.name
    assert "torch" not in INSTALL_CELL.replace("Colab's own torch", "")
    assert "%pip" not in INSTALL_CELL and "!pip" not in INSTALL_CELL


def python313() -> str | None:
    found = subprocess.run([str(ROOT / "scripts/find-python"), "3.13"], capture_output=True, text=True)
    return found.stdout.strip() or None


def runtime_script():
    spec = importlib.util.spec_from_file_location("colab_runtime", ROOT / "scripts" / "colab_runtime.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNTIME = ROOT / "tests" / "data" / "colab"
#: the third-party packages `import google.colab` loads (colabtools' google/colab/__init__.py and the modules it
#: imports at top level, googlecolab/colabtools 3c07d77, 2026-04-07): the fake below imports the same, so the
#: kernel holds what a Colab kernel holds when the install cell runs
COLAB_IMPORTS = ("IPython", "PIL", "anywidget", "httplib2", "numpy", "packaging", "pexpect", "psutil", "traitlets", "zmq")
#: the Jupyter kernel Colab runs, and how these tests drive one
KERNEL = ("ipykernel", "ipython", "jupyter-client", "jupyter-core", "nbclient", "nbformat", "pyzmq", "tornado")


def test_held_runtime_list_parses_and_refreshes(tmp_path):
    script = runtime_script()
    found = script.pins((RUNTIME / "pip-freeze.gpu.txt").read_text())
    assert found["torch"] == "2.11.0" and found["psutil"] == "5.9.5" and found["ipython"] == "7.34.0"
    assert "google-colab" not in found  # a file:// URL in the list: left out
    assert script.python_version((RUNTIME / "os-info-gpu.txt").read_text()).startswith("3.13.")
    assert script.published() == "2026-08-19"
    note = script.refresh(tmp_path / "held", RUNTIME)
    assert "2026-08-19" in note and (tmp_path / "held" / "pip-freeze.gpu.txt").read_text() == (
        RUNTIME / "pip-freeze.gpu.txt").read_text()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pip-freeze.gpu.txt").write_text("torch==2.11.0\n")
    (tmp_path / "bad" / "os-info-gpu.txt").write_text("Ubuntu\n")
    with pytest.raises(ValueError, match="no Python version"):
        script.refresh(tmp_path / "held2", tmp_path / "bad")


def test_readme_states_the_outcome_on_the_held_runtime():
    readme = (ROOT / "README.md").read_text()
    assert f"Colab's published GPU runtime of {runtime_script().published()}" in readme
    assert "no restart" in readme.split("Colab's published GPU runtime of")[1][:600]


CHAPTERS = ("02_data_prep", "04_alpaca_export", "05_hf_upload")
RUN = textwrap.dedent("""
    import pathlib, sys, time, nbformat
    from nbclient import NotebookClient
    # each chapter as Colab runs it: a fresh kernel that has imported google.colab, the install cell first
    for name in sys.argv[2:]:
        nb = nbformat.read(f"notebooks/{name}.ipynb", as_version=4)
        nb.cells.insert(0, nbformat.v4.new_code_cell("import google.colab"))
        folder = pathlib.Path(sys.argv[1]) / name
        folder.mkdir()
        start = time.monotonic()
        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
        install = next(c for c in nb.cells[1:] if c.cell_type == "code")
        print("".join(out.get("text", "") for out in install.outputs).strip())
        print(name, round(time.monotonic() - start, 1), "s")
""")


@pytest.mark.slow  # minutes (builds the runtime, downloads Colab's torch): make test-all
@pytest.mark.colab_sim
@pytest.mark.skipif(python313() is None, reason="needs Python 3.13, what Colab runs")
def test_colab_cell_on_the_published_runtime_needs_no_restart_and_chapters_run(tmp_path):
    script = runtime_script()
    colab_pins = script.pins((RUNTIME / "pip-freeze.gpu.txt").read_text())
    # Colab's torch is its own +cu128 build, not on PyPI: PyPI's build of the same release stands in, with the CUDA
    # libraries it brings (Colab's nvidia-* and cuda-* packages belong to its build; nothing of cotlib's touches them)
    colab_pins = {n: v for n, v in colab_pins.items() if not n.startswith(("nvidia-", "cuda-"))}
    venv = tmp_path / "colab-runtime"
    py = str(venv / "bin/python")
    subprocess.run([python313(), "-m", "venv", str(venv)], check=True)
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"pip=={colab_pins['pip']}"], check=True)
    # the runtime: Colab's list, every package at Colab's version (a constraints file), restricted to what the
    # install can touch (cotlib's lock), what the kernel runs, what google.colab imports, and the torch family
    held = tmp_path / "colab-pins.txt"
    held.write_text("".join(f"{n}=={v}\n" for n, v in colab_pins.items()))
    lock = {colab.canonical(line.split("==")[0]) for line in (ROOT / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    dists = {"pil": "pillow", "zmq": "pyzmq"}
    wanted = (lock | set(KERNEL) | {dists.get(m.lower(), m.lower()) for m in COLAB_IMPORTS} | set(colab.KEEP))
    subprocess.run([*pip, "-c", str(held), *sorted(wanted & set(colab_pins))], check=True)
    fake = tmp_path / "fake"
    (fake / "google/colab").mkdir(parents=True)  # a namespace package `google`, like Colab's
    (fake / "google/colab/__init__.py").write_text("".join(f"import {m}\n" for m in COLAB_IMPORTS))
    before = colab_versions(py)
    assert {n: before[n] for n in ("torch", "psutil", "ipython", "ipykernel")} == {
        n: colab_pins[n] for n in ("torch", "psutil", "ipython", "ipykernel")}

    env = {**os.environ, "PYTHONPATH": str(fake), "COTLIB_SOURCE": ROOT.as_uri(), "COTLIB_CACHE": str(tmp_path / "cache"),
           "COTLIB_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    for name in ("VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    run = subprocess.run([py, "-c", RUN, str(tmp_path), *CHAPTERS], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    print(run.stdout)
    first = run.stdout.split(f"\n{CHAPTERS[0]} ")[0]  # the install cell's summary in the first chapter's kernel
    assert "cotlib installed in" in first and f"kept Colab's torch {colab_pins['torch']}" in first
    assert "No restart needed." in first and "Restart the session" not in first, "the chapter ran on in that kernel"
    assert run.stdout.count("already installed: nothing to do") == len(CHAPTERS) - 1

    after = colab_versions(py)
    frontend = ("torch", "ipython", "ipykernel", "ipywidgets")  # what Colab's frontend and GPU driver rely on
    assert {n: after[n] for n in frontend} == {n: colab_pins[n] for n in frontend}
    assert subprocess.run([py, "-c", "import llama_cpp"], capture_output=True).returncode != 0, "nothing compiled"
    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True)
    print("pip check:", check.stdout or "ok")
    broken = [line for line in check.stdout.splitlines() if line.split()[0].lower() in {"cotlib", "camel-ai", "unsloth",
              "trl", "transformers", "peft", "datasets"}]
    assert not broken, broken


def colab_versions(py: str) -> dict[str, str]:
    out = subprocess.run([py, "-c", "import importlib.metadata as m, json, re; print(json.dumps({re.sub(r'[-_.]+', '-', "
                          "d.metadata['Name']).lower(): d.version for d in m.distributions()}))"],
                         capture_output=True, text=True, check=True)
    return {n: v.split("+")[0] for n, v in json.loads(out.stdout).items()}
