"""Input discovery and opening: files, directories (recursive), stdin, gzip by magic bytes."""

from __future__ import annotations

import gzip
import io
import os
import select
import stat
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from .interrupt import check as check_stop
from .lines import read_into

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
HEAD_SIZE = 65536
STDIN = "-"


@dataclass(frozen=True)
class InputFile:
    """One input to read: a path, or '-' for standard input."""

    name: str

    def open(self) -> tuple[BinaryIO, bytes]:
        """The decompressed binary stream (positioned at its start) and its first HEAD_SIZE bytes."""
        raw: BinaryIO = sys.stdin.buffer if self.name == STDIN else open(self.name, "rb")  # noqa: SIM115
        if _is_pipe(raw):
            raw = cast(BinaryIO, io.BufferedReader(PollingPipe(raw)))
        magic = raw.read(2)
        stream = cast(BinaryIO, Prefixed(magic, raw))
        if magic == GZIP_MAGIC:
            stream = cast(BinaryIO, GzipStream(stream))
        head = read_up_to(stream, HEAD_SIZE)
        if head.startswith(UTF8_BOM):  # not part of the first record: formats are recognised and read without it
            head = head[len(UTF8_BOM):] + read_up_to(stream, len(UTF8_BOM))
        return cast(BinaryIO, Prefixed(head, stream)), head


class GzipStream(io.RawIOBase):
    """A gzip stream that hands over everything it could decompress: a file cut short (or corrupt) reads as
    if it ended there, and why is kept in `error` for the scan to report the file as partial."""

    def __init__(self, raw: BinaryIO) -> None:
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.error is not None:
            return 0
        try:
            data = self._gzip.read1(len(buffer))  # one piece at a time: what precedes a break is not lost
        except (EOFError, OSError, zlib.error) as error:
            self.error = error
            return 0
        view = memoryview(buffer)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gzip.close()
        super().close()


def _is_pipe(stream: BinaryIO) -> bool:
    """Whether `stream` is a pipe, FIFO or socket (a read may wait for ever), not a regular file."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class PollingPipe(io.RawIOBase):
    """Reads a pipe without blocking for longer than POLL_SECONDS at a time, checking between waits whether
    the scan was asked to stop. A signal may be delivered to any thread of the process, and then a read
    blocked in the main thread is not interrupted; this way the stop is seen anyway."""

    POLL_SECONDS = 0.2

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._fd = raw.fileno()

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not select.select([self._fd], [], [], self.POLL_SECONDS)[0]:
            check_stop()
        data = os.read(self._fd, len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._raw is not sys.stdin.buffer:
            self._raw.close()
        super().close()


def read_error(stream: BinaryIO) -> BaseException | None:
    """Why a stream from :meth:`InputFile.open` ended early (a cut or corrupt gzip file), or None."""
    return getattr(stream, "error", None)


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes of `stream` (fewer only at its end), across short reads."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class Prefixed(io.RawIOBase):
    """A read-only stream that yields `prefix` and then the rest of `tail`."""

    def __init__(self, prefix: bytes, tail: BinaryIO) -> None:
        self._prefix = prefix
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        return read_into(self._tail, view)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = self._prefix + self._tail.read()
            self._prefix = b""
            return rest
        if self._prefix:
            chunk = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return chunk
        return self._tail.read(size)

    @property
    def error(self) -> BaseException | None:
        """Why the stream ended early (see :class:`GzipStream`), or None."""
        return getattr(self._tail, "error", None)

    def close(self) -> None:
        self._tail.close()
        super().close()


def discover(paths: list[str]) -> Iterator[InputFile | tuple[str, str]]:
    """Inputs in command-line order (directories walked in sorted order); problems as (path, reason)."""
    for path in paths:
        if path == STDIN:
            yield InputFile(STDIN)
            continue
        target = Path(path)
        if target.is_dir():
            found = False
            for root, dirs, files in os.walk(target):
                dirs.sort()
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    found = True
                    yield InputFile(str(Path(root) / name))
            if not found:
                yield (path, "directory holds no files")
        elif target.is_file() or target.is_fifo():  # a named pipe too: `scan <(zcat log.gz)`, mkfifo
            yield InputFile(path)
        elif target.exists():
            yield (path, "not a regular file")
        else:
            yield (path, "no such file or directory")
