"""Which LLM backend the teacher runs on, read from env > .env > defaults, with keys kept secret.

Three variables choose the backend:

- ``COTLIB_BASE_URL``: an OpenAI-compatible endpoint, or a provider's short name from ``PROVIDERS``.
- ``COTLIB_MODEL``: the model id at that endpoint.
- ``COTLIB_API_KEY``: the key, if the endpoint needs one (Ollama and vLLM usually don't).

With no ``COTLIB_BASE_URL`` (and no key) the backend is the offline local teacher from :mod:`cotlib.local`.
"""

from __future__ import annotations

import getpass
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from camel.utils import BaseTokenCounter
from dotenv import dotenv_values, find_dotenv

from cotlib.errors import ConfigError

if TYPE_CHECKING:
    from camel.agents import ChatAgent
    from camel.models import BaseModelBackend

ENV_BASE_URL = "COTLIB_BASE_URL"
ENV_MODEL = "COTLIB_MODEL"
ENV_API_KEY = "COTLIB_API_KEY"
VARIABLES = (ENV_BASE_URL, ENV_MODEL, ENV_API_KEY)

#: Known OpenAI-compatible providers: short name -> (base URL, an example model id).
PROVIDERS: dict[str, tuple[str, str]] = {
    "modelscope": ("https://api-inference.modelscope.cn/v1", "Qwen/Qwen2.5-72B-Instruct"),
    "openai": ("https://api.openai.com/v1", "gpt-4o-mini"),
    "deepseek": ("https://api.deepseek.com/v1", "deepseek-chat"),
    "ollama": ("http://localhost:11434/v1", "qwen2.5:1.5b"),
    "vllm": ("http://localhost:8000/v1", "Qwen/Qwen2.5-1.5B-Instruct"),
    # Reasoning teachers (cotlib.reasoning keeps their trace apart from the answer):
    "deepseek-reasoner": ("https://api.deepseek.com/v1", "deepseek-reasoner"),  # trace in `reasoning_content`
    "modelscope-qwq": ("https://api-inference.modelscope.cn/v1", "Qwen/QwQ-32B"),  # a field or <think> tags
    "vllm-reasoning": ("http://localhost:8000/v1", "Qwen/Qwen3-8B"),  # `vllm serve … --reasoning-parser qwen3`: `reasoning`
}




class Secret:
    """A string that never shows itself in repr/str/format; call :meth:`reveal` where it is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Settings:
    """The chosen backend. ``base_url is None`` means the offline local teacher."""

    base_url: str | None = None
    model: str | None = None
    api_key: Secret | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return "local" if self.base_url is None else "hosted"

    def describe(self) -> dict[str, str]:
        """A printable summary (the key is shown only as set/not set)."""
        return {
            "backend": self.backend,
            "base_url": self.base_url or "(local teacher)",
            "model": self.model or "(local teacher)",
            "api_key": "set (hidden)" if self.api_key else "not set",
            **{f"{name} from": src for name, src in self.sources.items()},
        }


def load_settings(environ: Mapping[str, str] | None = None, dotenv_path: str | None = None) -> Settings:
    """Read the three variables, each from the environment first, then ``.env``, else unset.

    ``dotenv_path=None`` searches ``.env`` from the working directory upwards; pass ``""`` to skip it.
    """
    environ = os.environ if environ is None else environ
    if dotenv_path is None:
        dotenv_path = find_dotenv(usecwd=True)
    dotenv = {k: v for k, v in dotenv_values(dotenv_path).items() if v} if dotenv_path else {}

    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name in VARIABLES:
        if environ.get(name, "").strip():
            values[name], sources[name] = environ[name].strip(), "environment"
        elif str(dotenv.get(name, "")).strip():
            values[name], sources[name] = str(dotenv[name]).strip(), f".env ({dotenv_path})"

    base_url, model, key = values.get(ENV_BASE_URL), values.get(ENV_MODEL), values.get(ENV_API_KEY)
    if base_url is None:
        if key is not None:
            raise ConfigError(
                f"{ENV_API_KEY} is set (from {sources[ENV_API_KEY]}) but {ENV_BASE_URL} is not: set it to an "
                f"OpenAI-compatible URL or one of {sorted(PROVIDERS)}"
            )
        return Settings(sources=sources)
    if base_url.lower() in PROVIDERS:
        base_url = PROVIDERS[base_url.lower()][0]
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{ENV_BASE_URL}={base_url!r} (from {sources[ENV_BASE_URL]}) is neither an http(s) URL "
            f"nor one of {sorted(PROVIDERS)}"
        )
    if model is None:
        raise ConfigError(f"{ENV_MODEL} must be set when {ENV_BASE_URL} is (from {sources[ENV_BASE_URL]})")
    return Settings(base_url.rstrip("/"), model, Secret(key) if key else None, sources)


def dotenv_value(name: str) -> str | None:
    """``name`` from the ``.env`` file found from the working directory upwards, if any."""
    path = find_dotenv(usecwd=True)
    value = (dotenv_values(path).get(name) or "").strip() if path else ""
    return value or None


def ask_api_key(prompt: str = "API key (input hidden): ") -> Secret | None:
    """Ask for a key with getpass (notebooks) and put it in this process's environment; empty input → None."""
    value = getpass.getpass(prompt).strip()
    if not value:
        return None
    os.environ[ENV_API_KEY] = value
    return Secret(value)


