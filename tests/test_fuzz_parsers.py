"""Fuzzing (hardening issue: "fuzzing, hostile input, and nothing lost"): every source adapter, the host
canonicaliser, URL extraction and the prefilter get hostile input and must neither crash nor lose a record.

Inputs are the project's fixtures, the samples and (when present) the real logs of ``../shared/data``, mutated
(byte flips, truncation at every kind of position, junk, NUL, invalid UTF-8, huge runs of digits, dots and
percent signs, doubled separators, swapped fields and lines, splices) or rebuilt with hostile values (JSON
records, audit records with broken hex and absurd argc/len, XML with broken tags); see ``fuzz_support.py``,
which ``tools/fuzz/fuzz_parsers.py`` (atheris, coverage-guided, long local runs) shares.

What each input must satisfy (:func:`fuzz_support.check_input`): no exception escapes a scan (forced format,
with and without the prefilter, and ``--format auto``) nor the adapter's own ``parse``/``parse_counted``/
``parse_line``; the summary accounts for every record (line formats: one record per non-blank line; skipped
<= records; usable = records - skipped); every skip names the file and a line that exists; the prefilter
changes no alert; auditd's event shortcut changes no skip either.

Bounds: ``IMDS_FUZZ_EXAMPLES`` examples per adapter (default keeps the file well under a minute on a small
machine); ``CI=true`` makes the run derandomized (reproducible, no example database);
``IMDS_FUZZ_PROFILE=long`` runs many more examples for a local soak. Every crash found is kept in
``tests/fixtures/fuzz_corpus/<adapter>/`` and replayed by :func:`test_crash_corpus` with its expected outcome.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (
    _PREFILTERS,
    CORPUS,
    adapter_names,
    check_input,
    generate,
    seed_paths,
    seeds,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hosts import ipv4_spelling, ipv6_spelling, ipv6_wrapped_ipv4, unicode_and_percent
from test_urls import TEMPLATES, _spelled_ipv4

from imds_detect.engine.prefilter import Prefilter, for_adapter
from imds_detect.knowledge.hosts import canonical_host, match_host, metadata_host, split_host_port
from imds_detect.knowledge.urls import extract_host_references, find_metadata_references
from imds_detect.sources import registry

# --------------------------------------------------------------------------------------------------
# Bounds
# --------------------------------------------------------------------------------------------------

_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
_PROFILE = os.environ.get("IMDS_FUZZ_PROFILE", "ci" if _CI else "dev")
_DEFAULT_EXAMPLES = {"ci": 50, "dev": 50, "long": 2000}
EXAMPLES = int(os.environ.get("IMDS_FUZZ_EXAMPLES", _DEFAULT_EXAMPLES.get(_PROFILE, 50)))
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.large_base_example]
settings.register_profile("imds-fuzz-ci", max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                          suppress_health_check=_HEALTH, print_blob=True)
settings.register_profile("imds-fuzz-dev", max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH,
                          print_blob=True)
settings.register_profile("imds-fuzz-long", max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH,
                          print_blob=True)
# Applied test by test (never loaded globally: the other test files keep their own settings).
FUZZ = settings(settings.get_profile("imds-fuzz-ci" if _CI else f"imds-fuzz-{_PROFILE}"))
FUZZ_CHEAP = settings(FUZZ, max_examples=EXAMPLES * 5)  # pure functions: many more examples for the same time

ADAPTERS = adapter_names()
IMDS = "169.254.169.254"


class _Draws:
    """fuzz_support's Choices from Hypothesis draws (so that failures shrink)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def int(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))


@st.composite
def fuzz_input(draw: st.DrawFn, name: str) -> bytes:
    return generate(_Draws(draw), name, seeds(name))


# --------------------------------------------------------------------------------------------------
# Every adapter, every entry point
# --------------------------------------------------------------------------------------------------


def test_every_adapter_is_fuzzed_and_has_seeds() -> None:
    assert set(ADAPTERS) == set(registry.BY_NAME), "fuzz the registry's adapters, not a copy of their names"
    assert len(ADAPTERS) >= 15
    for name in ADAPTERS:
        assert seed_paths(name, shared=False), f"no fixture seeds for {name}"
        assert seeds(name), name


