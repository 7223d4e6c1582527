"""`make gpu-check`: chapter 6 on the first CUDA GPU this project gets, on both training paths, measured.

Runs the English chapter 6, unchanged, in a fresh folder twice: with Unsloth, then with transformers + peft
(``COTLIB_NO_UNSLOTH=1``). Two measuring cells are added around it: peak GPU memory after section 6's training
(``torch.cuda.max_memory_allocated``) against ``train.plan_vram``'s prediction for the settings that ran, and the
seconds per step. The results, with the card and the before/after report (``sft_report.json``: accuracy,
``stops_on_eos``), go to ``bench/results/gpu-check-<card>-<date>.json``; one summary line is printed.

Without CUDA it stops at once with one line. Without internet (the Hub unreachable) it trains the local SmolLM2
student on the GPU instead of the recipe's Qwen2.5, and says so.

    python scripts/gpu_check.py [--timeout 540]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "06_unsloth_sft.ipynb"
RESULTS = ROOT / "bench" / "results"
MARK = "GPU-CHECK "

AFTER_TRAINING = """
import torch
_gpu_check = {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
              "seconds_per_step": round(result.metrics["train_runtime"] / trainer.state.global_step, 2)}
"""
AT_THE_END = f"""
import json
from pathlib import Path
_gpu_check.update(path=path, model=cfg.model_name, batch_size=cfg.batch_size, max_seq_length=cfg.max_seq_length,
                  load_in_4bit=cfg.load_in_4bit, weights=str(model.dtype),
                  predicted_gib=train.plan_vram(cfg.model_name, cfg.max_seq_length, cfg.batch_size,
                                                load_in_4bit=cfg.load_in_4bit).total_gb,
                  report=json.loads(Path("outputs/sft_report.json").read_text()))
print({MARK!r} + json.dumps(_gpu_check))
"""
LOCAL_STUDENT = """
import cotlib.hardware
from cotlib import local

cotlib.hardware.GPU_MODEL = cotlib.hardware.SMALL_GPU_MODEL = str(local.student_checkpoint())
"""


def card() -> dict:
    """The GPU, or exit with one line when there is none."""
    try:
        import torch
    except ImportError:
        sys.exit("gpu-check: torch is not installed here (run `make install` first)")
    if not torch.cuda.is_available():
        sys.exit(f"gpu-check needs a CUDA GPU and torch {torch.__version__} sees none: run it on a GPU machine "
                 "(Colab: Runtime → Change runtime type → T4 GPU)")
    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "total_gib": round(props.total_memory / 2**30, 1),
            "bf16": bool(torch.cuda.is_bf16_supported()), "torch": torch.__version__, "cuda": torch.version.cuda}


def hub_reachable() -> bool:
    from cotlib.hardware import GPU_MODEL

    try:
        from huggingface_hub import model_info

        model_info(GPU_MODEL, timeout=10)
        return True
    except Exception:  # noqa: BLE001  (offline, DNS, proxy: any failure means "not reachable from here")
        return False


def run_chapter(folder: Path, unsloth: bool, offline: bool, timeout: int) -> dict:
    """Chapter 6 in ``folder`` on one path; its measurements."""
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    nb = nbformat.read(CHAPTER, as_version=4)
    train_cell = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "trainer.train(" in c.source)
    nb.cells.insert(train_cell + 1, new_code_cell(AFTER_TRAINING))
    nb.cells.append(new_code_cell(AT_THE_END))
    if offline:
        nb.cells.insert(0, new_code_cell(LOCAL_STUDENT))
    os.environ.pop("COTLIB_NO_UNSLOTH", None)
    if not unsloth:
        os.environ["COTLIB_NO_UNSLOTH"] = "1"
    started = time.monotonic()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    printed = "".join(out.get("text", "") for out in nb.cells[-1].outputs)
    found = json.loads(printed.split(MARK, 1)[1])
    found["chapter_seconds"] = round(time.monotonic() - started)
    return found


def summary(gpu: dict, runs: dict, path: Path) -> str:
    parts = [f"gpu-check: {gpu['gpu']} {gpu['total_gib']} GiB"]
    for name, r in runs.items():
        before, after = r["report"]["before"], r["report"]["after"]
        error = (r["peak_allocated_gib"] - r["predicted_gib"]) / r["predicted_gib"]
        parts.append(f"{name}: peak {r['peak_allocated_gib']} GiB (plan {r['predicted_gib']}, {error:+.0%}), "
                     f"{r['seconds_per_step']} s/step, accuracy {before['accuracy']:.2f}→{after['accuracy']:.2f}, "
                     f"stops on EOS {before['stops_on_eos']:.2f}→{after['stops_on_eos']:.2f}")
    return " · ".join(parts) + f" → {path.relative_to(ROOT)}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=int, default=540, help="seconds per notebook cell")
    args = parser.parse_args(argv)
    gpu = card()
    offline = not hub_reachable()
    if offline:
        print("gpu-check: the Hub is unreachable, so the recipe's Qwen2.5 cannot be downloaded; measuring with the "
              "local SmolLM2-135M student on the GPU")
    os.environ.setdefault("COTLIB_OFFLINE", "1")  # chapter 6 publishes to and reads from the loopback Hub
    runs = {}
    for name, unsloth in (("unsloth", True), ("transformers + peft", False)):
        folder = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        try:
            runs[name] = run_chapter(folder, unsloth, offline, args.timeout)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    today = datetime.date.today().isoformat()
    slug = re.sub(r"[^a-z0-9]+", "-", gpu["gpu"].lower()).strip("-")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"gpu-check-{slug}-{today}.json"
    path.write_text(json.dumps({"date": today, "card": gpu, "offline_student": offline, "runs": runs}, indent=2) + "\n")
    print(summary(gpu, runs, path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
