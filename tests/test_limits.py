"""The bounds of a scan (imds_detect/limits.py): defaults, validation, the [limits] table and --limit, each hit
counted in the summary (also across --jobs workers) and reported with file and line; data-only config and
the paths it names; no code execution on user data anywhere in src/."""

from __future__ import annotations

import gzip
import os
import re
import socket
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from imds_detect import limits
from imds_detect.cli import main
from imds_detect.config import ConfigError, load_config
from imds_detect.detect import probing
from imds_detect.engine.scan import ScanOptions, scan
from imds_detect.limits import BOUNDS, Limits, parse_overrides
from imds_detect.model import Severity
from imds_detect.sources import auditd, auditd_events, jsonstream, winevent
from imds_detect.sources.auditd import AuditdParser
from imds_detect.sources.base import Skip

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SRC = ROOT / "src" / "imds_detect"
MDE_LINE = (FIXTURES / "mde" / "ah.jsonl").read_bytes().split(b"\n")[0]


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", "--output", "jsonl", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


# -- the Limits values -------------------------------------------------------------------------------------------


def test_defaults_are_the_values_the_code_always_used() -> None:
    defaults = Limits()
    assert auditd.MAX_LINE == defaults.max_line_bytes == 1 << 18
    assert jsonstream.MAX_RECORD == defaults.max_json_record_bytes == 256 << 20
    assert winevent.MAX_RECORD == defaults.max_event_bytes == 1 << 20
    assert auditd_events.WINDOW_EVENTS == defaults.max_audit_open_events == 128
    assert auditd_events.MAX_RECORDS == defaults.max_audit_event_records == 64
    assert probing.MAX_LISTED == defaults.max_probing_listed == 32
    assert defaults.max_decode_depth == 4 and defaults.max_text_chars == 65536
    assert set(BOUNDS) == set(defaults.as_dict()) == set(limits.DESCRIPTIONS)
    for name, value in defaults.as_dict().items():
        low, high = BOUNDS[name]
        assert low <= value <= high, name


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "4096", 1 << 40])
def test_bad_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="max_line_bytes must be a whole number"):
        Limits.from_table({"max_line_bytes": value})


def test_overrides() -> None:
    assert parse_overrides(["max-line-bytes=1_048_576", "max_decode_depth=6"], Limits()) == \
        Limits(max_line_bytes=1 << 20, max_decode_depth=6)
    for bad, message in (("max_line_bytes", "NAME=VALUE"), ("nope=3", "unknown key nope"),
                         ("max_line_bytes=big", "whole number"), ("max_decode_depth=99", "from 1 to 16")):
        with pytest.raises(ValueError, match=message):
            parse_overrides([bad], Limits())


# -- the config table and the flag ---------------------------------------------------------------------------------


def test_limits_table(tmp_path: Path) -> None:
    config = tmp_path / "imds.toml"
    config.write_text("[limits]\nmax_line_bytes = 1048576\nmax_decode_depth = 6\n")
    assert load_config(str(config)).limits == Limits(max_line_bytes=1 << 20, max_decode_depth=6)
    assert load_config(None).limits == Limits()


@pytest.mark.parametrize(("text", "message"), [
    ("[limits]\nmax_lines = 3\n", "unknown key limits.max_lines"),
    ('[limits]\nmax_line_bytes = "big"\n', "limits.max_line_bytes must be a whole number"),
    ("[limits]\nmax_decode_depth = 0\n", "limits.max_decode_depth must be"),
    ("limits = 3\n", "limits must be a table"),
])
def test_bad_limits_are_one_error_line_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "imds.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(config))
    code, _, err = cli("--config", str(config), str(FIXTURES / "mde" / "ah.jsonl"))
    assert code == 2 and err.count("\n") == 1 and str(config) in err and message.split()[-1] in err


def test_limit_flag_error_is_one_line() -> None:
    code, _, err = cli("--limit", "max_line_bytes=1", str(FIXTURES / "mde" / "ah.jsonl"))
    assert code == 2 and err.startswith("imds-detect: error: --limit max_line_bytes") and err.count("\n") == 1


# -- hits: counted, reported, nothing lost ---------------------------------------------------------------------


def test_oversized_lines_are_reported_counted_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    huge = b'{"pad": "' + b"x" * (9 << 20) + b'"}'  # no newline for more than two read blocks
    path.write_bytes(MDE_LINE + b"\n" + huge + b"\n" + MDE_LINE + b"\n" + huge)
    code, out, err = cli("--limit", "max_json_record_bytes=65536", str(path))
    assert code == 0 and len(out.splitlines()) == 2
    assert f"{path}:2: skipped (oversized-record)" in err and f"{path}:4: skipped (oversized-record)" in err
    assert "limits hit: max_json_record_bytes=2" in err and "oversized-record=2" in err
    code, out, err = cli(str(path))  # within the default 256 MiB: read (and harmless)
    assert code == 0 and len(out.splitlines()) == 2 and "limits hit" not in err


