"""Hostile input, every format: truncated, binary junk, invalid UTF-8, mixed encodings, empty, huge lines,
the wrong format forced, only junk. Each case runs the real CLI (`imds-detect scan`, in process) and checks
the exit code, that stderr names the file and line (EVTX: record number; Parquet: row) of what it could not
read, that the summary counts it with a reason, that the metadata accesses planted before and after the bad
part still alert, and that nothing raised.

The cases are listed by :func:`cases` (also used by ``tests/hostile_table.py``, which prints the README's
"Hostile input" table; :func:`test_readme_table_matches_the_cases` keeps that table from going stale).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.sources.registry import ADAPTERS

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None

# -- one alerting unit of each format (the lines of one metadata access; `i` makes each unit distinct) ---------


def _fixture_line(path: str, number: int) -> bytes:
    return (FIXTURES / path).read_bytes().split(b"\n")[number - 1].rstrip(b"\r")


def _swap(line: bytes, old: bytes, new: bytes) -> bytes:
    assert old in line, (old, line[:80])
    return line.replace(old, new)


def _auditd(i: int) -> list[bytes]:
    stamp = f"msg=audit(1715681472.{i:03d}:{500 + i}):".encode()
    return [b"type=SYSCALL " + stamp + b" arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=7ffd5a7d8a40 a2=10 "
            b"a3=0 items=0 ppid=1 pid=" + str(4000 + i).encode() + b" auid=1000 uid=1000 gid=1000 euid=1000 "
            b'comm="curl" exe="/usr/bin/curl" key="imds"',
            b"type=SOCKADDR " + stamp + b" saddr=02000050A9FEA9FE0000000000000000",
            b"type=PROCTITLE " + stamp + b" proctitle=6375726C",
            b"type=EOE " + stamp]


def _zeek_header() -> bytes:
    return b"\n".join((FIXTURES / "weblogs/zeek/http.log").read_bytes().split(b"\n")[:8]) + b"\n"


def _iis_header() -> bytes:
    return b"\n".join((FIXTURES / "weblogs/iis/u_ex261127.log").read_bytes().split(b"\n")[:4]) + b"\n"


UNITS: dict[str, Callable[[int], list[bytes]]] = {
    "access": lambda i: [_swap(_fixture_line("weblogs/access/combined.log", 1), b"198.51.100.1 ",
                               f"198.51.100.{10 + i} ".encode())],
    "squid": lambda i: [_swap(_fixture_line("weblogs/squid/native.log", 1), b"10.20.0.5",
                              f"10.20.0.{10 + i}".encode())],
    "zeek": lambda i: [_swap(_fixture_line("weblogs/zeek/http.log", 9), b"10.30.0.5", f"10.30.0.{10 + i}".encode())],
    "iis": lambda i: [_swap(_fixture_line("weblogs/iis/u_ex261127.log", 5), b"198.51.102.101",
                            f"198.51.102.{10 + i}".encode())],
    "aws-lb": lambda i: [_swap(_fixture_line("weblogs/aws_lb/alb.log", 1), b"198.51.102.201",
                               f"198.51.102.{10 + i}".encode())],
    "azure-web": lambda i: [_swap(_fixture_line("weblogs/azure_web/appgw.json", 1), b"198.51.100.90",
                                  f"198.51.100.{10 + i}".encode())],
    "json-web": lambda i: [_swap(_fixture_line("weblogs/json_web/nginx.jsonl", 1), b"198.51.100.95",
                                 f"198.51.100.{10 + i}".encode())],
    "mde": lambda i: [_fixture_line("mde/ah.jsonl", 1)],
    "auditd": _auditd,
    "cloudtrail": lambda i: [_fixture_line("cloudtrail/hardening.jsonl", 7)],
    "gcp-audit": lambda i: [_swap(_fixture_line("gcp/audit.jsonl", n), b"app@", f"app{i}@".encode()) for n in (5, 6)],
    "azure": lambda i: [_swap(_fixture_line("azure/signins.jsonl", n), b"555555555555", f"55555555555{i}".encode())
                        for n in (1, 2)],
}
HEADERS: dict[str, bytes] = {"zeek": _zeek_header(), "iis": _iis_header()}
BINARY = {"parquet": "Parquet", "sysmon": "EVTX", "winsec": "EVTX"}
# The wrong format each file is forced as (--format): an audit.log as Defender, and so on round the formats.
WRONG = {"auditd": "mde", "mde": "auditd", "access": "parquet", "squid": "sysmon", "zeek": "winsec",
         "iis": "cloudtrail", "aws-lb": "gcp-audit", "azure-web": "gcp-audit", "json-web": "zeek",
         "cloudtrail": "access", "gcp-audit": "squid", "azure": "iis", "sysmon": "aws-lb", "winsec": "json-web",
         "parquet": "azure-web"}
SMALL_LIMITS = ("--limit", "max_line_bytes=4096", "--limit", "max_json_record_bytes=4096",
                "--limit", "max_event_bytes=4096")


def _junk(size: int, seed: int, newlines: bool = False) -> bytes:
    data = random.Random(seed).randbytes(size)
    return data if newlines else data.replace(b"\n", b"\x00")


# -- the cases ----------------------------------------------------------------------------------------------


@dataclass
class Built:
    """A hostile file and what the scan of it must show."""

    data: bytes
    name: str = "input.log"
    args: tuple[str, ...] = ()
    exit_code: int = 0
    before: int = 0  # alerts expected from records before the bad part: at least one with a line < `bad_line`
    after: bool = False  # an alert from a record after the bad part (line > `bad_line`)
    bad_line: int = 0  # the line (record number, row) stderr names for the bad part; 0: none expected
    bad_or_alert: bool = False  # the bad record may instead be read and alert itself (bytes a parser may replace)
    unit_lines: int = 1  # lines of the unit the bad record belongs to (its alert may be on another of them)
    skipped: bool = False  # the summary counts a skipped record
    stderr: tuple[str, ...] = ()  # text stderr must hold (besides the file name)
    limits_hit: str = ""  # a limit the summary must count


@dataclass(frozen=True)
class Case:
    """One hostile input for one format."""

    fmt: str
    hostile: str  # the class (a README table row)
    variant: str
    build: Callable[[Path], Built] = field(compare=False)

    @property
    def id(self) -> str:
        return f"{self.fmt}-{self.hostile}-{self.variant}"


# class -> (the inputs, what is asserted besides exit code, no traceback and the file named on failure)
CLASSES = {
    "truncated": ("last record cut in half; gzip cut mid-stream; EVTX/Parquet cut at 2/3",
                  "exit 0, alerts before the cut, the cut record reported at its line (or read), PARTIAL for gzip; "
                  "Parquet without its footer: exit 2, unreadable-parquet"),
    "binary-junk": ("a line of random bytes, a line of NULs between records (EVTX/Parquet: 64 bytes overwritten)",
                    "exit 0, skipped at file:line with a reason, alerts before and after"),
    "invalid-utf8": ("invalid UTF-8 bytes inside an alerting record (Parquet: a binary column)",
                     "exit 0, the record alerts or is reported at its line, alerts before and after"),
    "mixed-encodings": ("a UTF-16 line among UTF-8 ones, Latin-1 bytes in a record, a UTF-8 BOM, a whole UTF-16 file",
                        "exit 0 and alerts before and after (UTF-16 file: exit 2 naming UTF-16)"),
    "empty": ("0 bytes (auto and forced), blank lines only", "exit 2, the file named as empty"),
    "huge-line": ("a line / JSON record over the limit (--limit ...=4096); Parquet: a field over max_text_chars",
                  "exit 0, oversized-record at file:line, 'limits hit' in the summary, alerts before and after"),
    "wrong-format": ("the file forced with --format as another format (an audit.log as mde, ...)",
                     "exit 2: nothing usable, 'forced by --format' named"),
    "only-junk": ("4 KiB of random bytes, auto-detected and forced", "exit 2: not recognised / nothing usable"),
}


def _text_file(fmt: str, units: list[list[bytes]], middle: list[bytes] | None = None,
               at: int = 2) -> tuple[bytes, int]:
    """The file: header, units[:at], `middle`, units[at:]; and the line number of `middle`'s first line."""
    lines: list[bytes] = HEADERS.get(fmt, b"").splitlines()
    for unit in units[:at]:
        lines += unit
    bad_line = len(lines) + 1
    lines += middle or []
    for unit in units[at:]:
        lines += unit
    return b"\n".join(lines) + b"\n", bad_line


