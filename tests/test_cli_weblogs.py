"""The command line on web, proxy and Zeek logs: custom formats, JSON field names, probing in the summary."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from weblog_support import FIXTURES, LABELS, web_formats

from imds_detect.cli import main
from imds_detect.sources import registry


def run(*args: str) -> tuple[int, str, str]:
    with web_formats():  # the CLI registers custom formats process-wide: restore the built-in ones afterwards
        result = CliRunner().invoke(main, ["scan", "--output", "jsonl", *args])
    return result.exit_code, result.stdout, result.stderr


def lines_of(out: str) -> list[int]:
    return sorted(json.loads(line)["source"]["line"] for line in out.splitlines() if line.strip())


def test_log_format_option_reads_a_custom_nginx_format() -> None:
    name = "access/nginx_custom.log"
    code, out, err = run("--log-format", LABELS[name]["options"]["log_formats"][0], "--min-severity", "low",
                         str(FIXTURES / name))
    assert code == 0, err
    assert lines_of(out) == sorted(int(line) for line in LABELS[name]["alerts"])
    assert registry.BY_NAME["access"].custom == ()  # type: ignore[attr-defined]


def test_without_the_format_the_custom_fields_are_not_read() -> None:
    name = "access/nginx_custom.log"
    code, out, _ = run(str(FIXTURES / name))
    assert code == 0
    assert lines_of(out) == [1, 2, 3, 4]  # the metadata paths asked of the server; the upstream and body unseen
    first = next(json.loads(line) for line in out.splitlines() if '"line":1,' in line)
    assert first["reasons"][0].startswith("metadata-specific path asked of the web server itself")


def test_json_field_option_names_the_fields(tmp_path: Path) -> None:
    name = "json_web/custom.jsonl"
    fields = [arg for field in LABELS[name]["options"]["json_fields"] for arg in ("--json-field", field)]
    code, out, err = run(*fields, "--format", "json-web", str(FIXTURES / name))
    assert code == 0, err
    assert lines_of(out) == [1, 2]


def test_bad_custom_formats_are_one_error_line_and_exit_2() -> None:
    for args in (("--log-format", "$remote_addr $status"), ("--json-field", "nonsense=x"), ("--json-field", "uri")):
        code, out, err = run(*args, str(FIXTURES / "access/combined.log"))
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "--log-format/--json-field" in err


def test_probing_is_counted_in_the_summary_and_fail_on_works() -> None:
    code, out, err = run("--fail-on", "high", str(FIXTURES / "access/probing.log"))
    assert code == 1
    rules = [json.loads(line)["rule_id"] for line in out.splitlines()]
    assert rules.count("imds-http-probing") == 2 and rules.count("imds-http-request") == 3
    assert "probing: 46 alert(s) folded into 2 probing alert(s)" in err
    group = next(json.loads(line) for line in out.splitlines() if '"group"' in line)
    assert set(group["group"]) == {"count", "first", "last", "spellings", "paths", "records", "not_listed"}
    assert set(group["request"]) >= {"client", "direction", "method", "status", "outcome"}


def test_every_web_format_is_recognised_in_one_run() -> None:
    paths = [str(FIXTURES / name) for name, label in LABELS.items() if not label["options"]]
    code, _, err = run("--min-severity", "informational", *paths)
    assert code == 0, err
    assert "unrecognised" not in err.lower() and "not recognised" not in err


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def test_the_config_web_table_sets_formats_and_field_names(tmp_path: Path) -> None:
    access = "access/nginx_custom.log"
    config = tmp_path / "web.toml"
    config.write_text(f"[web]\nlog_formats = [{_toml_string(LABELS[access]['options']['log_formats'][0])}]\n")
    code, out, err = run("--config", str(config), "--min-severity", "low", str(FIXTURES / access))
    assert code == 0, err
    assert lines_of(out) == sorted(int(line) for line in LABELS[access]["alerts"])  # as with --log-format

    web = "json_web/custom.jsonl"
    pairs = [pair.partition("=") for pair in LABELS[web]["options"]["json_fields"]]
    config.write_text("[web.json_fields]\n" + "".join(f"{key} = {_toml_string(value)}\n" for key, _, value in pairs))
    code, out, err = run("--config", str(config), "--format", "json-web", str(FIXTURES / web))
    assert code == 0, err
    assert lines_of(out) == [1, 2]  # as with --json-field


def test_bad_web_tables_are_one_error_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "web.toml"
    for text, needle in (('[web]\nlog_formats = ["$remote_addr $status"]\n', "web: log format"),
                         ('[web.json_fields]\nnonsense = "x"\n', "web: unknown JSON field 'nonsense'"),
                         ('[web]\nlog_formats = [1]\n', "web.log_formats must be"),
                         ('[web]\nformats = []\n', "unknown key web.formats")):
        config.write_text(text)
        code, out, err = run("--config", str(config), str(FIXTURES / "access/combined.log"))
        assert code == 2 and out == "", text
        assert err.count("\n") == 1 and needle in err and str(config) in err, (text, err)
