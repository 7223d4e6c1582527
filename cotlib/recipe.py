"""Chapter 6's training recipe as data: :class:`TrainConfig`, importable without torch or Unsloth.

:mod:`cotlib.train` re-exports it (``train.TrainConfig``); it lives here so that the command line can build its
flags and read config files without loading a training stack (importing :mod:`cotlib.train` imports Unsloth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cotlib.hardware import GPU_MODEL, HardwareReport, TrainingSetup, detect, recommend

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
    def for_setup(cls, setup: TrainingSetup, cpu_checkpoint: str | None = None, **overrides: Any) -> TrainConfig:
        """The recipe for a recommended setup (:func:`cotlib.hardware.recommend`, the one source of the model,
        sequence length, batch size and precision). On a GPU: the original tutorial's hyperparameters. On the CPU:
        the local student (``cpu_checkpoint``, default :func:`cotlib.local.student_checkpoint`) unquantized,
        plain AdamW, and more, smaller updates at a higher learning rate: enough to learn the answer format in
        about three minutes."""
        base: dict[str, Any] = dict(max_seq_length=setup.max_seq_length, batch_size=setup.batch_size,
                                    load_in_4bit=setup.load_in_4bit, model_name=setup.model)
        if setup.device == "cpu":
            if cpu_checkpoint is None and "model_name" not in overrides:
                from cotlib.local import student_checkpoint

                cpu_checkpoint = str(student_checkpoint())
            base.update(model_name=cpu_checkpoint or "", optim="adamw_torch", learning_rate=2e-3, grad_accum=2,
                        max_steps=50, warmup_steps=5, save_steps=25, eval_steps=10)
        return cls(**{**base, **overrides})

    @classmethod
    def for_machine(cls, report: HardwareReport | None = None, cpu_checkpoint: str | None = None,
                    **overrides: Any) -> TrainConfig:
        """:meth:`for_setup` for this machine (or the given report): what ``cotlib doctor`` and chapter 1 recommend."""
        return cls.for_setup(recommend(report or detect()), cpu_checkpoint, **overrides)
