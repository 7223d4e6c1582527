"""Chapter 6 on the machines learners use, without a GPU (issue #23).

Both editions run from their first cell up to the cell that loads a model, once per hardware profile, in one kernel
(section 1, the dataset, only for the first profile: it does not depend on the machine):
``torch.cuda`` (and so ``cotlib.hardware.detect``) is faked for the profile's card, and every check cell on the way
must hold. After each profile the test compares the chapter's recipe with what ``hardware.recommend`` plans for that
card, computed here, outside the notebook.
"""

import json

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell

from cotlib.hardware import HardwareReport, recommend
from conftest import ROOT

#: name → (GPU name, total memory in GiB as torch reports it, bf16) or None for no GPU
PROFILES = {
    "Colab T4": ("Tesla T4", 14.7, False),
    "8 GB card": ("NVIDIA GeForce RTX 4060 Laptop GPU", 8.0, True),
    "4 GB laptop card": ("NVIDIA GeForce GTX 1650", 4.0, False),
    "Colab L4": ("NVIDIA L4", 22.2, True),
    "A100 40 GB": ("NVIDIA A100-SXM4-40GB", 39.4, True),
    "CPU": None,
}

FAKE = """
import types
import torch

_real = globals().setdefault("_real_cuda", (torch.cuda.is_available, torch.cuda.get_device_properties,
                                            torch.cuda.is_bf16_supported, torch.version.cuda))
profile = {profile}
if profile is None:
    torch.cuda.is_available, torch.cuda.get_device_properties, torch.cuda.is_bf16_supported, torch.version.cuda = _real
else:
    torch.cuda.is_available = lambda: True
    torch.cuda.get_device_properties = lambda device=0: types.SimpleNamespace(name=profile[0],
                                                                             total_memory=int(profile[1] * 2**30))
    torch.cuda.is_bf16_supported = lambda *args, **kwargs: profile[2]
    torch.version.cuda = "12.8"
"""

CHECK = """
import json
print(json.dumps([cfg.model_name, cfg.max_seq_length, cfg.batch_size, cfg.load_in_4bit, cfg.grad_accum]))
"""


def expected(profile) -> list:
    gpu = profile is not None
    report = HardwareReport("Linux", "3.13.0", "2.14.1", "12.8" if gpu else None, profile[0] if gpu else None,
                            round(profile[1], 1) if gpu else None, gpu and profile[2], 2, 16.0)
    setup = recommend(report)
    return [setup.model if gpu else None, setup.max_seq_length, setup.batch_size, setup.load_in_4bit, 4 if gpu else 2]


def model_cell(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "from_pretrained(" in c.source)


@pytest.mark.parametrize("edition", ["notebooks/06_unsloth_sft.ipynb", "notebooks/zh/06_unsloth_sft.ipynb"])
def test_chapter_6_sets_up_on_every_profile(edition, tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_NO_UNSLOTH", "1")  # Unsloth's import would look for the faked GPU's driver
    nb = nbformat.read(ROOT / edition, as_version=4)
    cells = [c for c in nb.cells[: model_cell(nb)] if c.cell_type == "code"]
    # section 1 (the dataset, read once: a kernel keeps its Hub endpoint) does not depend on the machine
    plan_section = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## 2."))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    seen = {}
    with client.setup_kernel():
        for name, profile in PROFILES.items():
            client.execute_cell(new_code_cell(FAKE.format(profile=repr(profile))), 0)
            for cell in cells if not seen else [c for c in cells if nb.cells.index(c) > plan_section]:
                try:
                    client.execute_cell(cell, nb.cells.index(cell))
                except CellExecutionError as err:
                    pytest.fail(f"{edition} on the {name} profile: {err}")
            check = new_code_cell(CHECK)
            client.execute_cell(check, 0)
            seen[name] = json.loads(check.outputs[0]["text"])
    for name, profile in PROFILES.items():
        want = expected(profile)
        got = seen[name]
        assert got[1:] == want[1:] and (want[0] is None or got[0] == want[0]), (name, got, want)
