"""cotlib: synthesize verified chain-of-thought data with an LLM and fine-tune a small model on it."""

__version__ = "0.1.0"

from cotlib.generate import CoTDataGenerator  # noqa: E402  (the original tutorial's entry point)

__all__ = ["CoTDataGenerator", "__version__"]
