"""The optional C accelerators (``imds_detect._audit_tiles``, ``_numeric_tokens``, ``_line_numbers``,
``_csv_records``).

``setup.py`` builds them at install when a C compiler and Python's headers are present; each replaces a
pure-Python function that stays as the reference and the fallback, and tests compare the two. Setting
``IMDS_DETECT_PURE_PYTHON=1`` in the environment keeps the Python code everywhere (for comparisons).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

SWITCH = "IMDS_DETECT_PURE_PYTHON"
MODULES = ("_audit_tiles", "_numeric_tokens", "_line_numbers", "_csv_records")


def pure_python() -> bool:
    """Whether the environment asks for the Python code only."""
    return os.environ.get(SWITCH, "") not in ("", "0")


def native_function(module: str, name: str) -> Any:
    """``imds_detect.<module>.<name>`` when the extension is built and allowed, else None."""
    if pure_python():
        return None
    try:
        return getattr(importlib.import_module(f"imds_detect.{module}"), name)
    except (ImportError, AttributeError):
        return None


def report() -> dict[str, bool]:
    """Which accelerators this process uses (the benchmark runner prints it)."""
    return {module: native_function(module, "__name__") is not None for module in MODULES}
