"""The C fast paths of the hot path, loaded or not, in one place (issue #25, part 2).

``schemas._flat`` (the flat records' Avro bodies) and ``streams._speedups`` (murmur2, the
common ID number, the intake's common record) are built by ``setup.py`` as optional extensions. Each only shadows Python
that stays the source of the results: it returns what the Python returns or declines (None),
and the Python then does the work, errors included. Where they are not built the Python runs
alone; ``ZHUCAN_NATIVE=0`` chooses the Python where they are (a before/after on the bench,
or to rule them out).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

MODULES = ("schemas._flat", "streams._speedups")
ENABLED = os.environ.get("ZHUCAN_NATIVE", "1") != "0"


def load(module: str) -> ModuleType | None:
    """The C module ``module``, or None (not built, or ZHUCAN_NATIVE=0)."""
    if not ENABLED:
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def status() -> str:
    """One line for the bench's machine line: which fast paths this process runs."""
    if not ENABLED:
        return "C fast paths off (ZHUCAN_NATIVE=0)"
    missing = [m for m in MODULES if load(m) is None]
    if not missing:
        return "C fast paths on"
    return f"C fast paths not built: {', '.join(missing)} (Python only)"
