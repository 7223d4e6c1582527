"""The student learns to stop: on every training path and in both prompt formats, the last label of every row of a
padded batch is the EOS token (issue #23). SmolLM2 pads with its EOS token, so a collator that masks labels by
token id (transformers' DataCollatorForLanguageModeling) would hide exactly that label."""

import json

import pytest

from cotlib import checkpoints, export, generate, train
from cotlib.hardware import HardwareReport
from cotlib.train import TrainConfig

CPU = HardwareReport("Linux", "3.13.0", "2.14.1", None, None, None, False, 2, 16.0)


def rows(chat: bool, tokenizer):
    """Four rows of different lengths (the shortest, the longest and two between), so that the batch is padded."""
    from datasets import Dataset

    records = export.select(generate.load_records(checkpoints.DIR / "cot_records.jsonl"))
    formatted = export.to_chat(records) if chat else export.to_alpaca(records)
    by_length = sorted(formatted, key=lambda row: len(json.dumps(row, ensure_ascii=False)))
    n = len(by_length)
    dataset = Dataset.from_list([by_length[i] for i in (0, n // 3, 2 * n // 3, n - 1)])
    if chat:
        return dataset.map(train.chat_formatting_func(tokenizer), batched=True)
    return dataset.map(train.formatting_func(tokenizer.eos_token), batched=True)


@pytest.mark.parametrize("chat", [False, True], ids=["alpaca", "chat-template"])
@pytest.mark.parametrize("unsloth", [True, False], ids=["unsloth", "transformers+peft"])
def test_the_last_label_of_every_row_is_eos(tmp_path, monkeypatch, unsloth, chat):
    if not unsloth:
        monkeypatch.setenv("COTLIB_NO_UNSLOTH", "1")
    cfg = TrainConfig.for_machine(CPU, max_steps=1, output_dir=str(tmp_path / "out"), train_on_responses_only=chat,
                                  batch_size=4)
    model, tokenizer, path = train.load_model(cfg)
    assert path == ("unsloth (CPU mode)" if unsloth else "transformers + peft")
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the pitfall this test is about
    if chat:
        tokenizer = train.with_chat_template(tokenizer, cfg.model_name)
    trainer = train.make_trainer(model, tokenizer, rows(chat, tokenizer), cfg, chat=chat)
    batch = next(iter(trainer.get_train_dataloader()))
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert len(set(lengths)) > 1, "rows of different lengths: the batch is padded"
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for labels in batch["labels"].tolist():
        trained = [label for label in labels if label != -100]
        assert trained and trained[-1] == eos, tokenizer.decode(trained[-8:])
