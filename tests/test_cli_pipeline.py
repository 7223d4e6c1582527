"""The pipeline on the command line: flags and config files from the dataclasses, then generate → export → push →
train → eval. The fast parts run in this process (``cli.main``); push, train and eval run ``python -m cotlib.cli``
(the Hub client reads its endpoint at import, and Unsloth patches transformers when it loads)."""

import argparse
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import get_type_hints

import pytest

from cotlib import checkpoints, cli, flags, hub
from cotlib.generate import GenerationConfig, RunLimits, SearchParams
from cotlib.localhub import LocalHub
from cotlib.recipe import TrainConfig
from conftest import ROOT
from scripted_llm import AdditionWorld, ScriptedLLM

BUNDLED = checkpoints.DIR
OTHER_TEXT = {"language": "zh", "policy": "omega"}  # str fields whose values are checked


def other_values(obj) -> tuple[list[str], object]:
    """Flags that set every field of ``obj`` (nested dataclasses too) to another value, and the expected result."""
    argv, changes = [], {}
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        value, flag = getattr(obj, f.name), "--" + f.name.replace("_", "-")
        if is_dataclass(value):
            nested_argv, changes[f.name] = other_values(value)
            argv += nested_argv
            continue
        if "dict" in str(hints[f.name]):  # config-file only
            continue
        if isinstance(value, bool):
            new, given = not value, [f"--no-{flag[2:]}" if value else flag]
        elif isinstance(value, tuple):
            new, given = value[-1:], [flag, value[-1]]
        elif isinstance(value, str) or "str" in str(hints[f.name]):
            new = OTHER_TEXT.get(f.name, "other")
            given = [flag, new]
        else:
            new = (3 if value is None else value + 1) if "int" in str(hints[f.name]) else (value or 0) + 0.25
            given = [flag, str(new)]
        argv += given
        changes[f.name] = new
    return argv, replace(obj, **changes)


@pytest.mark.parametrize("cls", [GenerationConfig, SearchParams, RunLimits, TrainConfig, cli.ExportSettings,
                                 cli.TeacherChoice])
def test_every_field_has_a_flag(cls):
    parser = argparse.ArgumentParser()
    flags.add_flags(parser, cls, "section")
    argv, expected = other_values(cls())
    assert flags.build(cls, parser.parse_args(argv)) == expected
    assert flags.build(cls, parser.parse_args([])) == cls(), "no flag given: the dataclass's defaults"


