"""Operating lens as the runbook says: quality gates, nightly validation, sign-off, release bundles,
compatibility drills and promotion, with their record in SQLite, and (with `lens[server]`) the admin
HTTP API.

This layer reads the library's public surfaces (the guard, canary, flags, dashboard, `Index`); nothing
under `lens` imports it back.
"""

from __future__ import annotations

from .gates import THRESHOLDS, Thresholds, format_table, run_quality_gates
from .golden import GoldenQuery, GoldenSet, GoldenSetError, load_golden_set, stdlib_golden_set
from .nightly import REQUIRED_NIGHTS, run_nightly, signoff
from .release import (
    API_VERSION,
    NotPromotable,
    ReleaseError,
    check_compat,
    compat_bundles,
    compat_drill,
    cut_rc,
    promote,
    sbom,
)
from .state import OpsStore, StateError, default_state_dir

__all__ = [
    "API_VERSION",
    "REQUIRED_NIGHTS",
    "THRESHOLDS",
    "GoldenQuery",
    "GoldenSet",
    "GoldenSetError",
    "NotPromotable",
    "OpsStore",
    "ReleaseError",
    "StateError",
    "Thresholds",
    "check_compat",
    "compat_bundles",
    "compat_drill",
    "cut_rc",
    "default_state_dir",
    "format_table",
    "load_golden_set",
    "promote",
    "run_nightly",
    "run_quality_gates",
    "sbom",
    "signoff",
    "stdlib_golden_set",
]
