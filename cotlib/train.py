"""Chapter 6: LoRA supervised fine-tuning with Unsloth, a VRAM planner, and before/after evaluation.

One code path for three kinds of machine (the chosen path is printed, never silent):

- CUDA GPU + Unsloth → Qwen2.5-1.5B-Instruct in 4-bit, as in the original tutorial;
- CPU + Unsloth (its CPU mode) → the local SmolLM2-135M-Instruct checkpoint from :mod:`cotlib.local`;
- no Unsloth importable (macOS, some Windows) → transformers + peft with the same hyperparameters.

Import this module before trl/transformers: Unsloth must patch them first.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _unsloth_available() -> bool:
    """Unsloth installed and not switched off with ``COTLIB_NO_UNSLOTH=1`` (to compare with transformers + peft)."""
    return os.environ.get("COTLIB_NO_UNSLOTH") != "1" and importlib.util.find_spec("unsloth") is not None


if _unsloth_available():
    # Unsloth must patch trl/transformers/peft before they load. Its import banner and library warnings (missing
    # optional kernels, torch deprecations) are noise in a notebook; backend() says which path runs instead.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # "optional CPU kernels not installed"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import unsloth  # noqa: F401

from cotlib import verify
from cotlib.recipe import GPU_MODEL, TARGET_MODULES, TrainConfig  # noqa: F401 (train.GPU_MODEL: chapter 6)

ALPACA_PROMPT = """Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.

### Instruction:
{}

### Input:
{}

### Response:
{}"""


def backend() -> str:
    """Which training path this machine takes."""
    import torch

    if _unsloth_available():
        return "unsloth (CUDA)" if torch.cuda.is_available() else "unsloth (CPU mode)"
    return "transformers + peft"


# --------------------------------------------------------------------------------------------------- formatting


def format_alpaca(instruction: str, input_text: str = "", output: str = "", eos_token: str = "") -> str:
    """The Alpaca prompt; training rows end with the EOS token, or generation never learns to stop."""
    return ALPACA_PROMPT.format(instruction, input_text, output) + (eos_token if output else "")


def formatting_func(eos_token: str):
    """A batched ``dataset.map`` function adding a ``text`` column (the original ``formatting_prompts_func``)."""
    if not eos_token:
        raise ValueError("the tokenizer has no EOS token: rows without it teach the model never to stop")

    def apply(batch: dict[str, list[str]]) -> dict[str, list[str]]:
        return {"text": [format_alpaca(i, x, o, eos_token) for i, x, o in
                         zip(batch["instruction"], batch["input"], batch["output"])]}

    return apply


#: Where a prompt's question and answer start: ChatML's turn markers (SmolLM2 and Qwen2.5 both use ChatML) and the
#: Alpaca headings. The response-only loss trains on what follows the answer marker and masks everything else.
MARKERS = {"chat": ("<|im_start|>user\n", "<|im_start|>assistant\n"), "alpaca": ("### Instruction:\n", "### Response:\n")}


def with_chat_template(tokenizer: Any, model_name: str) -> Any:
    """The student's chat template: Unsloth's ``get_chat_template`` (``qwen-2.5`` for Qwen, ``chatml`` otherwise)
    where Unsloth runs, else the tokenizer's own (SmolLM2's GGUF carries its ChatML template)."""
    if _unsloth_available():
        from unsloth.chat_templates import get_chat_template

        return get_chat_template(tokenizer, chat_template="qwen-2.5" if "qwen" in model_name.lower() else "chatml")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{model_name} has no chat template: use the Alpaca path")
    return tokenizer


def to_messages(batch: dict[str, list[str]]) -> dict[str, list]:
    """A batched ``dataset.map`` function turning Alpaca columns into chapter 4's chat ``messages`` (system, user,
    assistant), for datasets published in the Alpaca form."""
    from cotlib.export import SYSTEM_PROMPT

    return {"messages": [[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q},
                          {"role": "assistant", "content": a}] for q, a in zip(batch["instruction"], batch["output"])]}


def chat_formatting_func(tokenizer: Any):
    """A batched ``dataset.map`` function turning chapter 4's ``messages`` rows into a ``text`` column through the
    chat template. The template closes each turn with its end token; the text stops there (ChatML's newline after
    the last one is cut), so the last label of every row is the token generation learns to stop at."""

    def apply(batch: dict[str, list]) -> dict[str, list[str]]:
        return {"text": [tokenizer.apply_chat_template(m, tokenize=False).rstrip() for m in batch["messages"]]}

    return apply


def chat_prompt(tokenizer: Any, question: str) -> str:
    """The chat-template prompt of one question (the system message chapter 4's chat rows carry), ready for the
    assistant's answer."""
    from cotlib.export import SYSTEM_PROMPT

    return tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM_PROMPT},
                                          {"role": "user", "content": question}],
                                         tokenize=False, add_generation_prompt=True)


