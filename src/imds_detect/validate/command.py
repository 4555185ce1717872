"""`imds-detect validate`: run the atomic tests for real (or render them synthetically) and report."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from pathlib import Path

import click

from ..config import ConfigError, load_config
from .capture import CHOICES
from .catalog import catalog
from .report import Report, write_table
from .runner import Unavailable, run_real
from .synthetic import run_synthetic

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


@click.command("validate")
@click.option("--synthetic", is_flag=True,
              help="Do not run anything: render each test's expected telemetry in every supported format and "
                   "check detection on it (no root needed; results are labelled synthetic).")
@click.option("--json", "json_path", metavar="FILE", help="Also write the results as JSON to FILE.")
@click.option("--out", "out_dir", metavar="DIR",
              help="Where to write the telemetry files (audit.log, defender.jsonl, ...) [default: a new temp dir].")
@click.option("--capture", type=click.Choice(CHOICES), default="auto", show_default=True,
              help="Real run: kernel audit (audit), strace, or audit when usable else strace (auto).")
@click.option("--config", "config_path", metavar="FILE", help="TOML tuning file (allowlist) used for detection.")
@click.option("--test", "test_ids", multiple=True, metavar="ID", help="Only this test (repeatable; see --list).")
@click.option("--list", "list_tests", is_flag=True, help="List the tests and exit.")
def validate_command(synthetic: bool, json_path: str | None, out_dir: str | None, capture: str,
                     config_path: str | None, test_ids: tuple[str, ...], list_tests: bool) -> None:
    """Prove detection on real telemetry: run the T1552.005 atomic tests against a mock metadata service.

    The real run (Linux, root) builds its own network and mount namespaces with the metadata addresses
    on loopback, starts `imds-detect mock-imds` inside, runs each test's commands there while capturing
    execve/connect (kernel audit, else strace), writes the telemetry as audit.log, Defender JSON lines
    and Sysmon for Linux syslog, scans those files and tears everything down. Nothing leaves the namespace.
    Exit status: 0 all passed, 1 a test failed, 2 could not run.
    """
    tests = catalog()
    if list_tests:
        for test in tests:
            expected = str(test.expect) if test.expect else "no alert"
            click.echo(f"{test.id:26} {expected:20} {test.origin}: {test.name}")
        return
    if test_ids:
        unknown = sorted(set(test_ids) - {t.id for t in tests})
        if unknown:
            raise click.BadParameter(f"unknown test {', '.join(unknown)} (see --list)", param_hint="--test")
        tests = tuple(t for t in tests if t.id in test_ids)
    try:
        allowlist = load_config(config_path).allowlist
    except ConfigError as error:
        click.echo(f"imds-detect: error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    # SIGTERM unwinds like Ctrl-C, so that audit rules, namespaces and processes are always torn down.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    directory = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="imds-validate-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        report = run_synthetic(tests, directory, allowlist) if synthetic else run_real(
            tests, directory, allowlist, capture)
    except Unavailable as error:
        click.echo(f"imds-detect validate: cannot run for real here: {error}. "
                   "Use --synthetic to check detection on rendered telemetry instead.", err=True)
        sys.exit(EXIT_ERROR)
    _emit(report, json_path)
    sys.exit(EXIT_PASS if report.passed else EXIT_FAIL)


def _emit(report: Report, json_path: str | None) -> None:
    write_table(report, sys.stdout)
    if json_path:
        Path(json_path).write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
