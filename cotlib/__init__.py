"""cotlib: synthesize verified chain-of-thought data with an LLM and fine-tune a small model on it."""

__version__ = "0.1.0"

__all__ = ["CoTDataGenerator", "__version__"]


def __getattr__(name: str):
    """``cotlib.CoTDataGenerator`` (the original tutorial's entry point), imported on first use so that
    ``cotlib.colab`` runs before camel-ai and the rest are installed."""
    if name == "CoTDataGenerator":
        from cotlib.datagen import CoTDataGenerator

        return CoTDataGenerator
    raise AttributeError(f"module 'cotlib' has no attribute {name!r}")