@pytest.mark.parametrize("name", ADAPTERS)
@FUZZ
@given(data=st.data())
def test_hostile_input_never_crashes_and_loses_nothing(name: str, data: st.DataObject) -> None:
    payload = data.draw(fuzz_input(name), label="input")
    check_input(name, payload)


@pytest.mark.parametrize("name", ADAPTERS)
def test_seeds_themselves_pass(name: str) -> None:
    """The unmutated seeds (fixtures, samples, shared real logs): the oracle's baseline."""
    for data in seeds(name):
        check_input(name, data, auto=False)


# --------------------------------------------------------------------------------------------------
# The crash corpus
# --------------------------------------------------------------------------------------------------

# What each corpus file must give once fixed: skips (reason, line) that must be reported, alerts
# (rule id, line) that must be raised. Every file in the corpus must be listed here (a new crash is triaged,
# its expectation written down, then it stays a regression test).
HTTP, NET, CMD = "imds-http-request", "imds-network-connection", "imds-command-line"
EXPECTED: dict[str, dict[str, Any]] = {
    # -- crashes found by the fuzzers, fixed --------------------------------------------------------
    # OverflowError: a time with a zone offset past datetime's range (httplog.clf_time, timeparse._parse_iso)
    "access/clf-time-before-year-1": {"skips": [("bad-timestamp", 1)], "alerts": [(HTTP, 2)]},
    "json-web/clf-time-before-year-1": {"skips": [("bad-timestamp", 1)]},
    "azure-web/iso-time-past-year-9999": {"skips": [("bad-timestamp", 1)]},
    "gcp-audit/timestamp-past-year-9999": {"skips": [("bad-timestamp", 1)]},
    "azure/timestamp-before-year-1": {"skips": [("bad-timestamp", 1)]},
    "zeek/json-ts-past-year-9999": {"skips": [("bad-timestamp", 1)]},
    "winsec/systemtime-before-year-1": {"skips": [("bad-timestamp", 1)]},
    # OverflowError in detect/probing.py (window end past 9999-12-31), engine/window.py (a suppressed alert's
    # float time rounding into the year 10000; --since 24h counted back past the year 1)
    "access/probing-at-end-of-time": {"alerts": [("imds-http-probing", 1)], "records": 5},
    "sysmon/suppressed-agent-at-end-of-time": {"records": 1, "status": "ok"},
    "json-web/newest-event-in-year-1": {"alerts": [(HTTP, 1)]},
    # auditd stamps: seconds beyond datetime (OverflowError) or beyond int()'s 4300 digits (ValueError)
    "auditd/stamp-seconds-5000-digits": {"skips": [("malformed-record", 1), ("malformed-record", 2)],
                                         "alerts": [(NET, 4)]},
    "auditd/stamp-seconds-400-digits": {"skips": [("malformed-record", 1), ("malformed-record", 2)],
                                        "alerts": [(NET, 4)]},
    "auditd/stamp-after-year-9999": {"skips": [("malformed-record", 1), ("malformed-record", 2)],
                                     "alerts": [(NET, 4)]},
    "auditd/interpreted-stamp-huge-hour": {"skips": [("malformed-record", 2)]},
    # auditd numbers: str.isdigit() takes '²' (int() refuses it) and 5000 digits (int() refuses them)
    "auditd/pid-5000-digits": {"alerts": [(NET, 1), (NET, 4)]},
    "auditd/pid-superscript-digit": {"alerts": [(NET, 1), (NET, 4)]},
    "auditd/argc-5000-digits": {"alerts": [(CMD, 1)]},
    "auditd/argc-superscript-digit": {"alerts": [(CMD, 1)]},
    "auditd/arg-len-5000-digits": {"alerts": [(CMD, 1)]},
    # auditd hang: range(argc) (or range(largest index + 1)) built in full for the "missing arguments" note
    "auditd/argc-10-to-the-12-hang": {"alerts": [(CMD, 1)], "records": 3},
    "auditd/arg-index-10-to-the-12-hang": {"alerts": [(CMD, 1)], "records": 3},
    # auditd: a record reported twice (invalid UTF-8, then its bad stamp): more skips than records
    "auditd/invalid-utf8-and-bad-stamp": {"skips": [("invalid-utf8", 1)], "records": 1},
    "mde/remote-port-5000-digits": {"alerts": [(NET, 1)]},
    "sysmon/port-and-pid-5000-digits": {"alerts": [(NET, 1)]},
    # RecursionError from the JSON decoder on deep nesting (sources/jsonstream.py)
    "azure/nested-20000-arrays": {"skips": [("malformed-json", 1)], "records": 2},
    "cloudtrail/nested-20000-arrays": {"skips": [("malformed-json", 2)], "records": 2},
    # skips naming the line after the last one (the end of input after a final newline)
    "cloudtrail/truncated-array-trailing-newline": {"skips": [("malformed-json", 2)]},
    "cloudtrail/wrapper-junk-after-array": {"skips": [("malformed-json", 2)]},
    "mde/truncated-array-trailing-newline": {"skips": [("malformed-json", 3)], "alerts": [(CMD, 3), (NET, 2)]},
    # Zeek TSV: unsupported-log reported at a directive line (not a record: more skips than records) and
    # the unsupported log's records counted usable; now each record read is skipped, as in JSON lines
    "zeek/broken-separator-directives-only": {"records": 0, "status": "empty"},
    "zeek/unsupported-log-tsv": {"skips": [("unsupported-log", 5)], "records": 2},
    # a whitespace-only line (spaces, or U+001D which str.strip() removes): a record, dropped without a skip
    "aws-lb/group-separator-only-line": {"skips": [("blank-line", 1)], "alerts": [(HTTP, 2)], "records": 2},
    "access/spaces-only-line": {"skips": [("blank-line", 2), ("blank-line", 3)], "alerts": [(HTTP, 1), (HTTP, 4)]},
    # UnicodeDecodeError from pyarrow (a bit-flipped string page): the rows whose strings are not UTF-8 are
    # skipped, the other rows of the batch still read
    "parquet/string-page-invalid-utf8": {"skips": [("invalid-utf8", 2), ("invalid-utf8", 3), ("invalid-utf8", 4)],
                                         "alerts": [(NET, 5), (CMD, 6), (NET, 12)], "records": 14},
    # an unterminated last line of a lone CR: blank without the prefilter, a record with it (records differed)
    "azure-web/unterminated-lone-cr-last-line": {"alerts": [(HTTP, 1)], "records": 1},
    # -- nasty inputs that did not crash, kept covered ------------------------------------------------
    "access/nul-and-invalid-utf8": {"skips": [("malformed-line", 2)], "alerts": [(HTTP, 1), (HTTP, 3)]},
    "access/percent-flood-then-encoded-host": {"alerts": [(HTTP, 1)]},
    "aws-lb/unterminated-quoted-request": {"alerts": [(HTTP, 1)]},
    "azure-web/records-document-truncated": {"skips": [("malformed-json", 1)]},
    "cloudtrail/nan-infinity-and-5000-digit-int": {"skips": [("malformed-json", 3)], "records": 2},
    "gcp-audit/not-an-object-lines": {"skips": [("not-audit-log", 1), ("not-audit-log", 2), ("not-audit-log", 3)],
                                      "records": 4},
    "iis/fields-count-mismatch": {"alerts": [(HTTP, 3)]},
    "json-web/deep-nesting": {"alerts": [(HTTP, 2)], "records": 2},
    "mde/csv-unterminated-quote": {"skips": [("csv-error", 2)]},
    "squid/digit-runs-and-doubled-separators": {"alerts": [(HTTP, 1), (HTTP, 2)]},
    "sysmon/dtd-entity-expansion.xml": {"skips": [("malformed-xml", 3)]},
    "sysmon/unclosed-event-tags": {"skips": [("truncated-xml", 1)], "alerts": [(NET, 1)], "records": 2001},
}

