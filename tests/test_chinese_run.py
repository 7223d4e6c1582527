"""Chapter 3's code paths that differ by ``LANGUAGE``, run for real in Chinese on the local teacher, in small.

The fast tier does not execute the Chinese notebooks: their code is the English code (tests/test_editions.py) and
their stored outputs are guarded by their stamps. What ``LANGUAGE = "zh"`` changes is run here: the Chinese system
prompt and examples through camel's ChatAgent, the Chinese demo questions, and the engine (sampling, search) with
``language="zh"``. ``make test-all`` executes the Chinese chapter 3 itself.
"""

import re

from cotlib import config, data, generate, local, prompts, verify
from cotlib.client import RunLimits

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_chapter_3_in_chinese_small(tmp_path):
    local.ensure_teacher()  # the suite's teacher (make test starts it), or one started here
    endpoint = config.resolve(config.load_settings({}))
    assert endpoint.model == local.MODEL_ID
    agent = config.chat_agent(endpoint, prompts.SYSTEM_PROMPTS["zh"], examples=prompts.EXAMPLES["zh"],
                              temperature=0.0, max_tokens=384)
    assert CJK.search(prompts.SYSTEM_PROMPTS["zh"]) and all(CJK.search(q) for q, _ in prompts.EXAMPLES["zh"])
    solution = agent.step("计算 7 × 8 等于多少？").msgs[0].content
    assert solution.strip() and verify.check(solution, "56").reason

    mine = [p for p in data.split(data.bundled("demo"), "train") if p.meta.get("lang") == "zh"]
    assert mine and all(CJK.search(p.question) for p in mine)
    pairs = [q for q in mine if q.meta.get("type") == "times_table"][:2] + [
        next(p for p in mine if p.meta.get("type") == "word_problem")]
    cfg = generate.GenerationConfig(language="zh", max_calls_per_question=6, max_new_tokens=256)
    out = tmp_path / "cot_records.jsonl"
    run = generate.generate(pairs, out, endpoint=endpoint, cfg=cfg, limits=RunLimits(concurrency=2))
    records = {r.id: r for r in generate.load_records(out)}
    assert set(records) == {p.id for p in pairs} and run.usage.calls == sum(r.calls for r in records.values())
    for pair in pairs:
        record = records[pair.id]
        assert record.language == "zh" and record.question == pair.question and 1 <= record.calls <= 6
        if record.verified:
            assert verify.check(record.solution, pair.answer).correct
        else:  # the whole budget spent: resampling, then the search, before giving up
            assert record.solution is None and record.calls == 6 and record.method == "failed"
