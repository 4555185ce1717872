"""The prefilter's numeric-shape pass for JSON lines in C (``imds_detect._numeric_tokens``), when built.

The numeric group of :func:`.prefilter._json_numeric_patterns` is the slowest part of the pattern pass (digit
runs have no literal to anchor on) and every match of it costs a Python call to read its token. The C pass finds
the same tokens - a digit-led token in free text or at the start of a free-text key's value, with a numeric
shape at its start - reads each as :func:`..knowledge.indicators.token_names_metadata` does, and returns only the
end offsets of those that name a metadata address: the matches :meth:`.prefilter.Prefilter.plan` would keep.
``IMDS_DETECT_PURE_PYTHON=1`` keeps the pattern path (tests compare both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..accelerators import native_function
from ..knowledge.indicators import METADATA_IPV4, numeric_shapes

NATIVE_ENDS: Callable[..., list[int]] | None = native_function("_numeric_tokens", "ends")


class JsonNumericTokens:
    """The numeric pass for JSON lines whose free text sits under `keys`: :meth:`ends` of a block."""

    def __init__(self, keys: tuple[str, ...], native: Any = None) -> None:
        self._ends = native or NATIVE_ENDS
        if self._ends is None:
            raise RuntimeError("the C extension imds_detect._numeric_tokens is not available")
        self._arguments = (tuple(key.encode() for key in keys), numeric_shapes(), tuple(sorted(METADATA_IPV4)))

    def ends(self, block: bytes) -> list[int]:
        """Ascending end offsets (just after the shape's boundary byte) of the tokens that name metadata."""
        return self._ends(block, *self._arguments)  # type: ignore[misc]


def json_numeric_tokens(keys: tuple[str, ...]) -> JsonNumericTokens | None:
    """The C pass for `keys`, or None when the extension is not built (or switched off)."""
    return JsonNumericTokens(keys) if NATIVE_ENDS is not None and keys else None
