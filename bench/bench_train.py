"""CPU training benchmark: Unsloth's CPU mode vs transformers + peft, same model, data and hyperparameters.

Each path runs in its own process (Unsloth patches transformers when imported; ``COTLIB_NO_UNSLOTH=1`` keeps it
out), trains the local SmolLM2-135M student with LoRA r=16 on the same 64 Alpaca rows, and reports seconds per
optimizer step (after a warm-up step) and the process's peak RSS.

Run: .venv/bin/python bench/bench_train.py [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, tempfile, time
from cotlib import data, hardware, train
from datasets import Dataset

steps = int(sys.argv[1])
cfg = train.TrainConfig.for_setup(hardware.recommend(hardware.detect()), max_steps=steps,
                                    save_steps=10_000, output_dir=tempfile.mkdtemp())
model, tokenizer, path = train.load_model(cfg)
rows = [{"instruction": p.question, "input": "", "output": f"Step 1: work it out.\nThe answer is \\boxed{{{p.answer}}}."}
        for p in data.split(data.bundled("demo"), "train")[:64]]
dataset = Dataset.from_list(rows).map(train.formatting_func(tokenizer.eos_token), batched=True)
trainer = train.make_trainer(model, tokenizer, dataset, cfg)
stamps = []

from transformers import TrainerCallback

class Clock(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        stamps.append(time.perf_counter())

trainer.add_callback(Clock())
trainer.args.disable_tqdm = True
start = time.perf_counter()
trainer.train()
per_step = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
print(json.dumps({"path": path, "s_per_step": per_step, "first_step_s": stamps[0] - start,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "losses": losses}))
"""


def run(steps: int, no_unsloth: bool) -> dict:
    env = {**os.environ, "COTLIB_NO_UNSLOTH": "1" if no_unsloth else "0"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the {'transformers+peft' if no_unsloth else 'unsloth'} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    results = [run(args.steps, no_unsloth=False), run(args.steps, no_unsloth=True)]
    print(f"SmolLM2-135M, LoRA r=16, batch 2 x grad-accum 4, max_length 512, {args.steps} steps, 64 rows, CPU")
    for r in results:
        print(f"{r['path']:<22} {r['s_per_step']:6.2f} s/step (first step {r['first_step_s']:5.1f} s)  "
              f"peak RSS {r['peak_rss_gb']:.2f} GiB  loss {r['losses'][0]:.2f} -> {r['losses'][-1]:.2f}")
    u, t = results
    print(f"transformers+peft / unsloth: time per step {t['s_per_step'] / u['s_per_step']:.2f}x, "
          f"peak RSS {t['peak_rss_gb'] / u['peak_rss_gb']:.2f}x")


if __name__ == "__main__":
    main()