def response_only_labels(input_ids: Sequence[int], marker: Sequence[int]) -> list[int]:
    """Labels that train only on the last assistant turn: -100 up to and including the last ``marker`` (the
    assistant part's token ids), the tokens themselves after it; all -100 when the marker is missing."""
    for start in range(len(input_ids) - len(marker), -1, -1):
        if list(input_ids[start:start + len(marker)]) == list(marker):
            cut = start + len(marker)
            return [-100] * cut + list(input_ids[cut:])
    return [-100] * len(input_ids)


def trained_text(trainer: Any, tokenizer: Any, index: int = 0) -> str:
    """What the loss sees of one training row: the tokens whose label is not masked (-100), decoded."""
    row = trainer.train_dataset[index]
    return tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])


# ------------------------------------------------------------------------------------------------ the VRAM plan


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.hidden // self.heads

    def linear_params(self) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        return self.layers * (2 * h * h + 2 * h * kv + 3 * h * i)

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def lora_params(self, r: int, targets: Sequence[str] = TARGET_MODULES) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        dims = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
        return self.layers * sum(r * sum(dims[t]) for t in targets)


#: The Qwen2.5 family (config.json values), known offline.
QWEN25 = {
    "0.5B": ModelShape(896, 24, 14, 2, 4864, 151936, True),
    "1.5B": ModelShape(1536, 28, 12, 2, 8960, 151936, True),
    "3B": ModelShape(2048, 36, 16, 2, 11008, 151936, True),
    "7B": ModelShape(3584, 28, 28, 4, 18944, 152064, False),
}


def model_shape(model: str) -> ModelShape:
    """A known Qwen2.5 size (by name, e.g. ``unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit``) or a local config.json."""
    for size, shape in QWEN25.items():
        if f"-{size}".lower() in model.lower():
            return shape
    config = Path(model) / "config.json"
    if not config.is_file():
        raise ValueError(f"unknown model {model!r}: use a Qwen2.5 name (0.5B-7B) or a folder with config.json")
    c = json.loads(config.read_text())
    return ModelShape(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"],
                      c.get("num_key_value_heads", c["num_attention_heads"]), c["intermediate_size"], c["vocab_size"],
                      c.get("tie_word_embeddings", False))


@dataclass
class VramPlan:
    """Predicted peak GPU memory (GiB) and its terms, each with what it is."""

    terms: dict[str, float]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def total_gb(self) -> float:
        return round(sum(self.terms.values()), 2)

    def table(self) -> list[tuple[str, float, str]]:
        return [(name, round(gb, 3), self.notes.get(name, "")) for name, gb in self.terms.items()]


GIB = 2**30


