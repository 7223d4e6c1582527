"""Chapter 6 library: the VRAM planner, prompt formatting with EOS, the backend choice, adapters."""

import json

import pytest

from cotlib import data, local, train
from cotlib.hardware import SMALL_GPU_MODEL, HardwareReport, recommend
from cotlib.train import TrainConfig, plan_vram


def test_planner_is_monotonic_in_batch_sequence_rank_and_size():
    base = plan_vram(train.GPU_MODEL, 2048, 2).total_gb
    assert plan_vram(train.GPU_MODEL, 2048, 4).total_gb > base > plan_vram(train.GPU_MODEL, 2048, 1).total_gb
    assert plan_vram(train.GPU_MODEL, 4096, 2).total_gb > base > plan_vram(train.GPU_MODEL, 1024, 2).total_gb
    assert plan_vram(train.GPU_MODEL, 2048, 2, lora_r=64).total_gb > base
    sizes = [plan_vram(f"Qwen2.5-{s}-Instruct", 2048, 2).total_gb for s in ("0.5B", "1.5B", "3B", "7B")]
    assert sizes == sorted(sizes)


def test_planner_terms_for_known_configurations():
    plan = plan_vram("unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit", 2048, 2)
    assert 1.5 < plan.total_gb < 3.0  # CAMEL's T4 run: 2.2 GB peak reserved (shorter rows)
    assert abs(plan.terms["weights"] - 1.07) < 0.05  # 1.31B linear params at ~0.52 B + 233M embedding params at 2 B
    assert plan_vram("Qwen2.5-3B", 2048, 2).total_gb > 2.8  # Unsloth: 3B needs >= 3.5 GB (with its overheads)
    assert plan_vram("Qwen2.5-1.5B", 2048, 2, load_in_4bit=False).total_gb > plan.total_gb + 1.5
    assert plan_vram("Qwen2.5-1.5B", 2048, 2, fused_loss=False).total_gb > plan.total_gb + 4
    assert plan_vram("Qwen2.5-1.5B", 2048, 2, gradient_checkpointing=False).total_gb > plan.total_gb
    assert {name for name, _, why in plan.table() if why} == set(plan.terms)


def test_fit_budget_and_local_configs():
    batch, seq, plan = train.fit_budget("Qwen2.5-1.5B", budget_gb=8.0)
    assert plan.total_gb <= 8.0 and batch * seq >= 2 * 2048
    assert train.fit_budget("Qwen2.5-7B", budget_gb=1.0) is None
    shape = train.model_shape(str(local.student_checkpoint()))
    assert (shape.hidden, shape.layers, shape.vocab) == (576, 30, 49152)
    with pytest.raises(ValueError, match="unknown model"):
        train.model_shape("some/other-model")


def test_alpaca_prompt_ends_with_eos_for_training_only():
    row = train.format_alpaca("What is 2+2?", "", "4", eos_token="</s>")
    assert row.startswith("Below is an instruction") and "### Instruction:\nWhat is 2+2?" in row and row.endswith("4</s>")
    assert train.format_alpaca("What is 2+2?").endswith("### Response:\n")  # a generation prompt has no EOS
    batch = train.formatting_func("<|im_end|>")({"instruction": ["a", "b"], "input": ["", ""], "output": ["1", "2"]})
    assert [t.rsplit("### Response:\n", 1)[1] for t in batch["text"]] == ["1<|im_end|>", "2<|im_end|>"]
    with pytest.raises(ValueError, match="no EOS"):
        train.formatting_func("")


def gpu_report(vram_gb):
    """A machine with a CUDA GPU of ``vram_gb`` GB (None: no GPU)."""
    gpu = vram_gb is not None
    return HardwareReport("Linux", "3.13.0", "2.14.1", "12.8" if gpu else None, "NVIDIA test GPU" if gpu else None,
                          vram_gb, gpu, 16, 64.0)


@pytest.mark.parametrize("vram_gb", [None, 4.0, 8.0, 24.0])
def test_the_training_setup_has_one_source(vram_gb):
    """TrainConfig takes the model, sequence length, batch and precision from hardware.recommend."""
    report = gpu_report(vram_gb)
    setup, cfg = recommend(report), TrainConfig.for_machine(report, cpu_checkpoint="/ckpt")
    assert (cfg.max_seq_length, cfg.batch_size, cfg.load_in_4bit) == (setup.max_seq_length, setup.batch_size,
                                                                    setup.load_in_4bit)
    assert cfg.model_name == ("/ckpt" if vram_gb is None else setup.model)
    if vram_gb == 4.0:
        assert (cfg.model_name, cfg.batch_size, cfg.max_seq_length) == (SMALL_GPU_MODEL, 1, 1024)


