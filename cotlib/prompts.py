"""The teacher's prompts: instructions, worked examples (sent as earlier turns), and the three kinds of request.

Change a prompt and bump :data:`PROMPT_VERSION`: it is part of the store key, so records made with the old prompts
are not mistaken for new ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from cotlib.search import join_steps

PROMPT_VERSION = 2
LANGUAGES = ("en", "zh")
SYSTEM_PROMPTS = {
    "en": "You solve problems step by step. Write one step per line, then give the final answer exactly once as "
          "\\boxed{answer}.",
    "zh": "你一步一步地解题。每行写一步，最后只写一次最终答案，格式为 \\boxed{答案}。",
}
#: Worked examples sent as earlier turns of the conversation (few-shot). A small model copies a format from examples
#: far more reliably than from instructions: with these the 135M offline teacher writes a \boxed{} answer almost
#: always (bench/bench_passk.py). Their numbers lie outside the demo generators' ranges, so no demo answer leaks.
EXAMPLES = {
    "en": [
        ("Tom has 10 apples and buys 5 more. How many apples does he have?",
         "Step 1: Tom starts with 10 apples.\nStep 2: He buys 5 more, so 10 + 5 = 15.\nThe answer is \\boxed{15}."),
        ("What is 10 × 4?", "Step 1: 10 × 4 means 10 groups of 4.\nStep 2: 10 × 4 = 40.\nThe answer is \\boxed{40}."),
    ],
    "zh": [
        ("小明有 10 个苹果，又买了 5 个。他现在有几个苹果？",
         "第 1 步：小明原来有 10 个苹果。\n第 2 步：又买了 5 个，所以 10 + 5 = 15。\n答案是 \\boxed{15}。"),
        ("计算 10 × 4 等于多少？", "第 1 步：10 × 4 表示 10 个 4 相加。\n第 2 步：10 × 4 = 40。\n答案是 \\boxed{40}。"),
    ],
}
CONTINUE_PROMPTS = {
    "en": "{question}\n\nHere is the beginning of a solution:\n{prefix}\n\nContinue it from the next step (do not repeat "
          "the steps above) and end with the final answer written once as \\boxed{{answer}}.",
    "zh": "{question}\n\n下面是解答的开头：\n{prefix}\n\n请从下一步接着写（不要重复上面的步骤），最后只写一次最终答案，格式为 \\boxed{{答案}}。",
}
HINT_PROMPTS = {
    "en": "{question}\n\n(The correct final answer is {answer}. Write a step-by-step solution that reaches it, without "
          "mentioning that you were told.)",
    "zh": "{question}\n\n（正确答案是 {answer}。请写出得到这个答案的逐步解答，不要提到答案是事先给出的。）",
}
HINT_LEAKS = ("correct final answer", "i was told", "you told me", "正确答案是", "事先给出")  # a rationalization must not cite its hint


def messages(user: str, language: str) -> list[dict[str, str]]:
    """The system prompt, the worked examples as earlier turns, then the request."""
    shots = [{"role": role, "content": text} for q, a in EXAMPLES[language] for role, text in (("user", q), ("assistant", a))]
    return [{"role": "system", "content": SYSTEM_PROMPTS[language]}, *shots, {"role": "user", "content": user}]


def direct_messages(question: str, language: str) -> list[dict[str, str]]:
    return messages(question, language)


def continue_messages(question: str, prefix: Sequence[str], language: str) -> list[dict[str, str]]:
    return messages(CONTINUE_PROMPTS[language].format(question=question, prefix=join_steps(list(prefix))), language)


def hint_messages(question: str, answer: str, language: str) -> list[dict[str, str]]:
    return messages(HINT_PROMPTS[language].format(question=question, answer=answer), language)