def _text_cases(fmt: str) -> list[Case]:
    unit = UNITS[fmt]
    units = [unit(i) for i in range(4)]
    name = "input.json" if fmt in ("azure-web", "cloudtrail", "gcp-audit", "azure") else "input.log"
    cases: list[Case] = []

    def add(hostile: str, variant: str, build: Callable[[Path], Built]) -> None:
        cases.append(Case(fmt, hostile, variant, build))

    def cut_mid_record(_: Path) -> Built:
        good, bad_line = _text_file(fmt, units[:2], [])
        last = units[2][0]
        return Built(good + last[: len(last) // 2], name, before=1, bad_line=bad_line, bad_or_alert=True)

    def gzip_cut(_: Path) -> Built:
        good, _ = _text_file(fmt, units * 100)
        packed = gzip.compress(good)
        return Built(packed[: len(packed) * 2 // 3], name + ".gz", before=1, skipped=True,
                     stderr=("read stopped early", "PARTIAL"))

    def junk_line(data: bytes) -> Callable[[Path], Built]:
        def build(_: Path) -> Built:
            text, bad_line = _text_file(fmt, units, [data])
            return Built(text, name, before=1, after=True, bad_line=bad_line, skipped=True)
        return build

    def inside(bad: bytes) -> Callable[[Path], Built]:
        def build(_: Path) -> Built:
            first = units[2][0]
            spot = len(first) - 2
            changed = [first[:spot] + bad + first[spot:], *units[2][1:]]
            text, bad_line = _text_file(fmt, [*units[:2], changed, units[3]])
            return Built(text, name, before=1, after=True, bad_line=bad_line, bad_or_alert=True,
                         unit_lines=len(changed))
        return build

    def utf16_line(_: Path) -> Built:
        text, bad_line = _text_file(fmt, units, [units[3][0].decode("utf-8", "replace").encode("utf-16-le")])
        return Built(text, name, before=1, after=True, bad_line=bad_line, skipped=True)

    def bom(_: Path) -> Built:
        text, _ = _text_file(fmt, units)
        return Built(b"\xef\xbb\xbf" + text, name, before=1)

    def utf16_file(_: Path) -> Built:
        text, _ = _text_file(fmt, units)
        return Built(text.decode("utf-8", "replace").encode("utf-16"), name, exit_code=2,
                     stderr=("UTF-16",))

    def huge(_: Path) -> Built:
        line = units[3][0]  # as a valid record where records are JSON (a JSON record over the limit)
        padded = b'{"padding": "' + b"x" * 70_000 + b'", ' + line[1:] if line.startswith(b"{") else b"x" * 70_000
        text, bad_line = _text_file(fmt, units, [padded])
        return Built(text, name, args=SMALL_LIMITS, before=1, after=True, bad_line=bad_line, skipped=True,
                     limits_hit="max_")

    add("truncated", "mid-record", cut_mid_record)
    add("truncated", "gzip-cut", gzip_cut)
    add("binary-junk", "random-bytes", junk_line(_junk(300, 7)))
    add("binary-junk", "nul-bytes", junk_line(b"\x00" * 200))
    add("invalid-utf8", "in-record", inside(b"\xff\xfe\xc3\x28"))
    add("mixed-encodings", "utf16-line", utf16_line)
    add("mixed-encodings", "latin1-in-record", inside("café".encode("latin-1")))
    add("mixed-encodings", "utf8-bom", bom)
    add("mixed-encodings", "utf16-file", utf16_file)
    add("huge-line", "over-limit", huge)
    cases += _common_cases(fmt, name, lambda: _text_file(fmt, units)[0])
    return cases


def _common_cases(fmt: str, name: str, good: Callable[[], bytes]) -> list[Case]:
    """Empty, wrong-format and only-junk cases: the same for every format."""
    forced = ("--format", fmt)
    return [
        Case(fmt, "empty", "zero-bytes", lambda _: Built(b"", name, exit_code=2, stderr=("empty",))),
        Case(fmt, "empty", "zero-bytes-forced", lambda _: Built(b"", name, args=forced, exit_code=2)),
        *([] if fmt in BINARY else [
            Case(fmt, "empty", "blank-lines", lambda _: Built(b"\n\n  \n\r\n", name, exit_code=2,
                                                              stderr=("empty",)))]),
        Case(fmt, "wrong-format", f"as-{WRONG[fmt]}",
             lambda _: Built(good(), name, args=("--format", WRONG[fmt]), exit_code=2,
                             stderr=("forced by --format",) if WRONG[fmt] not in BINARY else ())),
        Case(fmt, "only-junk", "auto", lambda _: Built(_junk(4096, 11, True), name, exit_code=2,
                                                       stderr=("not recognised",))),
        Case(fmt, "only-junk", "forced", lambda _: Built(_junk(4096, 11, True), name, args=forced, exit_code=2)),
    ]


# -- binary shapes ------------------------------------------------------------------------------------------

def _evtx(fmt: str) -> bytes:
    """A three-chunk EVTX file of the format, every record alerting (tests/fixtures/*/generate.py's writer)."""
    if fmt == "sysmon":
        return gzip.decompress((FIXTURES / "sysmon" / "many.evtx.gz").read_bytes())
    return _winsec_many()


def _winsec_many() -> bytes:
    import dataclasses

    spec = importlib.util.spec_from_file_location("winsec_generate", FIXTURES / "winsec" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("generate")
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is not None:
            sys.modules["generate"] = saved
    records = []
    for n in range(84):
        command = module.CURL_COMMAND + f"?n={n} -H x:" + "y" * 500
        record = module.process_created(2, 0x2004 + n, r"C:\Windows\System32\curl.exe", command, 0x1F40,
                                        r"C:\Windows\System32\cmd.exe", *module.ALICE[1:], module.ALICE[0])
        records.append(dataclasses.replace(record, record_id=70000 + n))
    return module.evtx_bytes(records)  # type: ignore[no-any-return]


def _binary_cases(fmt: str) -> list[Case]:
    cases: list[Case] = []
    name = "input.evtx" if fmt != "parquet" else "input.parquet"

    def good() -> bytes:
        return _parquet(400) if fmt == "parquet" else _evtx(fmt)

    def cut(_: Path) -> Built:
        data = good()
        if fmt == "parquet":  # its footer is gone: nothing can be read
            return Built(data[: len(data) * 2 // 3], name, exit_code=2, stderr=("unreadable-parquet",))
        return Built(data[: len(data) * 2 // 3], name, before=1, skipped=True)

    def gzip_cut(_: Path) -> Built:
        packed = gzip.compress(good())
        if fmt == "parquet":
            return Built(packed[: len(packed) * 2 // 3], name + ".gz", exit_code=2,
                         stderr=("unreadable-parquet", "read stopped early"))
        return Built(packed[: len(packed) * 2 // 3], name + ".gz", before=1, skipped=True,
                     stderr=("read stopped early",))

    def overwrite(byte: int | None) -> Callable[[Path], Built]:
        def build(_: Path) -> Built:
            data = bytearray(good())
            spot = _damage_spot(fmt, bytes(data))
            data[spot: spot + 64] = _junk(64, 3) if byte is None else bytes([byte]) * 64
            return Built(bytes(data), name, before=1, after=True, skipped=True)
        return build

    cases.append(Case(fmt, "truncated", "cut", cut))
    cases.append(Case(fmt, "truncated", "gzip-cut", gzip_cut))
    cases.append(Case(fmt, "binary-junk", "random-bytes", overwrite(None)))
    cases.append(Case(fmt, "binary-junk", "nul-bytes", overwrite(0)))
    if fmt == "parquet":
        cases.append(Case(fmt, "invalid-utf8", "binary-column", lambda _: Built(
            _parquet(400, invalid=True), name, before=1, after=True)))
        cases.append(Case(fmt, "huge-line", "huge-field", lambda _: Built(
            _parquet(400, huge=True), name, args=("--limit", "max_text_chars=4096"), before=1, after=True,
            limits_hit="max_text_chars")))
    cases += _common_cases(fmt, name, good)
    return cases


def _damage_spot(fmt: str, data: bytes) -> int:
    if fmt == "parquet":
        return len(data) // 3  # inside a data page of a row group in the middle
    if len(data) > 4096 + 65536:
        return 4096 + 65536 + 512 + 2000  # inside the records of the second chunk
    return 4096 + 512 + 1500  # inside the records of the only chunk


def _parquet(rows: int, invalid: bool = False, huge: bool = False) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = json.loads(_fixture_line("mde/ah.jsonl", 1))
    table_rows = []
    for index in range(rows):
        item = dict(row)
        item["InitiatingProcessId"] = 1000 + index
        if huge and index == rows // 2:
            item["RemoteIP"], item["RemoteUrl"] = "", "http://169.254.169.254/latest/meta-data/" + "x" * 100_000
        table_rows.append(item)
    table = pa.Table.from_pylist(table_rows)
    if invalid:
        column = table.schema.get_field_index("InitiatingProcessCommandLine")
        values = [(value or "").encode() + (b"\xff\xfe" if index == rows // 2 else b"")
                  for index, value in enumerate(table.column(column).to_pylist())]
        table = table.set_column(column, pa.field("InitiatingProcessCommandLine", pa.binary()),
                                 pa.array(values, pa.binary()))
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=max(1, rows // 8))
    return sink.getvalue()


def cases() -> list[Case]:
    """Every (format, hostile class, variant) case, in registry order."""
    found: list[Case] = []
    for adapter in ADAPTERS:
        if adapter.name in BINARY:
            found += _binary_cases(adapter.name)
        else:
            found += _text_cases(adapter.name)
    return found


CASES = cases()


# -- running ------------------------------------------------------------------------------------------------


def run(case: Case, folder: Path) -> tuple[Built, int, list[dict[str, object]], str]:
    built = case.build(folder)
    path = folder / built.name
    path.write_bytes(built.data)
    result = CliRunner().invoke(main, ["scan", "--output", "jsonl", "--min-severity", "informational",
                                       *built.args, str(path)], catch_exceptions=True)
    exception = result.exception
    assert exception is None or isinstance(exception, SystemExit), f"{case.id} raised {exception!r}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return built, result.exit_code, alerts, result.stderr


def _alert_lines(alerts: list[dict[str, object]]) -> list[int]:
    lines = []
    for alert in alerts:
        source = alert.get("source")
        if isinstance(source, dict) and isinstance(source.get("line"), int):
            lines.append(source["line"])
    return lines


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    if (case.fmt == "parquet" or WRONG[case.fmt] == "parquet") and not HAVE_PYARROW:
        pytest.skip("pyarrow is not installed")
    built, code, alerts, stderr = run(case, tmp_path)
    path = str(tmp_path / built.name)
    assert code == built.exit_code, f"exit {code}, expected {built.exit_code}\n{stderr}"
    assert path in stderr or code == 0, stderr  # a failed file is named
    for text in built.stderr:
        assert text in stderr, f"{text!r} not in stderr:\n{stderr}"
    lines = _alert_lines(alerts)
    if built.before:
        assert any(line < (built.bad_line or 10**9) for line in lines), f"no alert before the bad part\n{stderr}"
    if built.after:
        assert any(line > built.bad_line for line in lines), f"no alert after line {built.bad_line}\n{stderr}"
    if built.bad_line and not built.bad_or_alert:
        assert re.search(rf"{re.escape(path)}:{built.bad_line}\b", stderr), f"line {built.bad_line}:\n{stderr}"
    if built.bad_or_alert:
        unit = range(built.bad_line, built.bad_line + built.unit_lines)
        assert (any(line in unit for line in lines) or f"{path}:{built.bad_line}" in stderr), \
            f"record at line {built.bad_line} neither alerted nor reported\n{stderr}"
    if built.skipped:
        assert "skipped records:" in stderr or "PARTIAL" in stderr, stderr
    if built.limits_hit:
        assert re.search(r"limits hit: .*" + re.escape(built.limits_hit), stderr), stderr
    if code == 2 and "not recognised" not in stderr and built.exit_code == 2:
        assert "error" in stderr.lower() or "NOT READ" in stderr or "EMPTY" in stderr or "UNUSABLE" in stderr


# -- the README table -----------------------------------------------------------------------------------------


def table_rows(results: dict[str, str] | None = None) -> list[tuple[str, int, int, str, str, str]]:
    """(class, formats, cases, inputs, what is asserted, result) per hostile class, from the parametrisation;
    `results` maps case ids to "passed", "failed" or "skipped"."""
    per_class: dict[str, list[Case]] = {}
    for case in CASES:
        per_class.setdefault(case.hostile, []).append(case)
    rows = []
    for hostile in CLASSES:
        found = per_class[hostile]
        formats = len({case.fmt for case in found})
        if results is None:
            outcome = "-"
        else:
            counted = Counter(results.get(case.id, "not run") for case in found)
            outcome = ", ".join(f"{count} {state}" for state, count in sorted(counted.items()))
        rows.append((hostile, formats, len(found), CLASSES[hostile][0], CLASSES[hostile][1], outcome))
    return rows


README_ROW = re.compile(r"^\| `(?P<name>[a-z0-9-]+)` \| (?P<formats>\d+) \| (?P<cases>\d+) \|", re.MULTILINE)


def test_readme_table_matches_the_cases() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Hostile input", 1)[1].split("\n## ", 1)[0]
    found = {match["name"]: (int(match["formats"]), int(match["cases"])) for match in README_ROW.finditer(section)}
    expected = {name: (formats, count) for name, formats, count, *_ in table_rows()}
    assert found == expected, "README's Hostile input table is stale: run python tests/hostile_table.py"
