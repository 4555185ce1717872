"""The auditd reader's block tiler: whole lines cut into raw events, untracked runs and single lines.

:func:`tiles` cuts a block of whole lines, in order, into the pieces the reader's fast path works on (see
:meth:`.auditd.AuditdParser._tiled`). Its grammar is :data:`_TILE`; the C extension ``imds_detect._audit_tiles``
(built at install when a compiler is present, see ``setup.py``) applies the same grammar written out as code and
is used when importable. ``IMDS_DETECT_PURE_PYTHON=1`` in the environment keeps the regular expression (for tests
and comparisons). Tests compare both on generated, mutated, real and hostile blocks.

``tiles(block, end)`` returns ``(pieces, lines)``: ``lines`` is the number of newlines in ``block[:end]``, and a
piece is a tuple:

- an event: ``(start, end, key, prefix, milliseconds, arch, syscall, saddr, execve, safe, eoe, first_end, fields,
  comm_at, line)``: groups of :data:`_TILE` (``key`` is prefix + stamp, the event's key; ``milliseconds`` the
  stamp's time; ``saddr``/``execve`` None when absent), ``safe`` the offset where the ``safe`` group starts or -1
  when it takes no part, ``eoe`` the offset of the EOE record, ``first_end`` that of the SYSCALL record's
  newline; ``fields`` is what :func:`.auditd_events.light_syscall` returns for an ASCII SYSCALL record when it
  reads the kernel's field order, and ``comm_at`` the offset of its `` comm=`` (the C tiler reads them; None and
  -1 mean "not read": the caller reads them itself);
- any other line that is not in a run of untracked records: ``(start, end of the line without its newline,
  line)``;

where ``line`` is the number of newlines before the piece in the block. Runs of records of untracked types give
no piece: the reader passes over them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..accelerators import native_function
from .auditd_events import SAFE_VALUE
from .auditd_records import stamp_milliseconds

Piece = tuple[Any, ...]

# The fast path cuts a block of whole lines into pieces, at C speed, with one regular expression; every
# line belongs to exactly one piece, in order:
# - ``event``: a raw syscall event whose records all sit together: its SYSCALL record (known header:
#   arch and syscall number), then records of other types with the same ``node=`` prefix and stamp, then
#   its EOE record;
# - ``untracked``: a run of records of types imds-detect does not use (the line loop passes them over);
# - any other single line (records of events that interleave, ausearch output, junk...).
_TILE = re.compile(rb"""
    (?P<event>
        (?P<prefix>(?:node=[^\ \n]+\ )?)
        type=SYSCALL\ msg=audit\((?P<stamp>(?P<seconds>[0-9]{1,11})\.(?P<millis>[0-9]{1,3}):[0-9]+)\):
        \ arch=(?P<arch>[0-9a-f]{1,8})\ syscall=(?P<syscall>[0-9]{1,10})\ [^\n]*\n
        (?P<second>(?P=prefix)type=SOCKADDR\ msg=audit\((?P=stamp)\):\ saddr=(?P<saddr>[^\ \n]*+)[^\n]*\n
          |(?P=prefix)type=EXECVE\ msg=audit\((?P=stamp)\):\ (?P<execve>argc=[^\n]*)\n)?
        (?(second)(?P<safe>(?:(?P=prefix)type=(?:
                   (?:PROCTITLE\ msg=audit\((?P=stamp)\):\ proctitle=|CWD\ msg=audit\((?P=stamp)\):\ cwd=)"""
    + SAFE_VALUE + rb"""
                   |(?!SYSCALL\ |EOE\ |CWD\ |PROCTITLE\ |SOCKADDR\ |EXECVE\ )[A-Z_0-9]+\ [^\n]*)\n)*+)
          |(?:(?P=prefix)type=(?!SYSCALL\ |EOE\ )[A-Z_0-9]+\ msg=audit\((?P=stamp)\):\ [^\n]*\n)*+)
        (?P<eoe>(?P=prefix)type=EOE\ msg=audit\((?P=stamp)\)[^\n]*\n)
    )
    |(?P<untracked>(?:(?:node=[^\ \n]+\ )?
        type=(?!SYSCALL\ |EOE\ |CWD\ |PROCTITLE\ |SOCKADDR\ |EXECVE\ )[A-Z_0-9]+\ [^\n]*\n)++)
    |[^\n]*\n
""", re.VERBOSE)
# (`saddr` is possessive: the rest cannot need it shorter, and giving it back character by character
# read the rest of a long value again each time: quadratic.)
_SAFE, _EOE, _UNTRACKED = _TILE.groupindex["safe"], _TILE.groupindex["eoe"], _TILE.groupindex["untracked"]


def regex_tiles(block: bytes, end: int) -> tuple[list[Piece], int]:
    """The pieces of ``block[:end]`` (whole lines) found by :data:`_TILE`, and its number of newlines."""
    pieces: list[Piece] = []
    counted_to = line = 0
    for match in _TILE.finditer(block, 0, end):
        kind = match.lastindex
        if kind == _UNTRACKED:
            continue
        start = match.start()
        line += block.count(b"\n", counted_to, start)
        counted_to = start
        if kind is None:
            pieces.append((start, match.end() - 1, line))
            continue
        _, prefix, stamp, seconds, millis, arch, syscall, _, saddr, execve, safe, _, _ = match.groups()
        pieces.append((start, match.end(), prefix + stamp if prefix else stamp, prefix,
                       stamp_milliseconds(seconds, millis), arch, syscall, saddr, execve,
                       -1 if safe is None else match.start(_SAFE), match.start(_EOE), block.find(b"\n", start),
                       None, -1, line))
    return pieces, line + block.count(b"\n", counted_to, end)


NATIVE_TILES: Callable[[bytes, int], tuple[list[Piece], int]] | None = native_function("_audit_tiles", "tiles")
tiles: Callable[[bytes, int], Any] = NATIVE_TILES or regex_tiles
