"""The embedded student: the GGUF dequantized into a Hugging Face checkpoint that transformers loads and runs."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cotlib import local


def model_eos(path):
    import json

    return json.loads((path / "config.json").read_text())["eos_token_id"]


@pytest.mark.slow  # 34 s measured (converts the GGUF to a checkpoint in a private cache)
def test_student_checkpoint_is_materialized_once_and_generates(tmp_path):
    dest = tmp_path / "student"
    path = local.student_checkpoint(dest)
    assert path == dest and (dest / "config.json").is_file() and (dest / "model.safetensors").is_file()
    assert not (tmp_path / "student.partial").exists()
    stamp = (dest / "model.safetensors").stat().st_mtime_ns
    assert local.student_checkpoint(dest) == dest
    assert (dest / "model.safetensors").stat().st_mtime_ns == stamp  # cached, not rebuilt

    tokenizer = AutoTokenizer.from_pretrained(dest)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == model_eos(dest)
    model = AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32)
    assert "quantization_config" not in model.config.to_dict()
    assert 100e6 < model.num_parameters() < 200e6
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_student_tokenizer_has_the_gguf_eos():
    assert local.student_tokenizer().eos_token == "<|im_end|>"
