"""Reasoning teachers: the thinking trace apart from the answer.

Reasoning models (DeepSeek-R1, QwQ, Qwen3 in thinking mode) return a trace before their answer, in one of two ways:

- a field of its own: ``reasoning_content`` (DeepSeek's reasoner API, vLLM's reasoning parser), or ``reasoning``
  (newer vLLM);
- inside the content, as ``<think>…</think>`` before the answer (Qwen3/QwQ served without a reasoning parser). Some
  chat templates put the opening ``<think>`` in the prompt, so the reply starts inside the trace and only the closing
  tag shows.

Only the answer, the text after the trace, is ever verified: a tentative ``\\boxed{}`` inside the trace never counts.
A ``<think>`` never closed (the token limit cut the trace) leaves no answer, and the reply says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPEN, CLOSE = "<think>", "</think>"
CUT_OFF = "the reasoning was cut off by the token limit: no answer after it"


@dataclass(frozen=True)
class Reply:
    """One completion, split: ``answer`` is what gets verified and trained on, ``reasoning`` the trace (if any)."""

    answer: str
    reasoning: str | None = None
    cut_off: bool = False  # the trace never ended: no answer


def split(content: str | None, reasoning: str | None = None) -> Reply:
    """Split a completion's content (and its separate reasoning field, when the server sends one): every
    ``<think>…</think>`` block goes to the trace, the rest is the answer; an unclosed ``<think>`` is a cut-off trace."""
    content = content or ""
    traces = [reasoning.strip()] if reasoning and reasoning.strip() else []
    if CLOSE in content and OPEN not in content.split(CLOSE, 1)[0]:  # the template opened the trace in the prompt
        head, content = content.split(CLOSE, 1)
        traces.append(head.strip())
    answer, cut_off = [], False
    while OPEN in content:
        before, rest = content.split(OPEN, 1)
        answer.append(before)
        if CLOSE not in rest:
            traces.append(rest.strip())
            cut_off, content = True, ""
            break
        inner, content = rest.split(CLOSE, 1)
        traces.append(inner.strip())
    answer.append(content)
    trace = "\n\n".join(t for t in traces if t) or None
    return Reply("".join(answer).strip(), trace, cut_off)


def reasoning_field(message: Any) -> str | None:
    """The trace a server sent beside the content (``reasoning_content`` or ``reasoning``), if any."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def reasoning_tokens(usage: Any, reply: Reply, completion_tokens: int) -> int:
    """Reasoning tokens as the server reports them (``completion_tokens_details.reasoning_tokens``), else the trace's
    share of the completion's characters."""
    details = getattr(usage, "completion_tokens_details", None)
    reported = getattr(details, "reasoning_tokens", None)
    if isinstance(reported, int) and reported > 0:
        return reported
    trace = len(reply.reasoning or "")
    return round(completion_tokens * trace / (trace + len(reply.answer))) if trace else 0
