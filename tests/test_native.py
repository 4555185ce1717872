"""The optional C accelerators as a whole: which are built, the switch that turns them off, and the newline
counter (``imds_detect._line_numbers``) against its Python reference. The tiler and the numeric pass have their
own comparisons (test_auditd_tiles.py, test_numeric_native.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imds_detect import accelerators as native
from imds_detect.engine import lines

NATIVE_COUNT = native.native_function("_line_numbers", "newlines_before")


def scan_with_and_without_c(path: Path) -> tuple[str, str]:
    """`imds-detect scan --jobs 1 --output jsonl PATH` with the C extensions and without: (stdout, stderr) of the
    first, after asserting the second printed exactly the same."""
    outputs = []
    for pure in ("0", "1"):
        result = subprocess.run([sys.executable, "-m", "imds_detect", "scan", "--jobs", "1", "--output", "jsonl",
                                 str(path)], env={**os.environ, native.SWITCH: pure}, capture_output=True, text=True)
        assert result.returncode in (0, 1), result.stderr
        outputs.append((result.stdout, result.stderr))
    assert outputs[0] == outputs[1]
    return outputs[0]
needs_native = pytest.mark.skipif(NATIVE_COUNT is None, reason="imds_detect._line_numbers is not built")


def test_ci_builds_every_accelerator() -> None:
    """CI installs with a compiler: a missing extension would make the benchmarks measure the fallback."""
    if not os.environ.get("CI") or native.pure_python():
        pytest.skip("only checked in CI")
    assert native.report() == dict.fromkeys(native.MODULES, True)


def test_switch_turns_every_accelerator_off() -> None:
    code = "import json; from imds_detect import accelerators as native; print(json.dumps(native.report()))"
    for value, expected in (("1", False), ("0", None), ("", None)):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env={**os.environ, native.SWITCH: value})
        report = json.loads(result.stdout)
        assert set(report) == set(native.MODULES)
        if expected is False:
            assert not any(report.values())
        else:
            assert report == native.report() or native.pure_python()


@needs_native
@settings(max_examples=300, deadline=None)
@given(block=st.binary(max_size=300).map(lambda data: data.replace(b"x", b"\n")), data=st.data())
def test_newline_counts_match_the_python_reference(block: bytes, data: st.DataObject) -> None:
    offsets = sorted(data.draw(st.lists(st.integers(0, len(block)), max_size=8)))
    assert NATIVE_COUNT(block, offsets) == lines._newlines_before(block, offsets)
    assert lines._newlines_before(block, offsets)[1] == block.count(b"\n")


@needs_native
def test_newline_counter_refuses_bad_offsets() -> None:
    with pytest.raises(ValueError, match="ascending"):
        NATIVE_COUNT(b"a\nb\n", [3, 1])
    with pytest.raises(ValueError, match="within the block"):
        NATIVE_COUNT(b"a\n", [5])
    with pytest.raises(TypeError):
        NATIVE_COUNT(b"a\n", (1,))
    assert NATIVE_COUNT(b"a\nb\nc", [0, 2, 4, 5]) == ([0, 1, 2, 2], 2)