def test_backend_choice_and_machine_configs(monkeypatch):
    assert train.backend() == "unsloth (CPU mode)"  # this machine: Unsloth installed, no GPU
    monkeypatch.setenv("COTLIB_NO_UNSLOTH", "1")
    assert train.backend() == "transformers + peft"
    gpu = TrainConfig.for_machine(gpu_report(8.0))
    assert (gpu.model_name, gpu.load_in_4bit, gpu.optim, gpu.learning_rate, gpu.max_steps) == (
        train.GPU_MODEL, True, "adamw_8bit", 2e-4, 30)
    cpu = TrainConfig.for_machine(gpu_report(None), cpu_checkpoint="/ckpt", max_steps=3)
    assert (cpu.model_name, cpu.load_in_4bit, cpu.optim, cpu.max_steps) == ("/ckpt", False, "adamw_torch", 3)
    assert (cpu.r, cpu.lora_alpha, cpu.batch_size, cpu.grad_accum, cpu.seed) == (16, 16, 2, 2, 3407)
    assert gpu.grad_accum == 4 and cpu.learning_rate > gpu.learning_rate


def test_last_checkpoint_is_the_highest_step(tmp_path):
    assert train.last_checkpoint(tmp_path) is None
    for step in (2, 10, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    assert train.last_checkpoint(tmp_path).endswith("checkpoint-10")


def test_adapter_save_reload_and_merge_give_the_same_model(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(train, "backend", lambda: "transformers + peft")
    cfg = TrainConfig.for_machine(gpu_report(None))
    model, tokenizer, path = train.load_model(cfg)
    assert path == "transformers + peft"
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.02)  # a trained adapter: B is no longer zero
    inputs = tokenizer([train.format_alpaca("What is 2+2?")], return_tensors="pt")
    expected = model(**inputs).logits
    saved = train.save_adapter(model, tokenizer, tmp_path / "adapter")
    assert (saved / "adapter_config.json").is_file()
    reloaded, _ = train.load_adapter(saved, cfg)
    assert torch.allclose(reloaded(**inputs).logits, expected, atol=1e-4)
    merged_dir = train.save_merged(model, tokenizer, tmp_path / "merged")
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert torch.allclose(merged(**inputs).logits, expected, atol=1e-4)
    assert any("lora_B" in name for name, _ in model.named_parameters()), "merging consumed the adapter"
    assert torch.allclose(model(**inputs).logits, expected, atol=1e-4)  # still the adapter model, still pushable


def test_transformers_peft_path_trains_on_cpu(tmp_path, monkeypatch):
    from datasets import Dataset

    monkeypatch.setenv("COTLIB_NO_UNSLOTH", "1")
    cfg = TrainConfig.for_machine(gpu_report(None), max_steps=3,
                                  output_dir=str(tmp_path / "out"), save_steps=3)
    model, tokenizer, path = train.load_model(cfg)
    rows = [{"instruction": f"What is {i} + {i}?", "input": "", "output": f"\\\\boxed{{{2 * i}}}"} for i in range(8)]
    dataset = Dataset.from_list(rows).map(train.formatting_func(tokenizer.eos_token), batched=True)
    trainer = train.make_trainer(model, tokenizer, dataset, cfg)
    assert type(trainer).__name__ == "Trainer"  # TRL's SFTTrainer needs a GPU kernel without Unsloth
    result = train.timed_train(trainer)
    assert result["steps"] == 3 and result["losses"][-1] < result["losses"][0]
    assert train.last_checkpoint(cfg.output_dir).endswith("checkpoint-3")


def test_answers_stop_at_the_next_alpaca_heading():
    assert train.cut_at_markers("568 + 8 = 576\n\\boxed{576}\n\n### Response:\n\n### Response:") == "568 + 8 = 576\n\\boxed{576}"
    assert train.cut_at_markers("no heading here") == "no heading here"


def test_generation_stops_and_streams_into_one_output(capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = local.student_checkpoint()
    model, tokenizer = AutoModelForCausalLM.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    answer = train.generate_answer(model, tokenizer, "What is 568 + 8?", max_new_tokens=64, streamer=True)
    streamed = capsys.readouterr().out
    assert not any(marker in answer for marker in train.SECTION_MARKERS)
    assert streamed.strip() == answer.strip(), "the stream shows exactly the answer, once"


def test_batched_answers_match_one_at_a_time_and_the_report_holds_both_evaluations(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = local.student_checkpoint()
    model, tokenizer = AutoModelForCausalLM.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    side = tokenizer.padding_side
    questions = ["What is 2 × 3?", "A baker makes 50 muffins and sells 20. How many are left?", "计算 4 + 5 等于多少？"]
    batched = train.generate_answers(model, tokenizer, questions, max_new_tokens=24, batch_size=3)
    assert [c.text for c in batched] == [train.generate_answer(model, tokenizer, q, max_new_tokens=24) for q in questions]
    assert tokenizer.padding_side == side, "the tokenizer is left as it was"
    pairs = [data.QAPair(str(i), q, "6") for i, q in enumerate(questions)]
    scores, answers = train.evaluate(model, tokenizer, pairs, max_new_tokens=24)
    assert answers == [c.text for c in batched] and scores.questions == 3 and 0 <= scores.one_boxed_share <= 1
    assert 0 <= scores.stops_on_eos <= 1 and 0 <= scores.cut_at_heading <= 1
    one_token = train.generate_answers(model, tokenizer, questions, max_new_tokens=1, stop_strings=False)
    assert not any(c.stopped_on_eos for c in one_token)  # one token is a word here, never the EOS
    path = train.write_report(tmp_path / "sft_report.json", train_rows=300, steps=70, before=scores, after=scores)
    report = json.loads(path.read_text())
    assert report["train_rows"] == 300 and set(report["after"]) == {"accuracy", "one_boxed_share", "mean_chars", "questions",
                                                                   "stops_on_eos", "cut_at_heading"}


def test_gguf_export_runs_a_converter_on_path_or_gives_the_exact_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    steps = train.gguf_export("outputs/merged_16bit", "outputs/student-f16.gguf")
    assert "convert_hf_to_gguf.py outputs/merged_16bit --outfile outputs/student-f16.gguf" in steps
    assert "llama-quantize outputs/student-f16.gguf outputs/student-q4_k_m.gguf Q4_K_M" in steps
    converter = tmp_path / "bin" / "convert_hf_to_gguf.py"
    converter.parent.mkdir()
    converter.write_text("import sys\nopen(sys.argv[sys.argv.index('--outfile') + 1], 'wb').write(b'GGUF' * 250000)\n")
    converter.chmod(0o755)
    out = tmp_path / "student-f16.gguf"
    assert train.gguf_export(tmp_path / "merged", out) == f"wrote {out} (1 MB)" and out.read_bytes()[:4] == b"GGUF"


@pytest.mark.parametrize("card, bf16, model, dtype, quantized", [
    ("Tesla T4", False, "Qwen/Qwen2.5-1.5B-Instruct", "float16", True),
    ("NVIDIA L4", True, "Qwen/Qwen2.5-1.5B-Instruct", "bfloat16", True),
    ("NVIDIA L4", True, "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit", "bfloat16", False),  # quantized already
])
def test_the_plain_path_loads_onto_the_gpu_in_its_precision(monkeypatch, card, bf16, model, dtype, quantized):
    import torch

    cfg = TrainConfig(model_name=model, load_in_4bit=True)
    assert train._plain_gpu_loading(cfg) == {}  # no CUDA: transformers' defaults, on the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    loading = train._plain_gpu_loading(cfg)
    assert loading["dtype"] == getattr(torch, dtype) and loading["device_map"] == {"": 0}
    assert ("quantization_config" in loading) == quantized
    if quantized:
        config = loading["quantization_config"]
        assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_compute_dtype == getattr(torch, dtype)


def test_a_completion_says_whether_it_ended_on_eos_and_whether_the_guard_cut_it():
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(local.student_checkpoint())
    tokenizer.pad_token = tokenizer.eos_token  # as train.load_model sets it
    eos = tokenizer.eos_token_id

    class Scripted:  # a model that answers with the given token ids
        device, generation_config = torch.device("cpu"), None

        def __init__(self, rows):
            self.rows = rows

        def generate(self, input_ids, max_new_tokens, **kwargs):
            width = max(len(r) for r in self.rows)
            tail = [r + [tokenizer.pad_token_id] * (width - len(r)) for r in self.rows]
            return torch.cat([input_ids, torch.tensor(tail)], dim=1)

    stops = tokenizer("The answer is \\boxed{6}.", add_special_tokens=False)["input_ids"] + [eos]
    runs_on = tokenizer("The answer is 6.\n### Instruction:\nWhat", add_special_tokens=False)["input_ids"]
    assert len(runs_on) > len(stops)  # padding (the EOS here) only ever follows an answer that ended
    done, cut = train.generate_answers(Scripted([stops, runs_on]), tokenizer, ["a", "b"], 64, stop_strings=False)
    assert (done.text, done.stopped_on_eos, done.cut_at_heading) == ("The answer is \\boxed{6}.", True, False)
    assert (cut.text.strip(), cut.stopped_on_eos, cut.cut_at_heading) == ("The answer is 6.", False, True)
