"""Is Stage-C's extra installed? Answered without importing numpy, onnxruntime or tokenizers, so that
`import lens` (which asks) stays light."""

from __future__ import annotations

from pathlib import Path

from ..errors import SemanticUnavailableError

__all__ = ["MODEL_DIR", "available", "require"]

MODEL_DIR = Path(__file__).with_name("model")
_EXTRA = "pip install 'lens[semantic]' (onnxruntime and tokenizers)"


def _installed(module: str) -> bool:
    import importlib.util  # asked only of an index with vectors, or by a build

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module blocked in sys.modules, or a broken install
        return False


def available() -> bool:
    """Whether the `lens[semantic]` extra is installed and the model files are in the package."""
    return (
        _installed("onnxruntime")
        and _installed("tokenizers")
        and (MODEL_DIR / "model.onnx").is_file()
        and (MODEL_DIR / "tokenizer.json").is_file()
    )


def require() -> None:
    """Raise `SemanticUnavailableError`, saying what to install, unless `available()`."""
    missing = [m for m in ("onnxruntime", "tokenizers") if not _installed(m)]
    if missing:
        raise SemanticUnavailableError(
            f"semantic search needs the lens[semantic] extra ({', '.join(missing)} missing): {_EXTRA}"
        )
    if not (MODEL_DIR / "model.onnx").is_file():
        raise SemanticUnavailableError(f"the embedding model is missing from the lens package: {MODEL_DIR}")