def plan_vram(model: str, max_seq_length: int, batch_size: int, lora_r: int = 16, load_in_4bit: bool = True,
              gradient_checkpointing: str | bool = "unsloth", fused_loss: bool = True, optim: str = "adamw_8bit",
              targets: Sequence[str] = TARGET_MODULES) -> VramPlan:
    """Predict peak memory of LoRA SFT before loading anything.

    Terms: frozen weights (4-bit NF4 ≈ 0.52 B/param for the linear layers; embeddings stay 16-bit), LoRA adapters
    with their fp32 gradients and optimizer states, activations (with gradient checkpointing only the layer inputs
    are kept, and Unsloth's mode offloads even those to CPU RAM; one layer is recomputed at a time), the logits for
    the loss (Unsloth's fused cross-entropy computes them in chunks; the plain loss materializes batch × seq × vocab
    in fp32 twice), and the CUDA workspace/allocator slack.
    """
    s = model_shape(model)
    tokens = batch_size * max_seq_length
    weight_bytes = 0.52 if load_in_4bit else 2.0
    lora = s.lora_params(lora_r, targets)
    optim_bytes = 2 if "8bit" in optim else 8
    layer_inputs = tokens * s.hidden * 2 * s.layers
    terms = {
        "weights": (s.linear_params() * weight_bytes + s.embedding_params() * 2) / GIB,
        "lora + grads + optimizer": lora * (4 + 4 + optim_bytes) / GIB,
        "checkpointed layer inputs": 0.0 if gradient_checkpointing == "unsloth" else
        (layer_inputs if gradient_checkpointing else layer_inputs * 8) / GIB,
        "one layer's activations": tokens * (10 * s.hidden + 3 * s.intermediate) * 2 / GIB,
        "logits for the loss": tokens * s.vocab * (2 / 8 if fused_loss else 4 * 2) / GIB,
        "CUDA workspace + allocator": 0.3,
    }
    notes = {
        "weights": f"{(s.linear_params() + s.embedding_params()) / 1e9:.2f}B params, "
                   f"{'4-bit NF4' if load_in_4bit else '16-bit'} linear layers, 16-bit embeddings",
        "lora + grads + optimizer": f"{lora / 1e6:.1f}M LoRA params (r={lora_r}, {len(targets)} modules) × "
                                    f"(4 + 4 + {optim_bytes}) bytes",
        "checkpointed layer inputs": "offloaded to CPU RAM by Unsloth" if gradient_checkpointing == "unsloth" else
        ("kept on the GPU" if gradient_checkpointing else "no checkpointing: every layer's activations kept"),
        "one layer's activations": f"{tokens} tokens recomputed one layer at a time",
        "logits for the loss": "fused, chunked cross-entropy" if fused_loss else "full fp32 logits and their gradient",
        "CUDA workspace + allocator": "cuBLAS workspace and fragmentation (measured: about 0.3 GiB)",
    }
    return VramPlan(terms, notes)


def fit_budget(model: str, budget_gb: float = 8.0, seq_lengths: Sequence[int] = (512, 1024, 2048, 4096, 8192),
               batch_sizes: Sequence[int] = (1, 2, 4, 8, 16), **kwargs: Any) -> tuple[int, int, VramPlan] | None:
    """The largest (batch × sequence) tokens per step that fit ``budget_gb``, preferring longer sequences."""
    best = None
    for seq in seq_lengths:
        for batch in batch_sizes:
            plan = plan_vram(model, seq, batch, **kwargs)
            if plan.total_gb <= budget_gb and (best is None or (batch * seq, seq) > (best[0] * best[1], best[1])):
                best = (batch, seq, plan)
    return best


# ------------------------------------------------------------------------------------------------ train and use


def _no_progress_bars(fn: Callable[..., T]) -> Callable[..., T]:
    """Loading and saving a small model takes under a second: its bars would only stay in a stored notebook at 0%."""
    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> T:
        from transformers.utils import logging as transformers_logging

        was_enabled = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                transformers_logging.enable_progress_bar()

    return quiet


@_no_progress_bars
def load_model(cfg: TrainConfig) -> tuple[Any, Any, str]:
    """Base model + tokenizer, wrapped with LoRA adapters; returns (model, tokenizer, path taken)."""
    from cotlib.hub import model_source

    path, source = backend(), model_source(cfg.model_name)
    if path.startswith("unsloth"):
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=source, max_seq_length=cfg.max_seq_length, dtype=None, load_in_4bit=cfg.load_in_4bit)
        model = FastLanguageModel.get_peft_model(
            model, r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
            target_modules=list(cfg.target_modules), use_gradient_checkpointing="unsloth", random_state=cfg.seed)
    else:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **_plain_gpu_loading(cfg))
        if getattr(model, "is_loaded_in_4bit", False):
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        model = get_peft_model(model, LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                 bias="none", target_modules=list(cfg.target_modules),
                                                 task_type="CAUSAL_LM"))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, path