def test_limit_hits_merge_across_jobs(tmp_path: Path) -> None:
    files = []
    for index in range(3):
        path = tmp_path / f"part{index}.jsonl"
        path.write_bytes(MDE_LINE + b"\n" + b'{"pad": "' + b"y" * 5000 + b'"}\n')
        files.append(str(path))
    options = {"min_severity": Severity.INFORMATIONAL, "limits": Limits(max_json_record_bytes=4096)}
    one = scan(files, ScanOptions(**options))  # type: ignore[arg-type]
    two = scan(files, ScanOptions(jobs=2, **options))  # type: ignore[arg-type]
    assert one.summary.limits == two.summary.limits == Counter({"max_json_record_bytes": 3})
    assert one.summary.as_dict() == two.summary.as_dict()


def test_text_and_decode_limits_judge_what_they_reach(tmp_path: Path) -> None:
    url = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    deep = url
    for _ in range(3):
        deep = deep.replace("%", "%25").replace(":", "%3A").replace("/", "%2F")
    path = tmp_path / "access.log"
    path.write_text(f'198.51.100.7 - - [27/Nov/2026:08:00:00 +0000] "GET /fetch?u={deep} HTTP/1.1" 200 9 "-" "x"\n'
                    f'198.51.100.8 - - [27/Nov/2026:08:00:01 +0000] "GET /fetch?u={url}{"a" * 5000} HTTP/1.1" '
                    '200 9 "-" "x"\n')
    code, out, err = cli("--limit", "max_decode_depth=2", "--limit", "max_text_chars=1024", str(path))
    assert code == 0
    assert re.search(r"limits hit: max_decode_depth=\d+, max_text_chars=\d+", err), err
    assert f"{path}:2: limit max_text_chars=1024 reached" in err  # the record being judged
    assert "198.51.100.8" in out  # judged in part: the URL is in the first 1024 characters
    assert "198.51.100.7" not in out  # still encoded after two rounds
    code, out, err = cli(str(path))
    assert "198.51.100.7" in out and "limits hit" not in err  # three rounds: within the default four


def _connect(serial: int, pid: int) -> list[bytes]:
    stamp = f"msg=audit(1715681472.{serial % 1000:03d}:{serial}):".encode()
    return [b"type=SYSCALL " + stamp + b" arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=7ffd a2=10 a3=0 "
            b"items=0 ppid=1 pid=" + str(pid).encode() + b' auid=1000 uid=0 comm="curl" exe="/usr/bin/curl" key=x',
            b"type=SOCKADDR " + stamp + b" saddr=02000050A9FEA9FE0000000000000000"]


def test_audit_events_evicted_by_the_window_are_judged_and_counted() -> None:
    lines: list[bytes] = []
    for serial in range(1, 11):  # ten events without EOE, all open at once
        lines += _connect(serial, 100 + serial)
    skips: list[Skip] = []
    hits: Counter[str] = Counter()
    limits.activate(Limits(max_audit_open_events=3), lambda name, count, *_: hits.update({name: count}))
    try:
        import io

        events = list(AuditdParser("a.log", skips.append).events(io.BytesIO(b"\n".join(lines) + b"\n")))
    finally:
        limits.activate(Limits(), None)
    assert len(events) == 10 and not skips  # closed early, still judged
    assert hits["max_audit_open_events"] == 6  # 10 events, at most 3 + 1 open: the 6 oldest closed early


def test_audit_event_records_over_the_cap_are_reported(tmp_path: Path) -> None:
    lines = _connect(7, 700)
    stamp = b"msg=audit(1715681472.007:7):"
    lines += [b"type=PATH " + stamp + b" item=0 name=x"] + [b"type=CWD " + stamp + b' cwd="/"'] * 10
    lines += [b"type=EOE " + stamp]
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = cli("--no-prefilter", "--limit", "max_audit_event_records=4", str(path))
    assert code == 0 and len(out.splitlines()) == 1  # built from its first records
    assert f"{path}:6: skipped (oversized-event)" in err  # its fifth tracked record (PATH is not tracked)
    assert "limits hit: max_audit_event_records=1" in err


