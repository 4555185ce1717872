"""Mutations of audit logs for property tests: flipped and inserted bytes, cut, moved and repeated lines."""

from __future__ import annotations

from hypothesis import strategies as st


def mutate_log(source: bytearray, data: st.DataObject) -> bytes:
    """Up to 10 random edits of `source` (in place), drawn from `data`; the result as bytes."""
    for _ in range(data.draw(st.integers(0, 10))):
        if not source:
            break
        position = data.draw(st.integers(0, len(source) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "move", "repeat"]))
        start = source.rfind(b"\n", 0, position) + 1
        end = source.find(b"\n", position) + 1 or len(source)
        if action == "flip":
            source[position] = data.draw(st.sampled_from(list(b'0AZ "=()x.:-\n\x1d\xff')))
        elif action == "cut":
            del source[position: position + data.draw(st.integers(1, 120))]
        elif action == "insert":
            source[position:position] = data.draw(st.binary(max_size=30))
        elif action == "move":
            line = source[start:end]
            del source[start:end]
            target = data.draw(st.integers(0, len(source)))
            target = source.rfind(b"\n", 0, target) + 1
            source[target:target] = line
        else:
            source[end:end] = source[start:end]
    return bytes(source)