def _plain_gpu_loading(cfg: TrainConfig) -> dict[str, Any]:
    """transformers' loading arguments for the plain path: on a CUDA GPU the model goes onto it, in bfloat16 where
    the card has it (float16 on a T4), and in 4-bit (bitsandbytes NF4) when the recipe asks for it and the
    checkpoint is not quantized already (Unsloth's ``-bnb-4bit`` checkpoints carry their own quantization)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    loading: dict[str, Any] = dict(dtype=dtype, device_map={"": 0})
    if cfg.load_in_4bit and "bnb-4bit" not in cfg.model_name:
        from transformers import BitsAndBytesConfig

        loading["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                            bnb_4bit_compute_dtype=dtype)
    return loading


def training_args(cfg: TrainConfig, evaluate: bool = False) -> dict[str, Any]:
    """The ``TrainingArguments``/``SFTConfig`` fields common to every path (precision chosen for this machine);
    ``evaluate`` adds a validation loss every ``cfg.eval_steps`` steps."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=cfg.output_dir, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, warmup_steps=cfg.warmup_steps, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, optim=cfg.optim, weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler_type, seed=cfg.seed, logging_steps=1, save_steps=cfg.save_steps,
        save_total_limit=2, report_to="none", bf16=bf16, fp16=cuda and not bf16,
        **(dict(eval_strategy="steps", eval_steps=cfg.eval_steps, per_device_eval_batch_size=8) if evaluate else {}),
    )


def needs_plain_trainer() -> bool:
    """Without Unsloth: transformers' Trainer, on any device. On a CPU, TRL 1.15's SFTTrainer always installs a
    Triton loss kernel, which cannot run there; on a GPU, the loss on answers only is Unsloth's
    ``train_on_responses_only``, which this path replaces with its own masking."""
    return backend() == "transformers + peft"


