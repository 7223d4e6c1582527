from cotlib import hardware
from cotlib.hardware import HardwareReport, recommend


def report(**kw):
    base = dict(os="Linux", python="3.11.7", torch="2.14.1", cuda=None, gpu_name=None, vram_gb=None, bf16=False,
                cpu_cores=2, ram_gb=24.0)
    base.update(kw)
    return HardwareReport(**base)


def test_detect_without_a_gpu(monkeypatch):
    """What chapter 1 sees on a CPU-only machine, whatever this host has (a GPU host included)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    found = hardware.detect()
    assert found.gpu_name is None and found.vram_gb is None and found.cuda is None and not found.bf16
    assert found.cpu_cores >= 1
    assert found.ram_gb is not None and found.ram_gb > 0
    assert found.python.split(".")[:2] in (["3", "11"], ["3", "12"], ["3", "13"])
    assert found.torch == torch.__version__  # the pinned stack includes torch


def test_cpu_recommendation_is_the_local_student():
    setup = recommend(report())
    assert setup.device == "cpu" and "SmolLM2" in setup.model and not setup.load_in_4bit
    assert "No CUDA GPU" in setup.why and "2 CPU cores" in setup.why


def test_8gb_gpu_gets_the_original_tutorial_setup():
    setup = recommend(report(cuda="12.4", gpu_name="NVIDIA GeForce RTX 3070", vram_gb=8.0))
    assert (setup.device, setup.model, setup.max_seq_length, setup.batch_size, setup.load_in_4bit) == (
        "cuda", hardware.GPU_MODEL, 2048, 2, True)


def test_small_and_large_gpus():
    small = recommend(report(cuda="12.4", gpu_name="GTX 1650", vram_gb=4.0))
    assert small.model == hardware.SMALL_GPU_MODEL and small.batch_size == 1
    big = recommend(report(cuda="12.4", gpu_name="NVIDIA A100", vram_gb=40.0))
    assert big.model == hardware.GPU_MODEL and big.batch_size > 2


def test_versions_lists_key_packages():
    found = hardware.versions()
    assert found["camel-ai"] == "0.2.90"
    assert found["cotlib"] != "not installed"
    assert hardware.versions(("surely-not-a-package-xyz",)) == {"surely-not-a-package-xyz": "not installed"}
