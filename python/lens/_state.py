"""Process-wide singletons (the global flags, SLO guard and canary), kept apart so every module can import
them. The flags take their initial values (TOML file, then `LENS_FLAG_*`) here, once, at import; the canary
reads its state file here, once."""

from __future__ import annotations

from .canary import Canary
from .flags import Flags, load_initial
from .guard import Guard

GLOBAL_FLAGS = Flags()
load_initial(GLOBAL_FLAGS)
GLOBAL_GUARD = Guard()
GLOBAL_CANARY = Canary(GLOBAL_GUARD, GLOBAL_FLAGS)
