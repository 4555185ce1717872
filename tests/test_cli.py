"""The command line: inputs, outputs, filters, summary and exit codes."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from imds_detect.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "defender-sample.jsonl"


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_jsonl_alerts_carry_the_documented_fields() -> None:
    code, out, err = run(str(SAMPLE), "--output", "jsonl")
    assert code == 0, err
    alerts = jsonl(out)
    assert len(alerts) == 18
    first = alerts[0]
    for key in ("rule_id", "title", "severity", "technique", "tactic", "timestamp", "host", "user", "process",
                "endpoint", "reasons", "source"):
        assert key in first
    assert set(first["process"]) >= {"name", "path", "pid", "command_line", "parent_name", "parent_path"}
    assert set(first["endpoint"]) >= {"provider", "raw", "canonical", "port", "path", "path_class"}
    assert set(first["source"]) == {"format", "file", "line", "record"}
    assert first["technique"] == "T1552.005"
    stamps = [alert["timestamp"] for alert in alerts]
    assert stamps == sorted(stamps, reverse=True), "newest first"


def test_summary_on_stderr_counts_everything() -> None:
    _, _, err = run(str(SAMPLE), "--output", "jsonl")
    assert "34 record(s) read" in err
    assert "skipped records: 1 (malformed-json=1)" in err
    assert "defender-sample.jsonl:18" in err
    assert "alerts: 18 (critical=0, high=14, medium=4, low=0, informational=0)" in err
    assert "suppressed by allowlist: 5" in err
    assert "below --min-severity: 1" in err


def test_min_severity_and_fail_on() -> None:
    code, out, _ = run(str(SAMPLE), "--output", "jsonl", "--min-severity", "high")
    assert code == 0
    assert {alert["severity"] for alert in jsonl(out)} == {"high"}
    code, _, _ = run(str(SAMPLE), "--output", "jsonl", "--fail-on", "high")
    assert code == 1
    code, _, _ = run(str(SAMPLE), "--output", "jsonl", "--fail-on", "critical")
    assert code == 0


def test_relative_since_counts_back_from_newest_event() -> None:
    code, out, err = run(str(SAMPLE), "--output", "jsonl", "--since", "5m")
    assert code == 0
    stamps = {alert["timestamp"] for alert in jsonl(out)}
    assert stamps == {"2026-11-27T08:33:07.123456Z", "2026-11-27T08:35:07.123456Z",
                      "2026-11-27T08:36:07.123456Z", "2026-11-27T08:37:07.123456Z", "2026-11-27T08:38:07.123456Z"}
    assert "outside --since/--until: 13" in err


def test_absolute_until() -> None:
    _, out, _ = run(str(SAMPLE), "--output", "jsonl", "--until", "2026-11-27T08:21:00Z")
    assert [alert["source"]["line"] for alert in jsonl(out)] == [15]


def test_no_default_allowlist_and_show_suppressed() -> None:
    _, out, _ = run(str(SAMPLE), "--output", "jsonl", "--no-default-allowlist")
    assert len(jsonl(out)) == 18 + 5
    _, out, _ = run(str(SAMPLE), "--output", "jsonl", "--show-suppressed")
    suppressed = [alert for alert in jsonl(out) if "suppressed_by" in alert]
    assert len(suppressed) == 5


def test_gzip_directory_and_stdin_give_the_same_alerts(tmp_path: Path) -> None:
    folder = tmp_path / "exports" / "nested"
    folder.mkdir(parents=True)
    (folder / "rows.log").write_bytes(gzip.compress(SAMPLE.read_bytes()))  # gzip recognised by content
    _, plain, _ = run(str(SAMPLE), "--output", "jsonl")
    _, zipped, _ = run(str(tmp_path / "exports"), "--output", "jsonl")
    _, piped, _ = run("-", "--output", "jsonl", stdin=SAMPLE.read_bytes())

    def key(text: str) -> list[tuple[object, ...]]:
        return [(a["rule_id"], a["timestamp"], a["source"]["line"]) for a in jsonl(text)]

    assert key(plain) == key(zipped) == key(piped)


def test_prefilter_does_not_change_alerts() -> None:
    _, fast, _ = run(str(SAMPLE), "--output", "jsonl")
    _, slow, err = run(str(SAMPLE), "--output", "jsonl", "--no-prefilter")
    assert jsonl(fast) == jsonl(slow)
    assert "prefilter off" in err


def test_csv_output_and_atomic_file(tmp_path: Path) -> None:
    target = tmp_path / "alerts.csv"
    code, out, _ = run(str(SAMPLE), "--output", "csv", "-o", str(target))
    assert code == 0 and out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 18
    assert rows[0]["endpoint.canonical"] == "169.254.169.254"
    assert not list(tmp_path.glob(".imds-detect-*"))


def test_table_output_lists_alerts() -> None:
    _, out, _ = run(str(SAMPLE), "--output", "table")
    lines = out.splitlines()
    assert lines[0].startswith("TIME (UTC)")
    assert len(lines) == 19


def test_unrecognised_file_is_named_and_nothing_read_exits_2(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld\n", encoding="utf-8")
    code, out, err = run(str(other))
    assert code == 2
    assert "notes.txt: format not recognised" in err
    assert "no records could be read" in err
    assert out == ""


def test_unrecognised_file_next_to_good_one_still_scans(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "good.jsonl")
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 10)
    code, out, err = run(str(tmp_path), "--output", "jsonl")
    assert code == 0
    assert "junk.bin: format not recognised" in err
    assert len(jsonl(out)) == 18


def test_missing_path_exits_2_after_scanning_the_rest(tmp_path: Path) -> None:
    code, out, err = run(str(SAMPLE), str(tmp_path / "absent.jsonl"), "--output", "jsonl")
    assert code == 2
    assert "absent.jsonl: no such file or directory" in err
    assert len(jsonl(out)) == 18


def test_forced_format_with_no_usable_record_exits_2(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"a": 1}\n{"b": 2}\n', encoding="utf-8")
    code, _, err = run(str(other), "--format", "mde")
    assert code == 2
    assert "forced by --format" in err and "no record was usable" in err
    assert "2 record(s) read" in err and "UNUSABLE all 2 records skipped" in err


def test_empty_file_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    code, _, err = run(str(empty))
    assert code == 2
    assert "empty.jsonl: empty file" in err


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    data = gzip.compress(SAMPLE.read_bytes() * 50)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    code, out, err = run(str(cut), "--output", "jsonl")
    assert code == 0
    assert "read stopped early" in err and "PARTIAL" in err
    assert len(jsonl(out)) > 0


@pytest.mark.parametrize("args", [
    ("--since", "yesterday"),
    ("--config", "/nonexistent/imds.toml"),
    ("--format", "nope"),
    (),
])
def test_usage_and_config_errors_exit_2(args: tuple[str, ...]) -> None:
    paths = [] if args == () else [str(SAMPLE)]
    code, _, err = run(*paths, *args)
    assert code == 2
    assert err.strip(), "an error message is printed"


@pytest.mark.parametrize(("args", "message"), [
    (("--engine", "spark", "--follow"), "--follow"),
    (("--engine", "spark", "--jobs", "2"), "--jobs"),
    (("--spark-master", "local[1]"), "need --engine spark"),
    (("--spark-output", "/tmp/x"), "need --engine spark"),
])
def test_engine_option_conflicts_are_one_line_exit_2(args: tuple[str, ...], message: str) -> None:
    code, out, err = run(str(SAMPLE), *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_engine_spark_refuses_stdin() -> None:
    code, _, err = run("--engine", "spark", "-", stdin=SAMPLE.read_bytes())
    assert code == 2 and "standard input" in err


def test_config_error_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[allowlist.entry]]\nid = "x"\nname = "cloud-init"\n', encoding="utf-8")
    code, _, err = run(str(SAMPLE), "--config", str(config))
    assert code == 2
    assert err.count("\n") == 1 and "bad.toml" in err


def test_console_script_is_installed() -> None:
    result = subprocess.run([sys.executable, "-m", "imds_detect", "scan", str(SAMPLE), "--output", "jsonl"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert len(jsonl(result.stdout)) == 18


def test_summary_names_the_shortcut_of_counting_formats() -> None:
    """auditd clears harmless events inside the adapter: the summary says so instead of 'prefilter off'."""
    audit = Path(__file__).resolve().parent / "fixtures" / "auditd" / "raw_x86_64.log"
    code, _, err = run(str(audit), "--output", "jsonl")
    assert code == 0 and "cleared unparsed by the auditd event shortcut" in err and "prefilter off" not in err
    code, _, err = run(str(audit), "--output", "jsonl", "--no-prefilter")
    assert code == 0 and "prefilter off" in err and "shortcut" not in err


def test_subcommands_other_than_scan_are_imported_when_used() -> None:
    """A scan does not import the mock service, the validation, the hunts or rich; each subcommand still loads and
    shows its help, and the group's help lists them all."""
    from imds_detect.cli import LAZY_COMMANDS

    program = ("import sys\nimport imds_detect.cli\n"
               "print(sorted(m for m in sys.modules if m.startswith(('http.server', 'rich', 'imds_detect.mock', "
               "'imds_detect.validate', 'imds_detect.state.hunt'))))")
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    listing = CliRunner().invoke(main, ["--help"]).output
    for name in LAZY_COMMANDS:
        assert f"  {name} " in listing
        shown = CliRunner().invoke(main, [name, "--help"])
        assert shown.exit_code == 0 and f"Usage: main {name}" in shown.output
    assert CliRunner().invoke(main, ["no-such-command"]).exit_code == 2