CORPUS_FILES = sorted(path for path in CORPUS.glob("*/*") if path.is_file())


def _corpus_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_corpus_files_and_expectations_match() -> None:
    files = {_corpus_id(path) for path in CORPUS_FILES}
    assert files == set(EXPECTED), \
        f"not in EXPECTED: {sorted(files - set(EXPECTED))}; no such file: {sorted(set(EXPECTED) - files)}"
    for path in CORPUS_FILES:
        assert path.parent.name in registry.BY_NAME, f"{path}: folder is not an adapter name"
        assert path.stat().st_size <= 64 * 1024, f"{path}: keep corpus files small"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=_corpus_id)
def test_crash_corpus(path: Path) -> None:
    outcome = check_input(path.parent.name, path.read_bytes())
    expected = EXPECTED.get(_corpus_id(path), {})
    reported = {(skip.reason, skip.line) for skip in outcome.skips}
    for skip in expected.get("skips", ()):
        assert tuple(skip) in reported, f"{skip} not reported; got {sorted(reported)}"
    for alert in expected.get("alerts", ()):
        assert tuple(alert) in outcome.alerts, f"{alert} not raised; got {outcome.alerts}"
    assert outcome.status == expected.get("status", outcome.status)
    if "records" in expected:
        assert outcome.records == expected["records"], outcome


