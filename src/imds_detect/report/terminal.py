"""Whether a stream is a terminal to draw on (kept apart from the progress bar, so asking does not import rich)."""

from __future__ import annotations

import os
from typing import TextIO


def progress_wanted(stream: TextIO) -> bool:
    """Only on a terminal (never in pipes, files or CI logs)."""
    return stream.isatty() and os.environ.get("TERM") != "dumb"
