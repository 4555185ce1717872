"""Inputs of a Spark scan: which files, under which names, and whether Spark or the driver reads each.

Local paths (no URI scheme) are discovered exactly as the local engine does (`engine.inputs.discover`:
directories walked in sorted order, dot files skipped), so files carry the same names in alerts. Paths with
a scheme (``hdfs://``, ``s3a://``, ``file:/``, ...) are listed through the Hadoop FileSystem of the Spark
session (the user's Hadoop configuration: credentials, endpoints), with the same rules.

Each readable file's first 64 KiB (decompressed when it starts with the gzip magic) decide its route:

- **spark**: Defender/Sentinel JSON lines (the format and variant the local engine would read line by
  line) that Spark decodes exactly as the local engine does: plain, or gzip named ``*.gz``; not a name
  Spark's file sources skip (``_*``, ``.*``, ``*._COPYING_``) and no other Hadoop codec suffix;
- **driver**: everything else (CSV and JSON-document exports, Parquet, auditd, Sysmon, Windows Security,
  gzip without ``.gz``, unrecognised or empty files, files that cannot be opened): scanned by the local
  engine on the driver, streamed (through Hadoop for remote paths), with its own reports and warnings.
  Names with a colon (not valid in a Hadoop path) go there too.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

from ..engine.inputs import GZIP_MAGIC, HEAD_SIZE, STDIN, InputFile, Prefixed, discover
from ..engine.scan import Scanner
from ..sources.mde import MDE_ADAPTER
from ..sources.registry import BY_NAME, detect_format

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")
READ_CHUNK = 1 << 20


def has_scheme(path: str) -> bool:
    """Whether `path` is a URI (``hdfs://...``, ``file:/...``) rather than a local path."""
    return bool(_SCHEME.match(path)) and not re.match(r"^[A-Za-z]:[\\/]", path)  # not a Windows drive


def file_key(uri: str) -> str:
    """A comparable form of a file's URI, as Spark reports it in ``_metadata.file_path`` (URL-encoded) or
    as a Hadoop path string / local absolute path (plain)."""
    if not has_scheme(uri):
        return "file://" + os.path.abspath(uri)
    parts = urlsplit(uri)
    return f"{parts.scheme.lower()}://{parts.netloc}{unquote(parts.path)}"


def glob_escaped(path: str) -> str:
    """`path` with Hadoop glob characters escaped (Spark's file sources expand globs in paths)."""
    return _GLOB_CHARS.sub(r"\\\1", path)


@dataclass
class Input:
    """One file to scan, in input order."""

    name: str  # as the local engine names it (alerts' source.file)
    key: str  # file_key of the file Spark reads
    spark_path: str  # what to hand to spark.read (glob-escaped)
    route: str  # "spark" or "driver"
    remote: str = ""  # the Hadoop URI of a file not on the local file system


@dataclass
class Missing:
    """An input that is not a readable file (reported like the local engine's discover)."""

    path: str
    reason: str


def spark_readable(name: str, head: bytes, gzip_magic: bool, format_name: str, codec: str | None) -> bool:
    """Whether Spark's text source reads this file line by line exactly as the local engine does."""
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if base.startswith(("_", ".")) or base.endswith("._COPYING_"):
        return False  # Spark's file index skips these names
    if ":" in base:
        return False  # not a valid Hadoop path name
    if gzip_magic != (codec == "gzip") or codec not in (None, "gzip"):
        return False
    if not head.strip():
        return False
    adapter = BY_NAME[format_name] if format_name != "auto" else detect_format(head)
    return adapter is MDE_ADAPTER and Scanner._line_oriented(adapter, head)


def _codec_of(name: str) -> str | None:
    """The Hadoop codec Spark would apply to a local file by its name (gzip, or another one, or None)."""
    lowered = name.lower()
    if lowered.endswith(".gz"):
        return "gzip"
    if lowered.endswith((".bz2", ".deflate", ".lz4", ".snappy", ".zst", ".lzo", ".br", ".xz")):
        return "other"
    return None


def _local_head(name: str) -> tuple[bytes, bool] | None:
    try:
        with open(name, "rb") as raw:
            magic = raw.read(2)
        stream, head = InputFile(name).open()
        stream.close()
    except (OSError, EOFError, zlib.error) as error:  # the driver scan reports it
        del error
        return None
    return head, magic == GZIP_MAGIC


def local_inputs(path: str, format_name: str) -> Iterator[Input | Missing]:
    """The inputs of one local path argument, in the local engine's order."""
    for item in discover([path]):
        if not isinstance(item, InputFile):
            yield Missing(*item)
            continue
        probe = _local_head(item.name)
        route = "driver"
        if probe is not None and spark_readable(item.name, probe[0], probe[1], format_name, _codec_of(item.name)):
            route = "spark"
        absolute = os.path.abspath(item.name)
        yield Input(item.name, file_key(absolute), glob_escaped(absolute), route)


# -- remote (Hadoop FileSystem) ---------------------------------------------------------------------


class HadoopFiles:
    """Listing and reading through the Hadoop FileSystem API of a Spark session (driver side)."""

    def __init__(self, spark: Any) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._codecs = self._jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(self._conf)

    def _path(self, uri: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def inputs(self, path: str, format_name: str) -> Iterator[Input | Missing]:
        """The inputs of one URI argument: the file, or the files under the directory (sorted, recursive,
        dot files skipped), named like the local engine names directory members."""
        hadoop_path = self._path(path)
        try:
            fs = hadoop_path.getFileSystem(self._conf)
            if not fs.exists(hadoop_path):
                yield Missing(path, "no such file or directory")
                return
            status = fs.getFileStatus(hadoop_path)
        except Exception as error:  # py4j errors: a bad scheme, no credentials, ...
            yield Missing(path, f"cannot list: {_java_message(error)}")
            return
        if not status.isDirectory():
            yield self._input(path, status.getPath(), fs, format_name)
            return
        found = False
        for name, child in self._walk(fs, status.getPath(), path.rstrip("/")):
            found = True
            yield self._input(name, child, fs, format_name)
        if not found:
            yield Missing(path, "directory holds no files")

    def _walk(self, fs: Any, directory: Any, shown: str) -> Iterator[tuple[str, Any]]:
        entries = sorted(fs.listStatus(directory), key=lambda status: status.getPath().getName())
        for status in entries:  # files of a directory before its subdirectories, as os.walk yields them
            name = status.getPath().getName()
            if status.isFile() and not name.startswith("."):
                yield f"{shown}/{name}", status.getPath()
        for status in entries:
            if status.isDirectory():
                yield from self._walk(fs, status.getPath(), f"{shown}/{status.getPath().getName()}")

    def _input(self, name: str, path: Any, fs: Any, format_name: str) -> Input:
        uri = path.toString()
        route = "driver"
        try:
            raw = self.open(fs, path)
            with raw:
                magic = raw.read(2)
                stream = cast(BinaryIO, Prefixed(magic, raw))
                if magic == GZIP_MAGIC:
                    stream = cast(BinaryIO, _GzipHead(stream))
                head = stream.read(HEAD_SIZE)
            codec = self._codecs.getCodec(path)
            codec_name = None if codec is None else (
                "gzip" if "GzipCodec" in codec.getClass().getName() else "other")
            if spark_readable(name, head, magic == GZIP_MAGIC, format_name, codec_name):
                route = "spark"
        except Exception:  # the driver scan opens it again and reports the problem
            route = "driver"
        return Input(name, file_key(uri), glob_escaped(uri), route, remote=uri)

    def open(self, fs: Any, path: Any) -> BinaryIO:
        """A raw (not decompressed) binary stream of a Hadoop file."""
        return cast(BinaryIO, io.BufferedReader(_JavaStream(fs.open(path)), READ_CHUNK))

    def open_uri(self, uri: str) -> BinaryIO:
        path = self._path(uri)
        return self.open(path.getFileSystem(self._conf), path)


class _JavaStream(io.RawIOBase):
    """A java.io.InputStream (through py4j) as a Python raw stream."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = bytes(self._stream.readNBytes(min(len(view), READ_CHUNK)))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


class _GzipHead:
    """Just enough of a gzip reader for a head: `read(size)` of the decompressed start."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._inflate = zlib.decompressobj(wbits=31)

    def read(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            chunk = self._stream.read(65536)
            if not chunk:
                break
            out += self._inflate.decompress(chunk, size - len(out))
            if self._inflate.eof:
                break
        return bytes(out[:size])


def _java_message(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    for line in text:
        if "Exception:" in line:
            return line.split("Exception:", 1)[1].strip() or line.strip()
    return text[0] if text else type(error).__name__


def collect_inputs(paths: list[str], format_name: str, hadoop: HadoopFiles | None) -> list[Input | Missing]:
    """Every input of `paths`, in order. Standard input is refused (Spark cannot read it)."""
    found: list[Input | Missing] = []
    for path in paths:
        if path == STDIN:
            raise ValueError("standard input ('-') cannot be scanned with the Spark engine")
        if has_scheme(path):
            if hadoop is None:
                raise ValueError(f"{path}: URIs need a Spark session")
            found.extend(hadoop.inputs(path, format_name))
        else:
            found.extend(local_inputs(path, format_name))
    return found