# --------------------------------------------------------------------------------------------------
# The canonicaliser and URL extraction
# --------------------------------------------------------------------------------------------------

_HOST_CHARS = st.one_of(
    st.characters(),
    st.sampled_from([*"0123456789abcdefxX.:%[]@/\\#?-_ +", "\ud800", "\udfff", "\x00", "\uff10", "\uff0e", "\u3002",
                     "\uff61", "\uff05", "\u2460", "\u24ea", "\u00b2", "\u0663", "\u200b", "\u00ad"]),
)


# Hosts to canonicalise: arbitrary text, and spellings of random IPv4/IPv6 addresses and names (test_hosts'
# generators: radix, short forms, wrapping, mapped IPv6, Unicode, percent-encoding), some with junk appended.
_LABELS = st.from_regex(r"[a-z0-9_-]{1,12}(\.[a-z0-9_-]{1,12}){0,3}\.?", fullmatch=True)
_HOSTS = st.one_of(
    st.text(_HOST_CHARS, max_size=64),
    st.integers(0, 2**32 - 1).flatmap(ipv4_spelling),
    st.integers(0, 2**128 - 1).flatmap(ipv6_spelling),
    _LABELS.flatmap(unicode_and_percent),
    st.tuples(st.integers(0, 2**32 - 1).flatmap(ipv4_spelling), st.text(_HOST_CHARS, max_size=4)).map("".join),
)


@FUZZ_CHEAP
@given(text=_HOSTS)
def test_canonical_host_never_raises_and_is_idempotent(text: str) -> None:
    host = canonical_host(text)
    metadata_host(text)
    split_host_port(text)
    if host is None:
        return
    assert host.kind in ("ipv4", "ipv6", "name")
    again = canonical_host(host.value)
    assert again is not None and (again.kind, again.value) == (host.kind, host.value), (text, host, again)
    hit, hit_again = match_host(host), metadata_host(host.value)
    assert (hit and (hit.canonical, hit.via)) == (hit_again and (hit_again.canonical, hit_again.via)), text


@FUZZ_CHEAP
@given(data=st.data())
def test_metadata_spellings_survive_canonicalisation(data: st.DataObject) -> None:
    """Decimal, hex, octal, mixed, short forms, wrapping, IPv6-mapped and -compatible, Unicode and percent
    encodings of 169.254.169.254 (test_hosts' generators): recognised, canonical, and stable."""
    spelled = data.draw(ipv4_spelling(int(ipaddress.IPv4Address(IMDS))), label="spelling")
    host = canonical_host(spelled)
    assert host is not None and host.value == IMDS, spelled
    hit = metadata_host(spelled)
    assert hit is not None and hit.canonical == IMDS, spelled
    again = canonical_host(host.value)
    assert again is not None and again.value == IMDS


_JUNK_TEXT = st.text(st.one_of(st.characters(), st.sampled_from([*"\ud800\udfff%.0x/:'\"`\\"])), max_size=40)
_SEPARATORS = (" ", "\n", "; ", " && ", "\t", " | ", "\r\n")


@FUZZ_CHEAP
@given(data=st.data(), template=st.sampled_from(TEMPLATES), before=_JUNK_TEXT, after=_JUNK_TEXT,
       separator=st.sampled_from(_SEPARATORS))
