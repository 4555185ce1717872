"""Input discovery and opening: files, directories (recursive), stdin, gzip by magic bytes."""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

GZIP_MAGIC = b"\x1f\x8b"
HEAD_SIZE = 65536
STDIN = "-"


@dataclass(frozen=True)
class InputFile:
    """One input to read: a path, or '-' for standard input."""

    name: str

    def open(self) -> tuple[BinaryIO, bytes]:
        """The decompressed binary stream (positioned at its start) and its first HEAD_SIZE bytes."""
        raw: BinaryIO = sys.stdin.buffer if self.name == STDIN else open(self.name, "rb")  # noqa: SIM115
        magic = raw.read(2)
        stream = cast(BinaryIO, Prefixed(magic, raw))
        if magic == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        head = read_up_to(stream, HEAD_SIZE)
        return cast(BinaryIO, Prefixed(head, stream)), head


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
        data = self._tail.read(len(view))
        view[: len(data)] = data
        return len(data)

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
        elif target.is_file():
            yield InputFile(path)
        elif target.exists():
            yield (path, "not a regular file")
        else:
            yield (path, "no such file or directory")
