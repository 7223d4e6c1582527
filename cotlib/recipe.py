"""Chapter 6's training recipe as data: :class:`TrainConfig`, importable without torch or Unsloth.

:mod:`cotlib.train` re-exports it (``train.TrainConfig``); it lives here so that the command line can build its
flags and read config files without loading a training stack (importing :mod:`cotlib.train` imports Unsloth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GPU_MODEL = "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit"
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """The original tutorial's hyperparameters; ``for_machine`` adapts the model, precision and optimizer."""

    model_name: str = GPU_MODEL
    max_seq_length: int = 2048
    load_in_4bit: bool = True
    r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    batch_size: int = 2
    grad_accum: int = 4
    warmup_steps: int = 5
    max_steps: int = 30
    learning_rate: float = 2e-4
    optim: str = "adamw_8bit"
    weight_decay: float = 0.01
    lr_scheduler_type: str = "linear"
    seed: int = 3407
    train_on_responses_only: bool = False
    output_dir: str = "outputs/sft"
    save_steps: int = 10
    eval_steps: int = 10  # validation loss every this many steps (when there is a validation split)
    target_modules: tuple[str, ...] = TARGET_MODULES

    @classmethod
    def for_machine(cls, cuda: bool, cpu_checkpoint: str | None = None, **overrides: Any) -> TrainConfig:
        """GPU: the original recipe. CPU: the small local model in full precision, plain AdamW, shorter rows, and
        more, smaller updates at a higher learning rate: enough to learn the answer format in about three minutes."""
        if cuda:
            return cls(**overrides)
        base = dict(model_name=cpu_checkpoint or "", max_seq_length=512, load_in_4bit=False, optim="adamw_torch",
                    learning_rate=2e-3, grad_accum=2, max_steps=50, warmup_steps=5, save_steps=25, eval_steps=10)
        return cls(**{**base, **overrides})
