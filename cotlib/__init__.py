"""cotlib: synthesize verified chain-of-thought data with an LLM and fine-tune a small model on it."""

__version__ = "0.1.0"
