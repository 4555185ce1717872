"""Stopping a scan early and cleanly: SIGINT, SIGTERM, or the reader of the output going away (SIGPIPE).

A stop request during the reading phase of a scan (inside :func:`interruptible`) raises
:class:`ScanInterrupted` at once; the scanner catches it, notes it in the summary and finishes with what it
found so far. A request outside that phase (while the result is being written, say) is only remembered, so
that output already being written is completed, and the caller can still exit with the signal's status.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143, "SIGPIPE": 141}


class ScanInterrupted(BaseException):
    """Raised inside a scan when it must stop; `reason` is a signal name (SIGINT, SIGTERM, SIGPIPE)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_armed = 0
_requested: str | None = None


@contextmanager
def interruptible() -> Iterator[None]:
    """The reading phase: a stop request raises ScanInterrupted here (also one made just before)."""
    global _armed
    _armed += 1
    try:
        if _requested is not None:
            raise ScanInterrupted(_requested)
        yield
    finally:
        _armed -= 1


def request_stop(reason: str) -> None:
    """Ask the running scan to stop (from a signal handler, or a writer whose reader went away)."""
    global _requested
    first = _requested is None
    _requested = _requested or reason
    if _armed and first:
        raise ScanInterrupted(reason)


def check() -> None:
    """Raise ScanInterrupted when a stop was requested during the reading phase. The scanner calls this at
    safe points (before each read, for each event): a handler's exception can be lost when the signal lands
    inside a C callback (a Hyperscan match handler turns it into its own error), so the flag is the truth."""
    if _requested is not None and _armed:
        raise ScanInterrupted(_requested)


def requested() -> str | None:
    """The first stop request of this process, if any."""
    return _requested


def reset() -> None:
    """Forget a stop request (tests and long-lived library callers)."""
    global _requested
    _requested = None


def install_handlers() -> None:
    """SIGINT and SIGTERM request a stop; a second one of either ends the process at once, by that signal."""

    def on_signal(number: int, frame: object) -> None:
        name = signal.Signals(number).name
        if _requested is not None:  # asked twice: the user means it
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)
        request_stop(name)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)


def exit_status(reason: str) -> int:
    """The shell's status for a process ended by `reason` (128 + the signal's number)."""
    return EXIT_STATUS.get(reason, 130)
