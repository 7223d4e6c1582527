"""The original tutorial's interface, camel's ``CoTDataGenerator``, running cotlib's engine."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cotlib import config as cfgmod
from cotlib import verify
from cotlib.client import RunLimits, Teacher
from cotlib.data import QAPair, load_qa, question_id, write_atomic
from cotlib.generate import run_sync
from cotlib.records import CoTRecord
from cotlib.solve import GenerationConfig, solve_one


def endpoint_of(agent: Any) -> cfgmod.Endpoint:
    """The endpoint a camel ``ChatAgent`` talks to.

    camel 0.2.90 keeps a backend's URL and key in private attributes (``_url``, ``_api_key``) and offers no public
    accessor: this is the one place cotlib reads them, and tests/test_generate.py fails when camel changes them.
    """
    backend = agent.model_backend.current_model  # a ChatAgent holds a camel ModelManager
    url, key = getattr(backend, "_url", None), getattr(backend, "_api_key", None)
    if not url:
        raise cfgmod.ConfigError(f"cannot read the URL of {type(backend).__name__}: camel changed its model backends; "
                                 "pass an agent built by cotlib.config.chat_agent with a supported camel version")
    return cfgmod.Endpoint(str(url), str(backend.model_type), cfgmod.Secret(key or "not-needed"))


class CoTDataGenerator:
    """The original tutorial's interface (camel's ``CoTDataGenerator``), running this module's engine.

    ``get_answer``/``verify_answer``/``solve``/``import_qa_from_json``/``export_solutions`` read as in the tutorial;
    verification is :func:`cotlib.verify.check` (the ``verifier_agent``, if given, is only the LLM judge for free-text
    answers), and ``solve`` returns a verified solution or ``None``, never an unverified one.
    """

    def __init__(self, generator_agent: Any, golden_answers: dict[str, str] | None = None, verifier_agent: Any = None,
                 search_limit: int = 24, cfg: GenerationConfig | None = None, limits: RunLimits = RunLimits(),
                 examples: Sequence[tuple[str, str]] = ()) -> None:
        self.generator_agent, self.verifier_agent = generator_agent, verifier_agent
        self.examples = list(examples)  # worked examples given to the agent again after each reset
        self.golden_answers: dict[str, str] = {}
        self.import_qa_from_json(golden_answers or {})
        self.endpoint = endpoint_of(generator_agent)
        self.cfg = cfg or GenerationConfig(max_calls_per_question=search_limit)
        self.limits = limits
        self.solutions: dict[str, CoTRecord] = {}

    def _gold(self, question: str) -> str:
        if question not in self.golden_answers:
            raise ValueError(f"no golden answer for question {question[:60]!r}")
        return self.golden_answers[question]

    def get_answer(self, question: str, context: str = "") -> str:
        """One step-by-step answer from the generator agent (its memory reset to the worked examples first)."""
        self.generator_agent.reset()
        cfgmod.add_examples(self.generator_agent, self.examples)
        prompt = f"{question}\n\n{context}" if context else question
        return self.generator_agent.step(prompt).msgs[0].content

    def verify_answer(self, question: str, answer: str) -> bool:
        return verify.check(answer, self._gold(question), judge=self._judge if self.verifier_agent else None).correct

    def _judge(self, gold: str, extracted: str) -> bool:
        """The verifier agent as the LLM judge (asked only for answers nothing deterministic can decide)."""
        self.verifier_agent.reset()
        reply = self.verifier_agent.step(f"{verify.JUDGE_PROMPT}\nGolden answer: {gold}\nCandidate answer: {extracted}")
        return reply.msgs[0].content.strip().upper().startswith("YES")

    def solve(self, question: str) -> str | None:
        """Direct attempt, verification and search for one question; the verified solution, or None."""
        pair = QAPair(question_id(question), question, self._gold(question))
        teacher = Teacher(self.endpoint, self.limits, self.cfg.max_new_tokens)

        async def solve() -> CoTRecord:
            try:
                return await solve_one(pair, teacher, self.cfg, self.cfg.key(teacher.model))
            finally:
                await teacher.aclose()

        record = run_sync(solve)
        self.solutions[question] = record
        return record.solution

    def import_qa_from_json(self, source: str | Path | dict[str, str]) -> bool:
        """Add golden answers from a file or dict (any format :func:`cotlib.data.load_qa` reads)."""
        self.golden_answers.update({p.question: p.answer for p in load_qa(source)} if source else {})
        return True

    def export_solutions(self, filepath: str | Path = "solutions.json") -> None:
        """Write the records solved so far (verified or not, each says which) as JSON, atomically."""
        write_atomic(filepath, json.dumps({"solutions": [r.to_dict() for r in self.solutions.values()],
                                           "golden_answers": self.golden_answers,
                                           "export_time": time.strftime("%Y-%m-%dT%H:%M:%S")}, ensure_ascii=False, indent=2))
