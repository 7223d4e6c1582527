import os
import pickle

import pytest

from cotlib import config
from cotlib.config import ConfigError, Secret, load_settings

KEY = "sk-test-0123456789abcdef"


def write_env(tmp_path, text):
    path = tmp_path / ".env"
    path.write_text(text)
    return str(path)


def test_no_settings_means_local_backend(tmp_path):
    settings = load_settings(environ={}, dotenv_path="")
    assert settings.backend == "local"
    assert settings.base_url is None and settings.api_key is None


def test_environment_beats_dotenv_beats_default(tmp_path):
    dotenv = write_env(tmp_path, "COTLIB_BASE_URL=https://dotenv.example/v1\nCOTLIB_MODEL=from-dotenv\nCOTLIB_API_KEY=dotenv-key\n")
    env = {"COTLIB_MODEL": "from-env"}
    settings = load_settings(environ=env, dotenv_path=dotenv)
    assert settings.backend == "hosted"
    assert settings.base_url == "https://dotenv.example/v1"
    assert settings.model == "from-env"
    assert settings.api_key == Secret("dotenv-key")
    assert settings.sources["COTLIB_MODEL"] == "environment"
    assert settings.sources["COTLIB_BASE_URL"].startswith(".env")


def test_blank_environment_value_falls_back_to_dotenv(tmp_path):
    dotenv = write_env(tmp_path, "COTLIB_BASE_URL=http://localhost:8000/v1/\nCOTLIB_MODEL=m\n")
    settings = load_settings(environ={"COTLIB_BASE_URL": "  "}, dotenv_path=dotenv)
    assert settings.base_url == "http://localhost:8000/v1"  # trailing slash dropped
    assert settings.api_key is None


def test_provider_short_names_expand():
    settings = load_settings(environ={"COTLIB_BASE_URL": "ModelScope", "COTLIB_MODEL": "Qwen/QwQ-32B"}, dotenv_path="")
    assert settings.base_url == config.PROVIDERS["modelscope"][0]


def test_dotenv_found_upwards_from_cwd(tmp_path, monkeypatch):
    write_env(tmp_path, "COTLIB_BASE_URL=ollama\nCOTLIB_MODEL=qwen2.5:1.5b\n")
    sub = tmp_path / "notebooks"
    sub.mkdir()
    monkeypatch.chdir(sub)
    settings = load_settings(environ={})
    assert settings.base_url == "http://localhost:11434/v1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COTLIB_API_KEY": KEY}, "COTLIB_BASE_URL is not"),
        ({"COTLIB_BASE_URL": "ftp://x", "COTLIB_MODEL": "m"}, "neither an http(s) URL"),
        ({"COTLIB_BASE_URL": "https://api.example/v1"}, "COTLIB_MODEL must be set"),
    ],
)
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_settings(environ=env, dotenv_path="")
    assert KEY not in str(err.value)


def test_key_never_shows():
    settings = load_settings(
        environ={"COTLIB_BASE_URL": "openai", "COTLIB_MODEL": "gpt-4o-mini", "COTLIB_API_KEY": KEY}, dotenv_path=""
    )
    for shown in (repr(settings), str(settings), f"{settings.api_key}", f"{settings.api_key!s}", str(settings.describe())):
        assert KEY not in shown
    assert "set (hidden)" in settings.describe()["api_key"]
    assert settings.api_key.reveal() == KEY
    endpoint = config.resolve(settings)
    assert KEY not in repr(endpoint)
    assert endpoint.headers() == {"Authorization": f"Bearer {KEY}"}
    with pytest.raises(TypeError):
        pickle.dumps(settings.api_key)


def test_hosted_endpoint_without_key_sends_placeholder():
    settings = load_settings(environ={"COTLIB_BASE_URL": "vllm", "COTLIB_MODEL": "m"}, dotenv_path="")
    endpoint = config.resolve(settings)
    assert endpoint.base_url == "http://localhost:8000/v1" and endpoint.api_key.reveal() == "not-needed"


def test_ask_api_key_sets_environment(clean_env, monkeypatch):
    monkeypatch.setattr(config.getpass, "getpass", lambda prompt: f"  {KEY}\n")
    secret = config.ask_api_key()
    assert secret == Secret(KEY)
    assert os.environ["COTLIB_API_KEY"] == KEY
    monkeypatch.setattr(config.getpass, "getpass", lambda prompt: "")
    assert config.ask_api_key() is None


def test_token_counter_round_trips_and_counts():
    counter = config.ApproxTokenCounter()
    text = "Solve 3/4 + 1/8. 答案是 \\boxed{7/8}"
    assert counter.decode(counter.encode(text)) == text
    assert counter.count_tokens_from_messages([{"role": "user", "content": text}]) == 4 + len(counter.encode(text))


def test_no_env_leaks_undoes_what_a_test_sets(request):
    """The notebooks' kernels, run later in pytest's process, inherit its environment: nothing a test sets may stay.
    Every test runs inside the autouse fixture, which restores os.environ both ways (what was set, what was removed)."""
    from conftest import restored_environ

    assert "no_env_leaks" in request.fixturenames
    os.environ.pop("COTLIB_API_KEY", None)
    os.environ["COTLIB_MODEL"] = "kept-from-before"
    with restored_environ():
        os.environ["COTLIB_API_KEY"] = "leak"  # as config.ask_api_key() does
        del os.environ["COTLIB_MODEL"]
    assert "COTLIB_API_KEY" not in os.environ and os.environ["COTLIB_MODEL"] == "kept-from-before"
