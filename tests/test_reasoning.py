"""Reasoning teachers: the trace kept apart from the answer, and only the answer verified."""

import pytest

from cotlib import config, data, generate, reasoning
from cotlib.generate import GenerationConfig, RunLimits
from scripted_llm import ScriptedLLM

FAST = RunLimits(concurrency=2, timeout=5.0, max_retries=2, backoff_base=0.01, backoff_cap=0.02)
QA = {"What is 6 × 7?": "42"}
TRACE = "Let me think. Maybe 6 × 7 = \\boxed{41}? No: 6 × 7 = 42."
ANSWER = "Step 1: 6 × 7 = 42.\nThe answer is \\boxed{42}."


@pytest.mark.parametrize(
    ("content", "field", "answer", "trace", "cut_off"),
    [
        (f"<think>{TRACE}</think>\n{ANSWER}", None, ANSWER, TRACE, False),  # Qwen3/QwQ without a reasoning parser
        (f"{TRACE}</think>\n\n{ANSWER}", None, ANSWER, TRACE, False),  # the template opened <think> in the prompt
        (ANSWER, TRACE, ANSWER, TRACE, False),  # DeepSeek's reasoner, vLLM's reasoning parser
        (f"<think>{TRACE}", None, "", TRACE, True),  # the token limit cut the trace
        (ANSWER, None, ANSWER, None, False),  # not a reasoning model
        (f"Intro <think>{TRACE}</think> {ANSWER}", None, f"Intro  {ANSWER}", TRACE, False),
    ],
)
def test_split(content, field, answer, trace, cut_off):
    assert reasoning.split(content, field) == reasoning.Reply(answer, trace, cut_off)


def serve(style, right=True):
    """A scripted reasoning teacher: a tentative wrong \\boxed{41} inside the trace, then the answer after it."""
    final = ANSWER if right else "Step 1: 6 × 7 = 41.\nThe answer is \\boxed{41}."

    def reply(body):
        if style == "tags":
            return f"<think>{TRACE.replace('41', '42') if not right else TRACE}</think>\n{final}"
        if style == "field":
            return {"content": final, "reasoning_content": TRACE, "reasoning_tokens": 17}
        return f"<think>{TRACE} and on and on"  # cut off

    return ScriptedLLM(reply)


def run(server, tmp_path, **cfg):
    endpoint = config.Endpoint(server.base_url, server.model, config.Secret("x"))
    summary = generate.generate(data.load_qa(QA), tmp_path / "r.jsonl", endpoint=endpoint, limits=FAST,
                                cfg=GenerationConfig(**cfg), progress=False)
    (record,) = generate.load_records(tmp_path / "r.jsonl")
    return summary, record


@pytest.mark.parametrize("style", ["tags", "field"])
def test_both_styles_verify_on_the_answer_and_keep_the_trace(style, tmp_path):
    with serve(style) as server:
        summary, record = run(server, tmp_path)
    assert record.verified and record.method == "direct" and record.solution == ANSWER
    assert record.reasoning == TRACE and "<think>" not in record.solution and record.extracted == "42"
    assert 0 < record.tokens_reasoning < record.tokens_out and summary.usage.tokens_reasoning == record.tokens_reasoning
    if style == "field":
        assert record.tokens_reasoning == 17  # as the server reported it


def test_a_right_box_inside_the_trace_never_counts(tmp_path):
    with serve("tags", right=False) as server:  # the trace ends at 42, the answer says 41
        _, record = run(server, tmp_path, max_calls_per_question=3)
    assert not record.verified and record.method == "failed" and record.extracted == "41"
    assert "42" in record.reasoning


def test_a_cut_off_trace_is_not_verified_and_says_why(tmp_path):
    with serve("cut") as server:
        _, record = run(server, tmp_path, max_calls_per_question=2)
    assert not record.verified and record.verdict_reason == reasoning.CUT_OFF
    assert record.first_attempt == "" and record.reasoning.startswith("Let me think")


def test_camel_chat_agent_passes_the_reasoning_field_on():
    with serve("field") as server:
        endpoint = config.Endpoint(server.base_url, server.model, config.Secret("x"))
        reply = config.chat_agent(endpoint, "You solve problems.").step("What is 6 × 7?")
    message = reply.msgs[0]
    assert message.content == ANSWER and message.reasoning_content == TRACE


def test_export_with_and_without_the_trace(tmp_path):
    from cotlib import export

    with serve("field") as server:
        _, record = run(server, tmp_path)
    selection = export.select([record])
    (plain,) = export.to_alpaca(selection)
    (traced,) = export.to_alpaca(selection, reasoning=True)
    assert plain["output"] == ANSWER and traced["output"] == f"<think>\n{TRACE}\n</think>\n\n{ANSWER}"
    assert reasoning.split(traced["output"]) == reasoning.Reply(ANSWER, TRACE)  # round trip
    (chat,) = export.to_chat(selection, reasoning=True)
    assert chat["messages"][2]["content"] == traced["output"]
    (share,) = export.to_sharegpt(selection)
    assert share == {"conversations": [{"from": "human", "value": "What is 6 × 7?"}, {"from": "gpt", "value": ANSWER}]}
