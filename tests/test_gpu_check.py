"""`make gpu-check` (scripts/gpu_check.py): stops at once with one line where there is no CUDA GPU; its summary line
says what a GPU run measured."""

import importlib.util
import os
import subprocess
import sys

from conftest import ROOT


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_stops_at_once_with_one_line():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "needs a CUDA GPU" in done.stderr


def test_the_summary_line_gives_peak_against_plan_speed_and_the_report():
    run = {"peak_allocated_gib": 3.3, "predicted_gib": 3.0, "seconds_per_step": 1.25,
           "report": {"before": {"accuracy": 0.4, "stops_on_eos": 0.0}, "after": {"accuracy": 0.6, "stops_on_eos": 0.95}}}
    line = gpu_check().summary({"gpu": "Tesla T4", "total_gib": 14.7}, {"unsloth": run},
                               ROOT / "bench" / "results" / "gpu-check-tesla-t4.json")
    assert line == ("gpu-check: Tesla T4 14.7 GiB · unsloth: peak 3.3 GiB (plan 3.0, +10%), 1.25 s/step, "
                    "accuracy 0.40→0.60, stops on EOS 0.00→0.95 → bench/results/gpu-check-tesla-t4.json")


def test_the_readme_t4_column_is_an_estimate_until_a_t4_result_exists():
    """Once `make gpu-check` has run on a T4, the README must quote its results file instead of "estimate"."""
    results = sorted((ROOT / "bench" / "results").glob("gpu-check-tesla-t4-*.json"))
    for readme, estimate in ((ROOT / "README.md", "Colab T4 (est.)"), (ROOT / "README.zh.md", "Colab T4（估计）")):
        text = readme.read_text()
        if results:
            assert estimate not in text and results[-1].name in text, f"{readme.name}: fill the T4 column from {results[-1].name}"
        else:
            assert estimate in text, f"{readme.name}: no T4 run is measured yet, so its column must say it estimates"