def make_trainer(model: Any, tokenizer: Any, dataset: Any, cfg: TrainConfig, eval_dataset: Any = None,
                 chat: bool = False) -> Any:
    """TRL's SFTTrainer with today's API (SFTConfig with max_length set explicitly, processing_class), or, where
    :func:`needs_plain_trainer`, transformers' Trainer on the same ``text`` column and hyperparameters. With
    ``cfg.train_on_responses_only`` the loss sees only the answers (Unsloth's ``train_on_responses_only``; the plain
    path masks the same way); ``chat`` says the rows went through the chat template (else: the Alpaca prompt)."""
    evaluate = eval_dataset is not None
    instruction_part, response_part = MARKERS["chat" if chat else "alpaca"]
    if needs_plain_trainer():
        from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

        marker = tokenizer(response_part, add_special_tokens=False)["input_ids"]

        def tokenize(ds: Any) -> Any:
            def encode(batch: dict[str, list[str]]) -> dict[str, list]:
                out = tokenizer(batch["text"], truncation=True, max_length=cfg.max_seq_length)
                out["labels"] = [response_only_labels(ids, marker) if cfg.train_on_responses_only else list(ids)
                                 for ids in out["input_ids"]]
                return out

            return ds.map(encode, batched=True, remove_columns=ds.column_names)

        # Labels are padded by length with -100, never masked by token id: SmolLM2 pads with its EOS token, and
        # DataCollatorForLanguageModeling would mask every EOS label with the padding (the student never learns
        # to stop). TRL's own collator pads the same way.
        collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
        return Trainer(model=model, args=TrainingArguments(**training_args(cfg, evaluate)),
                       train_dataset=tokenize(dataset), eval_dataset=tokenize(eval_dataset) if evaluate else None,
                       data_collator=collator, processing_class=tokenizer)
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**training_args(cfg, evaluate), max_length=cfg.max_seq_length, dataset_text_field="text",
                     packing=False)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, eval_dataset=eval_dataset,
                         args=args)
    if cfg.train_on_responses_only:
        from unsloth.chat_templates import train_on_responses_only

        trainer = train_on_responses_only(trainer, instruction_part=instruction_part, response_part=response_part)
    return trainer


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir``, to resume an interrupted training run."""
    found = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(found[-1]) if found else None


def memory_stats() -> dict[str, float]:
    """GPU peak reserved memory (GiB) on CUDA, peak RSS of this process (GiB) everywhere."""
    import resource

    import torch

    stats = {"peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    if torch.cuda.is_available():
        stats["gpu_peak_reserved_gb"] = round(torch.cuda.max_memory_reserved() / GIB, 2)
        stats["gpu_total_gb"] = round(torch.cuda.get_device_properties(0).total_memory / GIB, 2)
    return stats


SECTION_MARKERS = ("### Instruction:", "### Input:", "### Response:")  # the Alpaca prompt's own headings


def cut_at_markers(text: str) -> str:
    """The answer up to the first Alpaca heading: a model that has not learned EOS starts a new section there."""
    cuts = [text.find(marker) for marker in SECTION_MARKERS if marker in text]
    return text[: min(cuts)].rstrip() if cuts else text


def _streamer(tokenizer: Any) -> Any:
    """A ``TextStreamer`` that shows the answer as it grows in one output (one display updated in place in a
    notebook, plain prints elsewhere), cut at the Alpaca headings."""
    from transformers import TextStreamer

    class OneOutputStreamer(TextStreamer):
        def __init__(self) -> None:
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
            self.text, self.shown, self.handle = "", "", None
            try:
                from IPython import get_ipython
                from IPython.display import Pretty, display

                if get_ipython() is not None:
                    self.handle = display(Pretty(""), display_id=True)
            except ImportError:
                pass

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            self.text += text
            answer = cut_at_markers(self.text)
            if self.handle is not None:
                from IPython.display import Pretty

                self.handle.update(Pretty(answer))
            else:
                print(answer[len(self.shown):], end="\n" if stream_end else "", flush=True)
            self.shown = answer

    return OneOutputStreamer()


@dataclass(frozen=True)
class Completion:
    """One generated answer: its text (cut at an Alpaca heading, if the model started one), whether generation
    ended at an EOS token (not at ``max_new_tokens`` or a stop string), and whether the heading cut fired."""

    text: str
    stopped_on_eos: bool
    cut_at_heading: bool


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return ids | {tokenizer.eos_token_id}


def _complete(model: Any, tokenizer: Any, questions: Sequence[str], max_new_tokens: int, streamer: Any = None,
              chat: bool = False, stop_strings: bool = True) -> list[Completion]:
    """Greedy completions of the Alpaca prompts, or of the chat-template prompts with ``chat`` (left-padded),
    stopped at EOS or, with ``stop_strings``, at the Alpaca prompt's next heading."""
    import torch

    prompts = [chat_prompt(tokenizer, q) if chat else format_alpaca(q) for q in questions]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # new tokens must follow every prompt directly
    try:
        inputs = tokenizer(prompts, return_tensors="pt", padding=len(questions) > 1,
                           add_special_tokens=not chat).to(model.device)  # a chat prompt has its special tokens
        with torch.no_grad():
            stops = dict(stop_strings=list(SECTION_MARKERS), tokenizer=tokenizer) if stop_strings else {}
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer,
                                 pad_token_id=tokenizer.pad_token_id, **stops)
    finally:
        tokenizer.padding_side = side
    new, eos = out[:, inputs["input_ids"].shape[1]:], _eos_ids(model, tokenizer)
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    return [Completion(cut_at_markers(text), any(int(t) in eos for t in row), cut_at_markers(text) != text)
            for text, row in zip(texts, new)]


