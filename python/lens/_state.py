"""Process-wide singletons (the global flags, SLO guard and canary), kept apart so every module can import
them. Creating them reads nothing: the flags take their initial values (TOML file, then `LENS_FLAG_*`) and
the canary reads its state file on first use, both at once, so `import lens` touches no file."""

from __future__ import annotations

from .canary import Canary
from .flags import Flags, load_initial
from .guard import Guard


def _first_use(flags: Flags) -> None:
    load_initial(flags)
    # The canary's state may hold a kill switch that turns stages off: apply it before the first query
    # reads the flags.
    GLOBAL_CANARY.ensure_loaded()


GLOBAL_FLAGS = Flags(on_first_use=_first_use)
GLOBAL_GUARD = Guard()
GLOBAL_CANARY = Canary(GLOBAL_GUARD, GLOBAL_FLAGS, lazy=True)