def test_metadata_urls_are_found_among_junk(data: st.DataObject, template: tuple[str, str, str], before: str,
                                           after: str, separator: str) -> None:
    """A metadata spelling in every fetch form, with arbitrary text around it: still found, offsets exact."""
    if data.draw(st.booleans(), label="ipv6-mapped") and template[1] in ("url",):
        wrapped = data.draw(ipv6_wrapped_ipv4(int(ipaddress.IPv4Address(IMDS))), label="ipv6")
        spelled = wrapped if wrapped.startswith("[") else f"[{wrapped}]"
    else:
        spelled = data.draw(_spelled_ipv4(int(ipaddress.IPv4Address(IMDS))), label="ipv4")
    text = before + separator + template[0].format(h=spelled) + separator + after
    hits = find_metadata_references(text)
    assert any(hit.canonical == IMDS for _, hit in hits), text
    refs = extract_host_references(text)
    for ref, _ in hits:
        assert ref in refs
    for ref in refs:
        assert 0 <= ref.start < ref.end <= len(text)


@FUZZ_CHEAP
@given(text=st.text(_HOST_CHARS, max_size=200))
def test_url_extraction_never_raises_on_arbitrary_text(text: str) -> None:
    refs = extract_host_references(text)
    for ref in refs:
        assert 0 <= ref.start < ref.end <= len(text)
        assert text[ref.start:ref.end] == ref.raw
    hits = find_metadata_references(text)
    assert all(ref in refs for ref, _ in hits)


@FUZZ
@given(data=st.data(), name=st.sampled_from(("mde", "auditd", "access", "sysmon", "json-web")))
def test_url_extraction_on_mutated_records(data: st.DataObject, name: str) -> None:
    """Mutated seed records as text (command lines, requests, XML): the extractor must not fail on them."""
    payload = data.draw(fuzz_input(name), label="input")
    text = payload.decode("utf-8", "replace")[:8192]
    for ref in extract_host_references(text):
        assert text[ref.start:ref.end] == ref.raw
    find_metadata_references(text)


# --------------------------------------------------------------------------------------------------
# The prefilter
# --------------------------------------------------------------------------------------------------

LINE_ADAPTERS = tuple(name for name in ADAPTERS if hasattr(registry.BY_NAME[name], "parse_line"))
_PURE_PYTHON: dict[str, Prefilter] = {}


def _prefilters(name: str) -> tuple[Prefilter, Prefilter]:
    adapter = registry.BY_NAME[name]
    if name not in _PREFILTERS:
        _PREFILTERS[name] = for_adapter(adapter)
    if name not in _PURE_PYTHON:
        _PURE_PYTHON[name] = for_adapter(adapter, use_hyperscan=False)
    return _PREFILTERS[name], _PURE_PYTHON[name]


@pytest.mark.parametrize("name", LINE_ADAPTERS)
@FUZZ
@given(data=st.data())
def test_prefilter_plans_whole_lines_and_engines_agree(name: str, data: st.DataObject) -> None:
    block = data.draw(fuzz_input(name), label="block")
    plans = [prefilter.plan(block) for prefilter in _prefilters(name)]
    assert plans[0].spans == plans[1].spans and plans[0].blank_ends == plans[1].blank_ends, \
        f"{_prefilters(name)[0].engine} and python engines differ"
    plan = plans[0]
    previous_end = -1
    for start, end in plan.spans:
        assert previous_end < start <= end <= len(block), plan.spans
        assert start == 0 or block[start - 1:start] == b"\n", (start, end)
        assert end == len(block) or block[end:end + 1] == b"\n", (start, end)
        previous_end = end
    # blank lines (empty or a lone CR): each reported once, by the offset after its newline (an unterminated
    # last line: one past the end of the block, as the engine's plan without prefilter does)
    blank_ends = [index + 1 for index in range(len(block)) if block[index:index + 1] == b"\n"
                  and block[block.rfind(b"\n", 0, index) + 1:index] in (b"", b"\r")]
    if block[block.rfind(b"\n") + 1:] == b"\r":
        blank_ends.append(len(block) + 1)
    assert plan.blank_ends == blank_ends, (plan.blank_ends, blank_ends)
    selected = {start for start, _ in plan.spans}
    assert not selected & {block.rfind(b"\n", 0, end - 1) + 1 for end in blank_ends}, "a blank line selected"