def generate_answer(model: Any, tokenizer: Any, question: str, max_new_tokens: int = 200, streamer: bool = False,
                    chat: bool = False) -> str:
    """Greedy completion of the Alpaca prompt (the chat template's with ``chat``), stopped at EOS or at the Alpaca
    prompt's next heading (optionally streamed into one output as it is produced)."""
    return _complete(model, tokenizer, [question], max_new_tokens, _streamer(tokenizer) if streamer else None,
                     chat)[0].text


def generate_answers(model: Any, tokenizer: Any, questions: Sequence[str], max_new_tokens: int = 160,
                     batch_size: int = 16, chat: bool = False, stop_strings: bool = True) -> list[Completion]:
    """Greedy answers to many questions, ``batch_size`` at a time, each stopped like :func:`generate_answer`
    (without stop strings: only EOS or ``max_new_tokens`` ends one)."""
    return [answer for start in range(0, len(questions), batch_size)
            for answer in _complete(model, tokenizer, questions[start : start + batch_size], max_new_tokens,
                                    chat=chat, stop_strings=stop_strings)]


@dataclass(frozen=True)
class Evaluation:
    """Held-out results: accuracy (verified answers), share with exactly one \\boxed{}, mean length, share of
    answers that ended at EOS (generated with no stop strings), share the heading guard had to cut."""

    accuracy: float
    one_boxed_share: float
    mean_chars: float
    questions: int
    stops_on_eos: float
    cut_at_heading: float


def evaluate(model: Any, tokenizer: Any, pairs: Sequence[Any], max_new_tokens: int = 160,
             batch_size: int = 16, chat: bool = False) -> tuple[Evaluation, list[str]]:
    """Score greedy answers to held-out questions with ``verify.check`` (prompted through the chat template with
    ``chat``); returns the scores and the answers. Generation has no stop strings here, so ``stops_on_eos``
    measures whether the model learned to stop; the Alpaca-heading cut is only a guard, counted in
    ``cut_at_heading``."""
    completions = generate_answers(model, tokenizer, [p.question for p in pairs], max_new_tokens, batch_size, chat,
                                   stop_strings=False)
    answers = [c.text for c in completions]
    correct = [verify.check(a, p.answer).correct for a, p in zip(answers, pairs)]
    n = len(pairs)
    scores = Evaluation(
        accuracy=round(sum(correct) / n, 4),
        one_boxed_share=round(sum(len(verify.boxed_answers(a)) == 1 for a in answers) / n, 4),
        mean_chars=round(statistics.mean(len(a) for a in answers), 1),
        questions=n,
        stops_on_eos=round(sum(c.stopped_on_eos for c in completions) / n, 4),
        cut_at_heading=round(sum(c.cut_at_heading for c in completions) / n, 4),
    )
    return scores, answers


def write_report(path: str | Path, train_rows: int, steps: int, before: Evaluation, after: Evaluation,
                 **extra: Any) -> Path:
    """``sft_report.json``: what was trained and how it scored before and after, for comparing runs."""
    from cotlib.data import write_atomic

    report = {"train_rows": train_rows, "steps": steps, "before": asdict(before), "after": asdict(after), **extra}
    return write_atomic(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def loss_curves(trainer: Any) -> dict[str, dict[int, float]]:
    """Training and validation loss by step, from the trainer's log."""
    history = trainer.state.log_history
    return {"training loss": {h["step"]: h["loss"] for h in history if "loss" in h},
            "validation loss": {h["step"]: h["eval_loss"] for h in history if "eval_loss" in h}}


def timed_train(trainer: Any, resume: bool = True) -> dict[str, Any]:
    """Train (resuming from the last checkpoint if any); returns time, steps and the loss curve."""
    start = time.perf_counter()
    checkpoint = last_checkpoint(trainer.args.output_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    losses = list(loss_curves(trainer)["training loss"].values())
    return {"seconds": round(time.perf_counter() - start, 1), "steps": trainer.state.global_step,
            "resumed_from": checkpoint, "losses": losses, "train_loss": result.training_loss,
            "seconds_per_step": round((time.perf_counter() - start) / max(1, trainer.state.global_step), 2)}


def for_inference(model: Any) -> Any:
    """Switch to generation (Unsloth's fast path when it is the backend)."""
    if backend().startswith("unsloth"):
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    model.eval()
    return model


def for_training(model: Any) -> Any:
    if backend().startswith("unsloth"):
        from unsloth import FastLanguageModel

        FastLanguageModel.for_training(model)
    model.train()
    return model


def save_adapter(model: Any, tokenizer: Any, path: str | Path) -> Path:
    """The LoRA adapter only (tens of MB) and the tokenizer."""
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@_no_progress_bars
def load_adapter(path: str | Path, cfg: TrainConfig) -> tuple[Any, Any]:
    """Base model + a saved adapter, ready for generation."""
    if backend().startswith("unsloth"):
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(model_name=str(path), max_seq_length=cfg.max_seq_length,
                                                             dtype=None, load_in_4bit=cfg.load_in_4bit)
    else:
        from peft import AutoPeftModelForCausalLM
        from transformers import AutoTokenizer

        model, tokenizer = AutoPeftModelForCausalLM.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))
    return for_inference(model), tokenizer


