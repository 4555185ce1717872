"""Streaming JSON records: one record at a time from arrays, wrappers, JSON lines or concatenated objects.

Cloud logs come as ``{"Records": [...]}`` (CloudTrail S3 files, Azure ``{"records": [...]}`` blobs), a JSON
array (``gcloud logging read --format=json``, console downloads), JSON lines, or objects written one after
another (pretty-printed or not). :func:`iter_records` yields each record with the 1-based line it starts on,
holding only the record being decoded in memory (plus one read block), so a multi-GB day is never loaded
whole. Decoding is the standard library's ``JSONDecoder.raw_decode`` on a sliding text window.

A record that does not decode is reported (``on_bad(line, why)``) and reading resumes at the next line whose
``{`` stands in the same column as the broken record's (how JSON lines and pretty-printed arrays place
records). When that column is unknown (a one-line array) the rest of the file cannot be split safely: it is
reported and not read.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any, BinaryIO

from .. import limits as _limits

__all__ = ["WRAPPER_KEYS", "iter_records"]

READ_SIZE = 1 << 20
# A record larger than this (decoded text) is reported as malformed. The default: the scan's limits decide
# (limits.max_json_record_bytes).
MAX_RECORD = _limits.Limits().max_json_record_bytes
WRAPPER_KEYS = ("Records", "records")
_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()
# A decoding error this far before the end of the text read is no record cut by the read size (a literal such
# as `tr|ue` or a number cut there fails a few characters before the end): it is reported at once.
_MENDABLE = 64


class TooLarge(ValueError):
    """A complete record larger than the limit: reported, and reading goes on after it."""
BadSink = Callable[[int, str], None]


class _Window:
    """A sliding window of decoded text over a byte stream, with the line number of its read position."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self.text = ""
        self.pos = 0
        self.line = 1  # line of self.pos
        self.line_start: int | None = 0  # index in text where the line of self.pos starts (None: dropped)
        self.eof = False
        self.limit = _limits.active().max_json_record_bytes

    def fill(self) -> bool:
        """Read more text (at least as much as is pending, so retries cost O(n) in all); False at the end."""
        if self.eof:
            return False
        pending = len(self.text) - self.pos
        data = self.stream.read(max(READ_SIZE, pending))
        if not data:
            self.eof = True
            tail = self.decoder.decode(b"", final=True)
            self.text = self.text[self.pos:] + tail
            self._shift(self.pos)
            return bool(tail)
        cut = self.pos
        self.text = self.text[cut:] + self.decoder.decode(data)
        self._shift(cut)
        return True

    def _shift(self, cut: int) -> None:
        self.pos -= cut
        if self.line_start is not None:
            self.line_start = self.line_start - cut if self.line_start >= cut else None

    def advance(self, to: int) -> None:
        newlines = self.text.count("\n", self.pos, to)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.pos, to) + 1
        self.pos = to

    def column(self) -> int | None:
        """The column of the read position when its line's start is still in the window and only blanks
        stand before it on that line."""
        if self.line_start is None:
            return None
        before = self.text[self.line_start:self.pos]
        return len(before) if not before.strip() else None

    def peek(self) -> str:
        """The next non-blank character ("" at the end), with the position moved onto it."""
        while True:
            end = _WS.match(self.text, self.pos)
            self.advance(end.end() if end else self.pos)
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.fill():
                return ""

    def end_line(self) -> int:
        """The line of the position; at the end of the input just after its last line break, that last line
        (not the empty line after it, which is not in the file)."""
        after_break = self.eof and self.line > 1 and self.line_start == self.pos == len(self.text)
        return self.line - 1 if after_break else self.line

    def ensure(self, size: int) -> None:
        """At least `size` characters after the position, unless the stream ends first."""
        while len(self.text) - self.pos < size and self.fill():
            pass

    def value(self) -> Any:
        """Decode the JSON value at the position; raises ValueError when it is malformed."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as error:
                if len(self.text) - self.pos > self.limit:
                    _limits.hit("max_json_record_bytes")
                    raise ValueError(f"no complete record within {self.limit} bytes ([limits] max_json_record_bytes)"
                                     ) from None
                if len(self.text) - error.pos >= _MENDABLE and not error.msg.startswith("Unterminated string"):
                    raise ValueError(error.msg) from None  # broken where it stands: more text cannot mend it
                if not self.fill():
                    raise ValueError(error.msg) from None
                continue
            except RecursionError:  # nested deeper than the decoder can go (thousands of '[' or '{')
                raise ValueError("JSON nested too deeply") from None
            if end == len(self.text) and not isinstance(value, (dict, list, str)) and self.fill():
                continue  # a bare number or literal may go on in the next block
            size = end - self.pos
            self.advance(end)
            if size > self.limit:
                _limits.hit("max_json_record_bytes")
                raise TooLarge(f"a record of {size} characters, over {self.limit} ([limits] max_json_record_bytes): "
                               "not read")
            return value

    def resync(self, column: int) -> bool:
        """Move to the next line whose `{` stands at `column`; False when there is none."""
        pattern = re.compile("\n" + "[ \t]" * column + r"\{")
        start = self.pos + 1
        while True:
            found = pattern.search(self.text, start)
            if found:
                self.advance(found.end() - 1)
                return True
            self.advance(max(self.pos, len(self.text) - column - 2))  # keep what a match could start with
            if not self.fill():
                self.advance(len(self.text))
                return False
            start = self.pos  # (after fill: it moves the text, and the position with it)


def iter_records(stream: BinaryIO, on_bad: BadSink, wrapper_keys: tuple[str, ...] = WRAPPER_KEYS
                 ) -> Iterator[tuple[int, Any]]:
    """(line, value) of every record in `stream`: array elements, the elements of a wrapper object's array
    (``{"Records": [...]}``), or top-level values one after another. Problems go to `on_bad`."""
    window = _Window(stream)
    wrapper = re.compile(r"\{\s*\"(?:" + "|".join(re.escape(key) for key in wrapper_keys) + r")\"\s*:\s*\[")
    while True:
        char = window.peek()
        if not char:
            return
        if char == "[":
            window.advance(window.pos + 1)
            if not (yield from _elements(window, on_bad)):
                return
            continue
        if char == ",":
            window.advance(window.pos + 1)
            continue
        if char == "{":
            window.ensure(256)
            opening = wrapper.match(window.text, window.pos)
            if opening:
                window.advance(opening.end())
                if not (yield from _elements(window, on_bad)) or not _close_wrapper(window, on_bad):
                    return
                continue
        column, line = window.column(), window.line
        try:
            yield line, window.value()
        except TooLarge as error:
            on_bad(line, str(error))
        except ValueError as error:
            on_bad(line, str(error))
            # (a value that does not start its line, e.g. junk after a number: the next record that starts one)
            if not window.resync(0 if column is None else column):
                _stop(window, on_bad, column)
                return


def _elements(window: _Window, on_bad: BadSink) -> Generator[tuple[int, Any], None, bool]:
    """The elements of an array whose `[` was consumed; returns False when reading cannot go on."""
    while True:
        char = window.peek()
        if char == "]":
            window.advance(window.pos + 1)
            return True
        if char == ",":
            window.advance(window.pos + 1)
            continue
        if not char:
            on_bad(window.end_line(), "the file ends inside an array (truncated?)")
            return False
        column, line = window.column(), window.line
        try:
            yield line, window.value()
        except TooLarge as error:
            on_bad(line, str(error))
        except ValueError as error:
            on_bad(line, str(error))
            if column is None or not window.resync(column):
                _stop(window, on_bad, column)
                return False


def _close_wrapper(window: _Window, on_bad: BadSink) -> bool:
    """After a wrapper's array: skip any other members and its closing `}`."""
    while True:
        char = window.peek()
        if char == "}":
            window.advance(window.pos + 1)
            return True
        if char != ",":
            on_bad(window.end_line(), f"unexpected {char!r} after the records array" if char else "the file ends early")
            return False
        window.advance(window.pos + 1)
        try:
            window.peek()
            key = window.value()
            if not isinstance(key, str) or window.peek() != ":":
                raise ValueError("expected a member name")
            window.advance(window.pos + 1)
            window.peek()
            window.value()
        except ValueError as error:
            on_bad(window.end_line(), str(error))
            return False


def _stop(window: _Window, on_bad: BadSink, column: int | None) -> None:
    if column is None:
        on_bad(window.end_line(), "records cannot be told apart after this point: the rest of the file was not read")