class ApproxTokenCounter(BaseTokenCounter):
    """Counts ~4 UTF-8 bytes as a token, so camel needs no tokenizer download (servers report real usage)."""

    def encode(self, text: str) -> list[int]:
        data = text.encode()
        return [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)]

    def decode(self, token_ids: list[int]) -> str:
        return b"".join(t.to_bytes((t.bit_length() + 7) // 8, "big") for t in token_ids).decode(errors="replace")

    def count_tokens_from_messages(self, messages: list[Any]) -> int:
        return sum(4 + len(self.encode(str(m.get("content") or ""))) for m in messages)


@dataclass(frozen=True)
class Endpoint:
    """A concrete OpenAI-compatible endpoint to talk to."""

    base_url: str
    model: str
    api_key: Secret
    context_window: int = 32768

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.reveal()}"}


def resolve(settings: Settings) -> Endpoint:
    """Turn settings into an endpoint, starting (or reusing) the local teacher when no hosted backend is set."""
    if settings.base_url is None:
        from cotlib import local

        teacher = local.ensure_teacher()
        return Endpoint(teacher.base_url, teacher.model, Secret(local.LOCAL_API_KEY), teacher.n_ctx)
    assert settings.model is not None
    return Endpoint(settings.base_url, settings.model, settings.api_key or Secret("not-needed"))


def check_endpoint(endpoint: Endpoint, timeout: float = 10.0) -> str:
    """One line saying whether the endpoint answers ``GET /models`` (the key is sent, never shown)."""
    request = urllib.request.Request(f"{endpoint.base_url}/models", headers=endpoint.headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            models = [m.get("id") for m in json.load(resp).get("data", [])]
    except urllib.error.HTTPError as err:
        return f"NOT OK: {endpoint.base_url} answered HTTP {err.code} ({'bad or missing key' if err.code in (401, 403) else err.reason})"
    except (OSError, ValueError) as err:
        return f"NOT OK: {endpoint.base_url} unreachable ({err})"
    listed = "listed" if endpoint.model in models else f"NOT listed (it lists {len(models)} models)"
    return f"OK: {endpoint.base_url} answers; model {endpoint.model!r} {listed}"


def create_model(endpoint: Endpoint, timeout: float | None = None, max_retries: int = 3, async_client: Any = None,
                 **model_config: Any) -> BaseModelBackend:
    """A camel model backend for the endpoint (``model_config``: temperature, max_tokens, seed, ...), on the given
    ``openai.AsyncOpenAI`` client if one is passed (its owner closes it)."""
    from camel.models import ModelFactory
    from camel.types import ModelPlatformType

    return ModelFactory.create(
        model_platform=ModelPlatformType.OPENAI_COMPATIBLE_MODEL,
        model_type=endpoint.model,
        api_key=endpoint.api_key.reveal(),
        url=endpoint.base_url,
        model_config_dict=model_config,
        token_counter=ApproxTokenCounter(),
        timeout=timeout,
        max_retries=max_retries,
        async_client=async_client,
    )


def chat_agent(endpoint: Endpoint, system_message: str, examples: Sequence[tuple[str, str]] = (),
               **model_config: Any) -> ChatAgent:
    """A camel ``ChatAgent`` on the endpoint, as the original tutorial builds it, with optional worked examples
    ``(question, answer)`` as earlier turns of its conversation (see :func:`add_examples`)."""
    from camel.agents import ChatAgent

    agent = ChatAgent(
        system_message=system_message,
        model=create_model(endpoint, **model_config),
        token_limit=endpoint.context_window,
    )
    return add_examples(agent, examples)


def add_examples(agent: ChatAgent, examples: Sequence[tuple[str, str]]) -> ChatAgent:
    """Write worked examples into the agent's memory as user/assistant turns (few-shot). ``agent.reset()`` forgets
    them: add them again after a reset."""
    from camel.messages import BaseMessage
    from camel.types import OpenAIBackendRole

    for question, answer in examples:
        agent.update_memory(BaseMessage.make_user_message("user", question), OpenAIBackendRole.USER)
        agent.update_memory(BaseMessage.make_assistant_message("assistant", answer), OpenAIBackendRole.ASSISTANT)
    return agent