@_no_progress_bars
def save_merged(model: Any, tokenizer: Any, path: str | Path) -> Path:
    """Adapter merged into the base weights, saved in 16 bit: a plain checkpoint any library loads."""
    path = Path(path)
    if hasattr(model, "save_pretrained_merged"):
        with contextlib.redirect_stdout(io.StringIO()):
            model.save_pretrained_merged(str(path), tokenizer, save_method="merged_16bit")
    else:  # transformers + peft: merged into a fresh copy of the base, so ``model`` keeps its adapter
        _merged_copy(model).save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path


def _merged_copy(model: Any) -> Any:
    """A PEFT model's adapter merged into a new copy of its base model, in the dtype it computes in; a 4-bit base
    (bitsandbytes) is dequantized first, as Unsloth's ``merged_16bit`` does. ``model`` itself is left as it is
    (``merge_and_unload`` on it would strip the adapter that is pushed afterwards)."""
    import tempfile

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    source = model.peft_config[model.active_adapter].base_model_name_or_path
    placement = dict(device_map={"": 0}) if torch.cuda.is_available() else {}
    base = AutoModelForCausalLM.from_pretrained(source, dtype=model.get_base_model().dtype, **placement)
    if getattr(base, "hf_quantizer", None) is not None:
        base = base.dequantize()
    with tempfile.TemporaryDirectory() as adapter:
        model.save_pretrained(adapter)
        return PeftModel.from_pretrained(base, adapter).merge_and_unload()


GGUF_STEPS = """No GGUF converter here. The exact steps (a few minutes, needs internet and a C++ compiler):
  git clone --depth 1 https://github.com/ggml-org/llama.cpp
  pip install -r llama.cpp/requirements/requirements-convert_hf_to_gguf.txt
  python llama.cpp/convert_hf_to_gguf.py {merged} --outfile {out} --outtype f16
  cmake -S llama.cpp -B llama.cpp/build && cmake --build llama.cpp/build --target llama-quantize -j
  llama.cpp/build/bin/llama-quantize {out} {quantized} Q4_K_M"""


def gguf_export(merged_dir: str | Path, out: str | Path) -> str:
    """Convert a merged checkpoint to GGUF with llama.cpp's ``convert_hf_to_gguf.py`` when it is on ``PATH``;
    otherwise return the exact steps to do it."""
    import shutil
    import subprocess
    import sys

    converter = shutil.which("convert_hf_to_gguf.py") or shutil.which("convert-hf-to-gguf")
    if converter is None:
        quantized = str(out).replace(".gguf", "-q4_k_m.gguf").replace("-f16", "")
        return GGUF_STEPS.format(merged=merged_dir, out=out, quantized=quantized)
    subprocess.run([sys.executable, converter, str(merged_dir), "--outfile", str(out), "--outtype", "f16"],
                   check=True, capture_output=True)
    return f"wrote {out} ({Path(out).stat().st_size / 1e6:.0f} MB)"


def describe(cfg: TrainConfig) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