def test_generation_config_nests_the_search_and_flags_stay_flat(capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "[generation.search] SearchParams" in help_text and "--c-puct FLOAT" in help_text
    assert "Config file only: prices" in help_text and "(default: 120.0)" in help_text


def print_config(capsys, *argv) -> dict:
    assert cli.main([*argv, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


def test_precedence_defaults_then_file_then_flags(tmp_path, capsys):
    run = tmp_path / "run.toml"
    run.write_text('[generation]\nlanguage = "zh"\nrationalize = true\n[generation.search]\nc_puct = 0.2\nalpha = 1\n'
                   '[limits]\ntimeout = 30\nprices = {"m" = [1, 2]}\n')
    out = print_config(capsys, "generate", "--config", str(run), "--c-puct", "0.3", "--no-rationalize")
    search = out["generation"]["search"]
    assert (search["c_puct"], search["alpha"], search["beta"]) == (0.3, 1.0, SearchParams().beta)  # flag, file, default
    assert out["generation"]["language"] == "zh" and out["generation"]["rationalize"] is False
    assert out["limits"]["timeout"] == 30.0 and out["limits"]["prices"] == {"m": [1.0, 2.0]}
    assert out["limits"]["max_retries"] == RunLimits().max_retries
    saved = tmp_path / "resolved.json"  # the printed settings, read back, are the same settings
    saved.write_text(json.dumps(out))
    assert print_config(capsys, "generate", "--config", str(saved)) == out
    export = print_config(capsys, "export", "--config", str(saved), "--no-include-rationalized", "--formats", "chat")
    assert export == {"export": {**flags.as_config(export=cli.ExportSettings())["export"],
                                 "include_rationalized": False, "formats": ["chat"]}}


@pytest.mark.parametrize("text, message", [
    ('[generation]\nc_pcut = 0.2\n', "[generation]: unknown key 'c_pcut'"),
    ('[generation.search]\npolicy = 3\n', "[generation] search policy: expected str, got 3"),
    ('[limits]\nmax_calls = "many"\n', "[limits] max_calls: expected int | None, got 'many'"),
    ('[teacher]\napi_key = "sk-0123456789abcdef"\n', "config files never hold keys or tokens"),
    ('[trainer]\nmax_steps = 3\n', "unknown section 'trainer'"),
    ('[generation]\nlanguage = "fr"\n', "invalid setting: language must be one of"),
    ('[generation\n', "not valid TOML"),
])
def test_a_bad_config_file_is_one_clear_error(tmp_path, capsys, text, message):
    run = tmp_path / "run.toml"
    run.write_text(text)
    assert cli.main(["generate", "--config", str(run), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert message in err and (str(run) in err or "invalid setting" in err) and "Traceback" not in err
    assert "sk-0123456789abcdef" not in err


def test_without_secrets_drops_keys_and_tokens_at_any_depth():
    config = {"teacher": {"api_key_env": "COTLIB_API_KEY", "api_key": "sk-1"}, "limits": {"max_tokens": 9},
              "x": [{"hf_token": "hf_1", "keep": 1}], "command": "cotlib generate"}
    assert flags.without_secrets(config) == {"teacher": {"api_key_env": "COTLIB_API_KEY"}, "limits": {"max_tokens": 9},
                                             "x": [{"keep": 1}], "command": "cotlib generate"}


def test_generate_saves_its_settings_and_they_reproduce_the_run(tmp_path, capsys, clean_env):
    world = AdditionWorld(3)
    qa, out = tmp_path / "qa.json", tmp_path / "records.jsonl"
    qa.write_text(json.dumps(world.qa()))
    run = tmp_path / "run.json"
    with ScriptedLLM(world) as server:
        run.write_text(json.dumps({"teacher": {"base_url": server.base_url, "model": server.model},
                                   "generation": {"max_calls_per_question": 6, "search": {"policy": "resample"}},
                                   "limits": {"concurrency": 2}}))
        assert cli.main(["generate", "--config", str(run), "--input", str(qa), "--output", str(out), "--no-progress",
                         "--max-new-tokens", "256"]) == 0
        assert "3 generated (0 already done)" in capsys.readouterr().out
        saved = cli.run_config_path(out)
        settings = json.loads(saved.read_text())
        assert settings["command"] == f"cotlib generate --input {qa} --output {out}"
        generation = settings["generation"]
        assert generation["max_new_tokens"] == 256 and generation["search"]["policy"] == "resample"
        assert settings["teacher"]["base_url"] == server.base_url
        calls = len(server.requests)
        assert cli.main(["generate", "--config", str(saved), "--input", str(qa), "--output", str(out),
                         "--no-progress"]) == 0
        assert "0 generated (3 already done)" in capsys.readouterr().out, "same settings: the same store key"
        assert len(server.requests) == calls


def test_export_writes_chapter_4s_files(tmp_path, capsys):
    assert cli.main(["export", "--records", str(BUNDLED / "cot_records.jsonl"), "--output-dir", str(tmp_path),
                     "--references", str(BUNDLED / "qa_train.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "of which reference solutions" in out and "dropped: not verified" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpaca.json", "alpaca_test.jsonl", "alpaca_train.jsonl",
                                                          "chat.jsonl", "prm.jsonl", "sharegpt.jsonl"]
    for name in ("alpaca_train.jsonl", "alpaca_test.jsonl"):  # the bundled checkpoint was made by chapter 4
        assert (tmp_path / name).read_text() == (BUNDLED / name).read_text()
    assert cli.main(["export", "--records", str(tmp_path / "none.jsonl"), "--output-dir", str(tmp_path)]) == 2
    assert "no records" in capsys.readouterr().err


def cotlib(*argv, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cotlib.cli", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout)


def read_card(root: Path, repo_id: str) -> str:
    with LocalHub(root, {hub.LOCAL_TOKEN: hub.LOCAL_USER}) as server:
        request = urllib.request.Request(f"{server.endpoint}/datasets/{repo_id}/resolve/main/README.md",
                                         headers={"Authorization": f"Bearer {hub.LOCAL_TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.read().decode()


def test_push_to_the_loopback_hub_puts_the_run_settings_in_the_card_and_no_secret(tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for name in ("cot_records.jsonl", "alpaca_train.jsonl", "alpaca_test.jsonl"):
        (outputs / name).write_bytes((BUNDLED / name).read_bytes())
    secret = "sk-test-secret-0123456789"
    env = {"COTLIB_API_KEY": secret, "HF_TOKEN": "hf_not_for_this_card_0123"}
    saved = cli.run_config_path(outputs / "cot_records.jsonl")
    saved.write_text(json.dumps({"command": "cotlib generate --input outputs/qa_train.jsonl --output "
                                            "outputs/cot_records.jsonl", "generation": {"search": {"c_puct": 0.3}}}))
    done = cotlib("push", "--repo-id", "cot-cli", "--local-hub", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "360 rows (train 293, test 67)" in done.stdout and "/datasets/learner/cot-cli" in done.stdout
    card = read_card(outputs / "hub", "learner/cot-cli")
    assert "## Reproduce this dataset" in card and "configs:" in card  # our card, merged with the pushed data's
    assert "cotlib generate --input outputs/qa_train.jsonl --output outputs/cot_records.jsonl --config run.json" in card
    settings = json.loads(card.split("```json\n")[1].split("```")[0])
    assert settings["generation"]["search"]["c_puct"] == 0.3, "the run's settings"
    assert settings["limits"] == flags.as_config(limits=RunLimits())["limits"], "fully resolved"
    assert secret not in card and env["HF_TOKEN"] not in card and hub.LOCAL_TOKEN not in card

    saved.write_text(json.dumps({"teacher": {"model": secret}}))  # a key that slipped into a value
    refused = cotlib("push", "--repo-id", "cot-cli-2", "--local-hub", cwd=tmp_path, env=env)
    assert refused.returncode == 2 and "nothing pushed" in refused.stderr and secret not in refused.stderr
    saved.write_text(json.dumps({"teacher": {"api_key": secret}}))
    refused = cotlib("push", "--repo-id", "cot-cli-2", "--local-hub", cwd=tmp_path, env=env)
    assert refused.returncode == 2 and "never hold keys" in refused.stderr and secret not in refused.stderr


def test_export_with_reasoning_traces_and_push_with_curation_counts(tmp_path, capsys):
    record = {"id": "r1", "question": "What is 6 × 7?", "answer": "42", "method": "direct", "verified": True,
              "solution": "6 × 7 = 42.\n\\boxed{42}", "reasoning": "Six sevens: 42."}
    records = tmp_path / "outputs" / "cot_records.jsonl"
    records.parent.mkdir()
    records.write_text(json.dumps(record) + "\n")
    argv = ["export", "--records", str(records), "--output-dir", str(records.parent), "--test-fraction", "0"]
    assert cli.main([*argv, "--reasoning", "--formats", "alpaca", "sharegpt"]) == 0
    (row,) = [json.loads(x) for x in (records.parent / "alpaca_train.jsonl").read_text().splitlines()]
    assert row["output"] == "<think>\nSix sevens: 42.\n</think>\n\n6 × 7 = 42.\n\\boxed{42}"
    (share,) = [json.loads(x) for x in (records.parent / "sharegpt.jsonl").read_text().splitlines()]
    assert share["conversations"][1]["value"] == row["output"]
    assert cli.main([*argv, "--formats", "alpaca"]) == 0  # without --reasoning: the answer alone
    assert json.loads((records.parent / "alpaca_train.jsonl").read_text())["output"] == record["solution"]
    (records.parent / "alpaca_test.jsonl").write_text("")
    (records.parent / "curation.json").write_text(json.dumps({"duplicate question": 3}))
    done = cotlib("push", "--repo-id", "cot-curated", "--local-hub", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| duplicate question | 3 |" in read_card(records.parent / "hub", "learner/cot-curated")


def test_help_and_settings_load_no_training_stack():
    code = ("import sys\nfrom cotlib import cli\ncli.main(['export', '--print-config'])\n"
            "print(sorted(m for m in ('torch', 'unsloth', 'datasets', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow  # 106 s measured (training and two evaluations; tests/test_train.py covers the parts in seconds)
def test_train_then_eval_on_the_local_student(tmp_path):
    machine = TrainConfig.for_machine()
    rows = (BUNDLED / "alpaca_train.jsonl").read_text().splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(rows[:8]) + "\n")
    (tmp_path / "test.jsonl").write_text("\n".join(rows[-4:]) + "\n")
    shown = cotlib("train", "--max-steps", "7", "--print-config", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-3000:]
    shown = json.loads(shown.stdout[shown.stdout.index("{"):])
    assert shown == flags.as_config(train=replace(machine, max_steps=7)), "this machine's setup, then the flags"

    trained = cotlib("train", "--data", "train.jsonl", "--eval-data", "test.jsonl", "--output-dir", "sft",
                     "--max-steps", "2", "--eval-steps", "1", "--grad-accum", "1", "--max-seq-length", "256",
                     cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "2 steps in" in trained.stdout and "training loss" in trained.stdout and "validation loss" in trained.stdout
    adapter = tmp_path / "sft" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    saved = json.loads((tmp_path / "sft" / "train.config.json").read_text())
    assert saved["train"]["max_steps"] == 2 and saved["command"].startswith("cotlib train --data train.jsonl")

    questions = BUNDLED / "qa_heldout.jsonl"
    scored = cotlib("eval", "--adapter", adapter, "--questions", questions, "--limit", "4", "--max-new-tokens", "48",
                    "--report", "report.json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "4 questions, accuracy" in scored.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["scores"]["questions"] == 4 and len(report["answers"]) == 4
    base = cotlib("eval", "--questions", questions, "--limit", "2", "--max-new-tokens", "16", cwd=tmp_path)
    assert base.returncode == 0 and "base model" in base.stdout and "2 questions" in base.stdout
