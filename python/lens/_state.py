"""Process-wide singletons (the global flags), kept apart so every module can import them."""

from __future__ import annotations

from .flags import Flags

GLOBAL_FLAGS = Flags()
