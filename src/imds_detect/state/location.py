"""The default place of the state store: the user's data directory, or $IMDS_DETECT_STATE."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "imds-detect"
FILE = "state.duckdb"
ENV = "IMDS_DETECT_STATE"


def data_dir() -> Path:
    """The per-user data directory (XDG on Linux, Application Support on macOS, LOCALAPPDATA on Windows)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP


def default_state_path() -> Path:
    """$IMDS_DETECT_STATE, else the data directory's state.duckdb."""
    override = os.environ.get(ENV, "").strip()
    return Path(override) if override else data_dir() / FILE
