"""The C numeric pass of the JSON prefilter (``imds_detect._numeric_tokens``) against the pattern path it replaces.

With the extension, :class:`Prefilter` for JSON lines leaves the numeric shapes out of its pattern set and asks
the C pass for the tokens that name a metadata address. Plans (the candidate lines and blank lines) must be those
of the pattern path - Hyperscan and Python's ``re`` - on generated lines with every inet_aton spelling of every
metadata IPv4 in every context (free text, escaped quotes, free-text keys and other keys, blanks around the
colon, names and SIDs around digits, more than four parts, trailing dots), and a scan must give the same alerts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hosts import METADATA_V4, inet_aton_spelling
from test_native import scan_with_and_without_c

from imds_detect.engine.prefilter import NUMERIC, Prefilter
from imds_detect.knowledge import indicators
from imds_detect.knowledge.hosts import ipv4_value
from imds_detect.knowledge.indicators import numeric_token, token_names_metadata
from imds_detect.sources.mde import MDE_ADAPTER

ROOT = Path(__file__).resolve().parent.parent
KEYS = MDE_ADAPTER.free_text_keys
native = pytest.mark.skipif(indicators.NATIVE_NUMERIC_ENDS is None,
                            reason="the C extension imds_detect._numeric_tokens is not built (or switched off)")


def _prefilters() -> list[Prefilter]:
    return [Prefilter(KEYS, MDE_ADAPTER.record_edges, use_numeric_native=False),
            Prefilter(KEYS, MDE_ADAPTER.record_edges, use_hyperscan=False, use_numeric_native=False)]


REFERENCES = _prefilters()
NATIVE = Prefilter(KEYS, MDE_ADAPTER.record_edges)


def assert_same_plan(block: bytes) -> None:
    expected = REFERENCES[0].plan(block)
    for reference in REFERENCES[1:]:
        other = reference.plan(block)
        assert (other.spans, other.blank_ends) == (expected.spans, expected.blank_ends)
    actual = NATIVE.plan(block)
    assert (actual.spans, actual.blank_ends) == (expected.spans, expected.blank_ends)


def reference_ends(block: bytes) -> list[int]:
    """The first numeric-pattern match end of each token that names metadata, by the pattern path."""
    ends, read_to = [], -1
    matches = sorted(end for group, end in REFERENCES[0].patterns.matches(block) if group == NUMERIC)
    for end in matches:
        token, read_to = numeric_token(block, end, read_to)
        if token is not None and token_names_metadata(token):
            ends.append(end)
    return ends


CONTEXTS = [" ", "(", "=", "/", "@", "'", "\\\"", "\t", ",", ":", "[", "_", "-", "x", ".", "%", "\u00e9", "\\n"]
OTHER_KEYS = ["RemoteIP", "LocalIP", "ReportId", "DeviceName", "processcommandline2"]


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """A metadata address in any inet_aton spelling, or a number that looks like one and is not."""
    choice = draw(st.integers(0, 5))
    if choice <= 2:
        value = int.from_bytes(bytes(int(part) for part in draw(st.sampled_from(METADATA_V4)).split(".")), "big")
        text = draw(inet_aton_spelling(value))
    elif choice == 3:
        text = draw(st.sampled_from(["2852039166", "1684301000", "169.254.169.254", "100.100.100.200",
                                     "192.0.0.192", "169.254.170.2", "169.254.170.23"]))
        text = text[:-1] + draw(st.sampled_from(["0", "1", "5", "9"]))
    elif choice == 4:
        text = ".".join(draw(st.lists(st.sampled_from(["1", "169", "254", "0xa9", "0251", "65193", "43518", "0",
                                                       "00000000169", "x", ""]), min_size=1, max_size=9)))
    else:
        text = draw(st.from_regex(r"[0-9]{1,14}(\.[0-9]{1,6}){0,5}", fullmatch=True))
    return text + draw(st.sampled_from(["", "", ".", "x", "/latest", ".nip.io", "0", ":80", "\\\\"]))


@st.composite
def json_lines(draw: st.DrawFn) -> str:
    fields = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from([*KEYS, *(key.lower() for key in KEYS), *OTHER_KEYS]))
        words = [draw(st.sampled_from(CONTEXTS)) + draw(numbers()) if draw(st.booleans()) else
                 draw(st.sampled_from(["curl", "http://", "SID-1-5-21", "v1.2.3", "a_169", "x-2852039166"]))
                 for _ in range(draw(st.integers(0, 4)))]
        value = " ".join(words) if draw(st.integers(0, 3)) else draw(numbers())
        colon = draw(st.sampled_from([":", " : ", ":\t", ":  "]))
        if draw(st.integers(0, 4)):
            fields.append(f'"{key}"{colon}"{value}"')
        else:  # a nested JSON string: escaped quotes around the key and the value
            fields.append(f'"AdditionalFields":"{{\\"{key}\\"{colon}\\"{value}\\"}}"')
    return "{" + ",".join(fields) + "}"


@native
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(json_lines(), min_size=1, max_size=12), ending=st.sampled_from(["\n", "\r\n"]))
def test_generated_json_lines_plan_alike(lines: list[str], ending: str) -> None:
    block = (ending.join(lines) + ending).encode("utf-8")
    assert_same_plan(block)
    assert NATIVE._numeric_tokens is not None
    assert NATIVE._numeric_tokens(block) == reference_ends(block)


@native
@pytest.mark.parametrize("block", [
    b"", b"\n", b'{"ProcessCommandLine":"2852039166"}', b'{"ProcessCommandLine":"x 2852039166',
    b"x 169.254.169.254", b'{"RemoteIP":"169.254.169.254"}\n', b'{"ProcessCommandLine" :\n "169.254.169.254 x"}\n',
    b'{"a":"' + b"1." * 50_000 + b'169.254.169.254"}\n', b'{"a":"' + b"9" * 100_000 + b' "}\n',
    b'{"a":" ' + b"0x" + b"0" * 300 + b'a9fea9fe "}\n', b" " + b"0" * 300 + b"251.0376.0251.0376 \n",
    b"\x00\xff 169.254.169.254\x00\n", b'\\"169.254.169.254\\"\n', b'"169.254.169.254"\n',
], ids=["empty", "newline", "no-newline", "cut", "no-json", "address-field", "blank-colon", "many-parts",
        "long-run", "long-hex", "long-octal", "binary", "escaped-quotes", "bare-quotes"])
def test_edge_blocks_plan_alike(block: bytes) -> None:
    assert_same_plan(block)
    assert NATIVE._numeric_tokens is not None
    assert NATIVE._numeric_tokens(block) == reference_ends(block)


@native
def test_generated_lines_do_name_metadata() -> None:
    """Guard against a vacuous comparison: spellings in free text are found, and address fields are not."""
    block = (b'{"ProcessCommandLine":"curl http://0251.0376.0251.0376/latest","RemoteIP":"169.254.169.254"}\n'
             b'{"InitiatingProcessCommandLine":"2852039166"}\n{"RemoteIP":"2852039166"}\n')
    assert NATIVE._numeric_tokens is not None
    ends = NATIVE._numeric_tokens(block)
    assert len(ends) == 2 and ends == reference_ends(block)
    assert ipv4_value("0251.0376.0251.0376") == ipv4_value("2852039166")
    assert [span for span in NATIVE.plan(block).spans] == [(0, block.index(b"\n")),
                                                            (block.index(b"\n") + 1, block.index(b"\n", 100))]


@native
def test_benchmark_rows_plan_alike(tmp_path: Path) -> None:
    out = tmp_path / "defender.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate_defender.py"), "--size", "4MB", "--out",
                    str(out), "--ratio", "200"], check=True, capture_output=True)
    data = out.read_bytes()
    for start in range(0, len(data), 1 << 20):
        block = data[start: start + (1 << 20)]
        block = block[: block.rfind(b"\n") + 1]
        assert_same_plan(block)


@native
def test_bad_arguments_are_refused() -> None:
    ends = indicators.NATIVE_NUMERIC_ENDS
    assert ends is not None
    with pytest.raises(TypeError):
        ends(b"x", ["k"], (), ())
    with pytest.raises(ValueError, match="shape"):
        ends(b"x", (), ((),), ())
    with pytest.raises(ValueError, match="at least 1"):
        ends(b"x", (), ((0,),), ())
    with pytest.raises(OverflowError):
        ends(b"x", (), (), (-1,))
    assert ends(memoryview(b" 2852039166 "), (), ((10,),), (2852039166,)) == [12]  # any buffer


def test_pure_python_switch_keeps_the_patterns() -> None:
    code = ("from imds_detect.engine.prefilter import Prefilter; p = Prefilter(('ProcessCommandLine',)); "
            "print(p._numeric_tokens is None, len(p.patterns.groups[1]))")
    environment = {**os.environ, "IMDS_DETECT_PURE_PYTHON": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "20"]


@native
def test_scans_with_and_without_the_extension_agree(tmp_path: Path) -> None:
    out = tmp_path / "defender.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate_defender.py"), "--size", "3MB", "--out",
                    str(out), "--ratio", "100"], check=True, capture_output=True)
    stdout, _ = scan_with_and_without_c(out)
    assert stdout.count("\n") >= 10


@pytest.mark.parametrize("uri", ["/fetch?url=http://169.254.170.0000%32./", "/f?u=http%3A%2F%2F2852039166%2F",
                                 "/f?u=%32852039166", "/x?h=169.254.169.254"])
def test_percent_decoded_lines_keep_their_numeric_check(uri: str) -> None:
    """JSON lines whose only host is percent-encoded (Zeek http.log): with the C pass, the decoded line is still
    checked for numeric shapes (a regression caught by CI's derandomised weblog property test)."""
    keys = ("host", "uri", "query")
    line = ('{"ts": 1.5, "id.orig_h": "198.51.100.7", "host": "shop.example", "uri": "' + uri + '"}\n').encode()
    with_c = Prefilter(keys, decode_percent=True)
    without = Prefilter(keys, decode_percent=True, use_numeric_native=False)
    assert with_c.plan(line).spans == without.plan(line).spans == [(0, len(line) - 1)]


@st.composite
def free_text(draw: st.DrawFn) -> bytes:
    """Text as the command-line gate and the CSV row gate see it: numbers in every spelling, anywhere."""
    words = []
    for _ in range(draw(st.integers(0, 6))):
        word = draw(st.one_of(numbers(), st.sampled_from(["curl", "a.1.2.3", "v169.254.169.254", "x", "\\"]),
                              st.text(alphabet="0123456789.xX", max_size=30)))
        words.append(draw(st.sampled_from(["", "a", ".", "1.2.3.", "_", "-", "0"])) + word)
    separator = draw(st.sampled_from([" ", ",", "", "\"", "/"]))
    return separator.join(words).encode("utf-8")


@native
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=free_text())
def test_the_gate_reads_numbers_as_the_patterns_do(data: bytes) -> None:
    """`could_mention_bytes` with the C pass (bare mode) against the pattern gate, with Hyperscan and `re`."""
    assert indicators._bare_numeric_pass() is not None
    expected = indicators.could_mention_patterns(data)
    assert indicators.could_mention_bytes(data) == expected
    assert (indicators._strong_gate().search(data) or indicators.numbers_name_metadata(data)) == expected


@native
@pytest.mark.parametrize(("text", "expected"), [
    (b"1.2.3.0251.0376.0251.0376", True), (b"a.0251.0376.0251.0376", False), (b"x 2852039166", True),
    (b"12ab2852039166", False), (b"2852039166x", False), (b"28520391660", False), (b"", False),
    (b"0251.0376.0251.0376", True), (b"a.169.254.169.254", True)])  # (the last: a literal address)
def test_the_gate_on_chosen_tokens(text: bytes, expected: bool) -> None:
    assert indicators.could_mention_patterns(text) is expected
    assert indicators.could_mention_bytes(text) is expected
