"""Chapter 6's chat-template path: ChatML rows, a loss on the answers only (checked by decoding the labels), and
generation through the template; on the CPU, with the local student."""

import pytest

from cotlib import checkpoints, export, generate, train
from cotlib.hardware import HardwareReport
from cotlib.train import TrainConfig

CPU = HardwareReport("Linux", "3.13.0", "2.14.1", None, None, None, False, 2, 16.0)


def test_response_only_labels_mask_everything_before_the_last_answer():
    marker = [7, 8]
    assert train.response_only_labels([1, 7, 8, 4, 5, 7, 8, 9, 2], marker) == [-100] * 7 + [9, 2]
    assert train.response_only_labels([1, 2, 3], marker) == [-100] * 3  # no answer: nothing to learn from


def chat_rows(n):
    records = generate.load_records(checkpoints.DIR / "cot_records.jsonl")
    return export.to_chat(export.select(records))[:n]


@pytest.mark.parametrize("unsloth", [True, False], ids=["unsloth", "transformers+peft"])
def test_the_chat_path_trains_on_the_answers_only(tmp_path, monkeypatch, unsloth):
    from datasets import Dataset

    if not unsloth:
        monkeypatch.setenv("COTLIB_NO_UNSLOTH", "1")
    cfg = TrainConfig.for_machine(CPU, max_steps=2, save_steps=100, output_dir=str(tmp_path / "out"),
                                  train_on_responses_only=True)
    model, tokenizer, path = train.load_model(cfg)
    assert path == ("unsloth (CPU mode)" if unsloth else "transformers + peft")
    tokenizer = train.with_chat_template(tokenizer, cfg.model_name)
    rows = chat_rows(8)
    dataset = Dataset.from_list(rows).map(train.chat_formatting_func(tokenizer), batched=True)
    assert dataset[0]["text"].startswith("<|im_start|>system\n") and "<|im_start|>assistant\n" in dataset[0]["text"]
    trainer = train.make_trainer(model, tokenizer, dataset, cfg, chat=True)
    answer = rows[0]["messages"][2]["content"]
    trained = train.trained_text(trainer, tokenizer, 0)
    assert trained.startswith(answer) and "<|im_start|>" not in trained  # the question and system turn: masked
    assert trained[len(answer):].strip() in ("<|im_end|>", "")  # at most the end-of-turn token after the answer
    result = train.timed_train(trainer)
    assert result["steps"] == 2
    reply = train.generate_answer(model, tokenizer, "What is 3 × 4?", max_new_tokens=24, chat=True)
    assert isinstance(reply, str) and "<|im_start|>" not in reply