def test_probing_clients_beyond_the_cap_stay_unfolded(tmp_path: Path) -> None:
    rows = []
    for client in (1, 2):
        for second in range(6):
            rows.append(f'198.51.100.{client} - - [27/Nov/2026:08:00:0{second} +0000] "GET /f?u=http://169.254.169.254'
                        f'/latest/meta-data/{second} HTTP/1.1" 200 9 "-" "x"')
    rows.append('198.51.100.2 - - [27/Nov/2026:08:00:09 +0000] "GET /f?u=http://169.254.169.254/x HTTP/1.1" 200 9 '
                '"-" "x"')
    path = tmp_path / "access.log"
    path.write_text("\n".join(rows) + "\n")
    code, out, err = cli("--limit", "max_probing_clients=1", str(path))
    assert code == 0 and "limits hit: max_probing_clients=1" in err
    assert out.count('"rule_id":"imds-http-probing"') == 1  # the client with the most alerts is folded ...
    assert out.count('"rule_id":"imds-http-request"') == 6  # ... the other one's stay one by one
    assert "kept unfolded, e.g. 198.51.100.1" in err
    code, out, _ = cli(str(path))
    assert out.count('"rule_id":"imds-http-probing"') == 2


# -- config: data only, and the paths it names ---------------------------------------------------------------------


def _config(folder: Path, ranges: str) -> Path:
    config = folder / "imds.toml"
    config.write_text(f'[cloud]\nip_ranges = ["{ranges}"]\n')
    return config


def test_relative_config_paths_stay_in_the_config_folder(tmp_path: Path) -> None:
    ranges = (FIXTURES / "cloudtrail" / "ip-ranges.json").read_bytes()
    inside, outside = tmp_path / "conf", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (outside / "ranges.json").write_bytes(ranges)
    (inside / "ranges.json").write_bytes(ranges)
    (inside / "sub").mkdir()
    (inside / "sub" / "r.json").write_bytes(ranges)
    assert load_config(str(_config(inside, "ranges.json"))).cloud.ranges.providers == {"aws"}
    assert load_config(str(_config(inside, "sub/../sub/r.json"))).cloud.ranges.providers == {"aws"}
    assert load_config(str(_config(inside, str(outside / "ranges.json")))).cloud.ranges.providers == {"aws"}
    (inside / "link.json").symlink_to(outside / "ranges.json")
    for escaping in ("../elsewhere/ranges.json", "link.json"):
        with pytest.raises(ConfigError, match=r"cloud\.ip_ranges: .* leads outside the config file's folder"):
            load_config(str(_config(inside, escaping)))
    code, _, err = cli("--config", str(_config(inside, "../elsewhere/ranges.json")), str(FIXTURES / "mde" / "ah.jsonl"))
    assert code == 2 and err.count("\n") == 1 and "imds.toml" in err and "cloud.ip_ranges" in err


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "socket"])
def test_named_paths_that_are_not_regular_files_are_refused(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "ranges.json"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    name = "/dev/null" if kind == "device" else "ranges.json"
    label = "FIFO" if kind == "fifo" else kind
    with pytest.raises(ConfigError, match=rf"cloud\.ip_ranges: .*a {label}, not a regular"):
        load_config(str(_config(tmp_path, name)))  # (a FIFO is refused without opening it: no hang)
    named = "/dev/null" if kind == "device" else str(target)
    code, _, err = cli("--ip-ranges", named, str(FIXTURES / "mde" / "ah.jsonl"))
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err


_FORBIDDEN = re.compile(r"\b(?:eval|exec)\(|\bpickle\.loads?\(|\bmarshal\.loads?\(|\byaml\.load\((?![^)]*SafeLoader)"
                        r"|\byaml\.unsafe_load|\bshelve\.open\(|__import__\(")
# (file relative to src/imds_detect, the match) that are proven safe
_ALLOWED: set[tuple[str, str]] = {("export/sigma_rules.py", "__import__(")}  # a constant module name


def test_no_code_execution_on_user_data_in_src() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in _FORBIDDEN.finditer(text):
            where = (str(path.relative_to(SRC)), match.group(0))
            if where not in _ALLOWED:
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{where[0]}:{line}: {match.group(0)}")
    assert not found, "code execution on data (use tomllib / yaml.safe_load / json): " + ", ".join(found)
    assert "tomllib.loads" in (SRC / "config.py").read_text(encoding="utf-8")


def test_gzip_cut_short_keeps_what_came_before(tmp_path: Path) -> None:
    data = gzip.compress(MDE_LINE + b"\n" + b"\n".join([MDE_LINE] * 300) + b"\n")
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    code, out, err = cli(str(path))
    assert code == 0 and out and "PARTIAL" in err and "read stopped early" in err
