"""The ceiling of `imds-detect scan --jobs 1` on one file: start-up, reading the file in blocks and the raw-bytes
passes that decide what to parse, with nothing parsed or judged.

Line-oriented formats (Defender JSON lines): the format's prefilter plans every block (the pattern scan,
the C numeric pass, blank and suspect lines). Raw audit logs: the tiler cuts every block into events (what the
reader does before any event is assembled). Prints the number of candidate lines or tiled pieces.

    python benchmarks/scan_floor.py FILE
"""

from __future__ import annotations

import sys

from imds_detect.engine.lines import blocks
from imds_detect.engine.prefilter import for_adapter
from imds_detect.engine.scan import BLOCK_SIZE
from imds_detect.sources.auditd import READ_BLOCK
from imds_detect.sources.auditd_tiles import tiles
from imds_detect.sources.registry import detect_format


def main(path: str) -> int:
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
        handle.seek(0)
        adapter = detect_format(head)
        is_line_oriented = getattr(adapter, "is_line_oriented", None)
        if adapter is None or (adapter.name != "auditd" and not (is_line_oriented and is_line_oriented(head))):
            print(f"{path}: neither JSON lines nor a raw audit log (CSV records are read whole, not planned by lines)",
                  file=sys.stderr)
            return 2
        found = 0
        if adapter.name == "auditd":
            for block in blocks(handle, READ_BLOCK):
                if isinstance(block, bytes):
                    found += len(tiles(block, len(block))[0])
        else:
            prefilter = for_adapter(adapter)
            for block in blocks(handle, BLOCK_SIZE):
                if isinstance(block, bytes):
                    found += len(prefilter.plan(block).spans)
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
