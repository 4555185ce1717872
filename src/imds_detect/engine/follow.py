"""Following a growing log: a read-only stream that waits for new data and survives rotation and truncation."""

from __future__ import annotations

import io
import os
import threading
import time
from typing import BinaryIO

POLL_SECONDS = 0.25


class FollowStream(io.RawIOBase):
    """Reads `path` from the start, then waits for more, like `tail -F`.

    Rotation (the name now points to another file) finishes the old file first, then reopens the name
    from its start; truncation (the file shrank below what was read) reopens from the start. Either way
    `read` returns b"" once with `restarted` set, so the reader can start counting lines afresh, then
    goes on with the new content. Otherwise `read` returns what is available (at least one byte) and only
    returns b"" (end) once `stop` is set or nothing new arrived for `idle_exit` seconds.
    """

    def __init__(self, path: str, stop: threading.Event, idle_exit: float | None = None,
                 poll: float = POLL_SECONDS) -> None:
        self.path = path
        self.stop = stop
        self.idle_exit = idle_exit
        self.poll = poll
        self.rotations = 0
        self.truncations = 0
        self.restarted = False
        self._handle: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._open()

    def readable(self) -> bool:
        return True

    def _open(self) -> bool:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except OSError:
            return False
        if self._handle is not None:
            self._handle.close()
        self._handle = handle
        status = os.fstat(handle.fileno())
        self._identity = (status.st_dev, status.st_ino)
        self._offset = 0
        return True

    def _rotated_or_truncated(self) -> bool:
        """Reopen when the name points elsewhere or the file shrank; True when the stream restarted."""
        try:
            status = os.stat(self.path)
        except OSError:
            return False  # mid-rotation: the new file does not exist yet
        if (status.st_dev, status.st_ino) != self._identity:
            if self._open():
                self.rotations += 1
                return True
        elif status.st_size < self._offset and self._open():
            self.truncations += 1
            return True
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        idle_since = time.monotonic()
        while True:
            if self._handle is not None:
                data = self._handle.read(len(view))
                if data:
                    view[: len(data)] = data
                    self._offset += len(data)
                    return len(data)
            if self.stop.is_set():
                return 0
            if self._rotated_or_truncated():
                self.restarted = True
                return 0
            if self.idle_exit is not None and time.monotonic() - idle_since >= self.idle_exit:
                return 0
            self.stop.wait(self.poll)

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size and size > 0 else 1 << 20)
        count = self.readinto(buffer)
        return bytes(buffer[:count])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        super().close()
