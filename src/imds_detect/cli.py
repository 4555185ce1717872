"""The `imds-detect` command: a thin layer over the library."""

from __future__ import annotations

import importlib
import io
import os
import signal
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Literal, NoReturn, TextIO

import click

from .analyst import Analyst, analyst_errors, analyst_options
from .cloud.ipranges import load_ranges
from .config import ConfigError, load_config
from .detect.detector import Detector
from .engine import interrupt
from .engine.scan import CHUNK_BYTES, Scanner, ScanOptions, ScanResult, scan
from .engine.window import TimeBound, parse_bound
from .limits import Limits, parse_overrides
from .live.watch import Watcher
from .model import Alert, Severity
from .report.csvout import csv_row, csv_writer, write_csv
from .report.incidents import write_incidents
from .report.jsonl import jsonl_line, write_jsonl
from .report.table import header_line, row_line, write_table
from .report.timesketch import timesketch_line, write_timesketch, write_timesketch_incidents
from .sources.registry import format_names
from .sources.webconfig import configure_web_formats

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
SEVERITIES = [s.label for s in Severity]
WRITERS: dict[str, Callable[[Iterable[Alert], TextIO], None]] = {
    "table": write_table,
    "jsonl": write_jsonl,
    "csv": write_csv,
    "timesketch": write_timesketch,
}


def _fail(message: str) -> NoReturn:
    click.echo(f"imds-detect: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _bound(value: str | None, flag: str) -> TimeBound | None:
    if value is None:
        return None
    try:
        return parse_bound(value)
    except ValueError as error:
        _fail(f"{flag}: {error}")
    return None


def _scan_limits(configured: Limits, overrides: tuple[str, ...]) -> Limits:
    """The [limits] of the config with the --limit NAME=VALUE overrides (one error line and exit 2 when bad)."""
    try:
        return parse_overrides(overrides, configured)
    except ValueError as error:
        _fail(f"--limit {error}")


def _chunk_bytes() -> int:
    """The range size for --jobs: IMDS_DETECT_CHUNK_BYTES (bytes; for tests and tuning) or the default."""
    value = os.environ.get("IMDS_DETECT_CHUNK_BYTES", "").strip()
    if not value:
        return CHUNK_BYTES
    if not value.isdigit() or int(value) < 1:
        _fail(f"IMDS_DETECT_CHUNK_BYTES: {value!r} is not a positive number of bytes")
    return int(value)


# The other subcommands, imported when they run or when help lists them (the mock service, the validation and
# the hunts pull in http.server and more: 50 ms that a scan does not need).
LAZY_COMMANDS = {
    "export": ("export.command", "export_command"),
    "explain": ("guide.command", "explain_command"),
    "hunt": ("state.hunt", "hunt_command"),
    "mock-imds": ("mock.command", "mock_imds_command"),
    "validate": ("validate.command", "validate_command"),
}


class _LazyGroup(click.Group):
    """A group whose LAZY_COMMANDS are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, attribute = LAZY_COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(f"{__package__}.{module}"), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imds-detect")
def main() -> None:
    """Detect cloud instance metadata API abuse (MITRE ATT&CK T1552.005)."""


@main.command("scan")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--format", "fmt", type=click.Choice(["auto", *format_names()]), default="auto",
              show_default=True, help="Input format; auto detects each file by content.")
@click.option("--log-format", "log_formats", multiple=True, metavar="FORMAT",
              help="A custom access-log format: an nginx log_format ('$remote_addr [$time_local] \"$request\" "
              "$status') or Apache LogFormat ('%h %t \"%r\" %>s %{Host}i') string, tried before the built-in "
              "ones (--format access or auto). Repeatable.")
@click.option("--json-field", "json_fields", multiple=True, metavar="FIELD=NAME",
              help="Where a JSON web log (--format json-web) keeps FIELD (time, client, method, request, uri, path, "
              "query, host, status, bytes, user_agent, body, server, destination): a key or dotted path, "
              "alternatives separated by commas. Repeatable.")
@click.option("--config", "config_path", metavar="FILE", help="TOML tuning file (allowlist, defaults).")
@click.option("--since", metavar="TIME", help="Only events at or after TIME: ISO 8601, or 24h/7d counted back "
              "from the newest event in the input.")
@click.option("--until", metavar="TIME", help="Only events at or before TIME (same forms as --since).")
@click.option("--output", type=click.Choice(list(WRITERS)), default=None,
              help="Alert format [default: table on a terminal, jsonl otherwise].")
@click.option("-o", "out_path", metavar="FILE", help="Write alerts to FILE (atomically) instead of stdout.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), default=None,
              help="Hide alerts below this severity (counted in the summary) [default: low].")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when an alert at or above this severity is found.")
@click.option("--no-default-allowlist", is_flag=True, help="Do not load the built-in agent allowlist.")
@click.option("--show-suppressed", is_flag=True, help="Also output alerts the allowlist suppressed.")
@click.option("--no-prefilter", is_flag=True, help="Parse every record (slower; same alerts).")
@click.option("--quiet", "-q", is_flag=True, help="No per-record warnings; the summary is still printed.")
@click.option("--follow", "-f", is_flag=True, help="Keep reading PATH as it grows (survives rotation and "
              "truncation); print each alert as it happens. Stop with Ctrl-C or SIGTERM.")
@click.option("--idle-exit", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="With --follow: stop after SECONDS without new data.")
@click.option("--stream", is_flag=True, help="Write each alert the moment it is found, flushed, in input order "
              "(instead of newest first at the end); probing runs are not folded and incidents not built. One job.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=1, show_default=True, metavar="N",
              help="Worker processes: files, and ranges of large JSON-lines files, are scanned in parallel "
              "with the same result; 0 uses every usable core.")
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="spark: run on Apache Spark (pip install 'imds-detect[spark]'); PATHs may be any URI Spark "
              "reads (hdfs://, s3a://, ...). See docs/SPARK.md.")
@click.option("--spark-master", metavar="URL", default=None,
              help="With --engine spark: the master URL (local[4], yarn, spark://host:7077); default: the "
              "active session, spark-submit's, else local[*].")
@click.option("--spark-output", metavar="URI", default=None,
              help="With --engine spark: Spark also writes the alerts to URI (a directory) as Parquet or JSON.")
@click.option("--spark-output-format", type=click.Choice(["parquet", "json"]), default="parquet",
              show_default=True, help="Format of --spark-output.")
@analyst_options
@click.option("--ip-ranges", "ip_ranges", multiple=True, metavar="FILE",
              help="Published cloud ranges (AWS ip-ranges.json, Google cloud.json, Azure Service Tags) telling "
              "addresses inside the provider from outside; never downloaded. Repeatable.")
@click.option("--limit", "limit_items", multiple=True, metavar="NAME=VALUE", help="Override one [limits] bound "
              "of the config (e.g. max_line_bytes=1048576); hits are counted in the summary. Repeatable.")
def scan_command(paths: tuple[str, ...], fmt: str, config_path: str | None, since: str | None, until: str | None,
                 output: str | None, out_path: str | None, min_severity: str | None, fail_on: str | None,
                 no_default_allowlist: bool, show_suppressed: bool, no_prefilter: bool, quiet: bool,
                 follow: bool, idle_exit: float | None, stream: bool, jobs: int, engine: str,
                 spark_master: str | None,
                 spark_output: str | None, spark_output_format: str, ip_ranges: tuple[str, ...] = (),
                 log_formats: tuple[str, ...] = (), json_fields: tuple[str, ...] = (),
                 limit_items: tuple[str, ...] = (), **analyst_values: Any) -> None:
    """Scan log files, directories (recursively) or '-' (stdin) for metadata API abuse."""
    analyst = Analyst(**analyst_values)
    if not paths and not analyst.live:
        _fail("no input: give one or more PATHs, or '-' for standard input")
    problem = analyst.problem(paths, follow, engine)
    if problem:
        _fail(problem)
    _check_engine(engine, paths, follow, jobs, spark_master, spark_output)
    if follow and jobs != 1:
        _fail("--follow reads one file as it grows in one process: it cannot be combined with --jobs")
    if follow and (len(paths) != 1 or paths[0] == "-" or not os.path.isfile(paths[0])):
        _fail("--follow takes exactly one existing regular file")
    if idle_exit is not None and not follow:
        _fail("--idle-exit only applies with --follow")
    _check_stream(stream, follow, jobs, engine, analyst)
    try:
        config = load_config(config_path, use_defaults=not no_default_allowlist)
    except ConfigError as error:
        _fail(str(error))
    try:  # the command line's formats are tried first; its field names override the config's
        configure_web_formats((*log_formats, *config.web_log_formats), (*config.web_json_fields, *json_fields))
    except ValueError as error:
        _fail(f"--log-format/--json-field: {error}")
    for ranges_file in ip_ranges:
        try:
            load_ranges(ranges_file, config.cloud.ranges)
        except ValueError as error:
            _fail(f"--ip-ranges: {error}")
    threshold = Severity.parse(min_severity) if min_severity else (config.min_severity or Severity.LOW)
    options = ScanOptions(
        format=fmt,
        allowlist=config.allowlist,
        min_severity=threshold,
        since=_bound(since, "--since"),
        until=_bound(until, "--until"),
        prefilter=not no_prefilter,
        show_suppressed=show_suppressed,
        warn=(lambda message: None) if quiet else (lambda message: click.echo(f"imds-detect: {message}", err=True)),
        jobs=jobs,
        chunk_bytes=_chunk_bytes(),
        cloud=config.cloud,
        limits=_scan_limits(config.limits, limit_items),
    )
    writer_name = output or ("table" if out_path is None and sys.stdout.isatty() else "jsonl")
    state_notes: list[str] = []
    pipe_closed = False
    if follow or stream:
        if any(bound is not None and bound.before_newest is not None for bound in (options.since, options.until)):
            _fail(f"{'--follow' if follow else '--stream'} takes absolute --since/--until times only")
        result = _follow(paths[0], options, writer_name, idle_exit, out_path) if follow else \
            _stream(paths, options, writer_name, out_path)
    else:
        interrupt.install_handlers()
        try:
            result = analyst.scan(paths, options, engine, options.since, options.until,
                                  lambda: _run_scan(engine, paths, options, spark_master,
                                                    (spark_output, spark_output_format) if spark_output else None))
            state_notes = analyst.remember_scan(result, list(paths))
        except analyst_errors() as error:
            _fail(str(error))
        alerts = result.alerts + result.suppressed
        writer = WRITERS[writer_name]

        def write_all(handle: TextIO) -> None:
            writer(alerts, handle)
            if writer_name == "timesketch":
                write_timesketch_incidents(result.incidents, handle)
            else:
                write_incidents(result.incidents, handle, writer_name)

        if out_path:
            _write_atomically(out_path, write_all)
        else:
            try:
                write_all(sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away (`| head`): stop writing, still say what was found
                pipe_closed = True
                _silence_stdout()
        analyst.write_html(result, config.allowlist, _write_atomically)
    summary = result.summary
    click.echo(summary.render(), err=True)
    if result.incidents:  # (only a finished scan builds them) CSV rows are alerts only: say where they went
        where = "not in CSV output: use --output jsonl or table, or --html" if writer_name == "csv" else \
            "written after the alerts"
        click.echo(f"  incidents: {len(result.incidents)} (host read and cloud use joined; {where})", err=True)
    if pipe_closed:
        click.echo("imds-detect: the reader of standard output went away (SIGPIPE): not every alert was written",
                   err=True)
    if state_notes:
        click.echo("\n".join(state_notes), err=True)
    stopped = summary.interrupted or ("SIGPIPE" if pipe_closed else None) or interrupt.requested()
    if stopped:
        sys.exit(interrupt.exit_status(stopped))
    if summary.nothing_read() and not analyst.live:  # a live query's service already cleared the rest
        click.echo("imds-detect: error: no records could be read from the input; this is not a clean result",
                   err=True)
        sys.exit(EXIT_ERROR)
    if summary.missing or any(report.status == "error" for report in summary.files):
        sys.exit(EXIT_ERROR)
    if fail_on and any(alert.severity >= Severity.parse(fail_on) for alert in result.alerts):
        sys.exit(EXIT_FOUND)
    sys.exit(EXIT_OK)


def _check_engine(engine: str, paths: tuple[str, ...], follow: bool, jobs: int, spark_master: str | None,
                  spark_output: str | None) -> None:
    """Reject option combinations the chosen engine cannot honour (one error line, exit 2)."""
    if engine == "local":
        if spark_master is not None or spark_output is not None:
            _fail("--spark-master and --spark-output need --engine spark")
        return
    if follow:
        _fail("--follow reads a growing local file: it cannot be combined with --engine spark")
    if jobs != 1:
        _fail("--jobs does not apply to --engine spark: Spark decides the parallelism")
    if "-" in paths:
        _fail("standard input ('-') cannot be scanned with --engine spark")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _fail("--engine spark needs pyspark: pip install 'imds-detect[spark]'")


def _run_scan(engine: str, paths: tuple[str, ...], options: ScanOptions, spark_master: str | None,
              write_to: tuple[str, str] | None) -> ScanResult:
    if engine == "local":
        return scan(paths, options)
    from .spark import SparkScanError, scan_with_spark

    try:
        return scan_with_spark(list(paths), options, master=spark_master, write_to=write_to)
    except (SparkScanError, ValueError) as error:
        _fail(f"Spark: {error}")


class _StreamingOutput:
    """Writes each alert the moment it is found and flushes it (-o appends to FILE, or rewrites it with
    `mode="w"`). When the reader of standard output goes away, the scan is asked to stop (SIGPIPE)."""

    def __init__(self, writer_name: str, out_path: str | None, mode: Literal["a", "w"] = "a") -> None:
        self.writer_name = writer_name
        self.out: TextIO = open(out_path, mode, encoding="utf-8", newline="") if out_path else sys.stdout  # noqa: SIM115
        self.closed_by_reader = False
        self.on_reader_gone: Callable[[], None] = lambda: interrupt.request_stop("SIGPIPE")
        self._csv_text = io.StringIO()  # CSV rows are formatted here, then written like the other formats
        self.rows = csv_writer(self._csv_text) if writer_name == "csv" else None
        if writer_name == "table":
            self._write(header_line())
        self._write_csv_text()

    def emit(self, alert: Alert) -> None:
        if self.closed_by_reader:
            return
        if self.rows is not None:
            self.rows.writerow(csv_row(alert))
            self._write_csv_text()
        else:
            self._write(row_line(alert) if self.writer_name == "table" else
                        timesketch_line(alert) if self.writer_name == "timesketch" else jsonl_line(alert))

    def _write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self.closed_by_reader = True
            _silence_stdout()
            self.on_reader_gone()

    def _write_csv_text(self) -> None:
        if self._csv_text.tell():
            self._write(self._csv_text.getvalue())
            self._csv_text.seek(0)
            self._csv_text.truncate()

    def close(self) -> None:
        if self.out is not sys.stdout:
            self.out.close()


def _silence_stdout() -> None:
    """Point standard output at /dev/null so that nothing more (not even the flush at exit) fails on it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _check_stream(stream: bool, follow: bool, jobs: int, engine: str, analyst: Analyst) -> None:
    """--stream writes alerts as they are found: nothing that needs the finished scan goes with it."""
    if not stream:
        return
    if follow:
        _fail("--follow already writes each alert as it is found: --stream is not needed")
    if jobs != 1 or engine != "local":
        _fail("--stream writes alerts in input order from one process: not with --jobs or --engine spark")
    if analyst.html_path or analyst.store_path or analyst.live:
        _fail("--html, --state, --remember, --new-only and live queries need a finished scan: not with --stream")


def _stream(paths: tuple[str, ...], options: ScanOptions, writer_name: str, out_path: str | None) -> ScanResult:
    """Scan with every alert written (and flushed) the moment it is found."""
    output = _StreamingOutput(writer_name, out_path, mode="w")
    options.on_alert = output.emit
    interrupt.install_handlers()
    try:
        return Scanner(options).scan_paths(paths)
    finally:
        output.close()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    return stop


def _follow(path: str, options: ScanOptions, writer_name: str, idle_exit: float | None,
            out_path: str | None) -> ScanResult:
    """Follow one file, writing every alert the moment it is found."""
    output = _StreamingOutput(writer_name, out_path)
    options.on_alert = output.emit
    try:
        return Scanner(options).scan_follow(path, _stop_on_signals(), idle_exit)
    finally:
        output.close()


@main.command("watch")
@click.option("--config", "config_path", metavar="FILE", help="TOML tuning file (allowlist, defaults).")
@click.option("--no-default-allowlist", is_flag=True, help="Do not load the built-in agent allowlist.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), default=None,
              help="Hide alerts below this severity [default: low].")
@click.option("--output", type=click.Choice(list(WRITERS)), default=None,
              help="Alert format [default: table on a terminal, jsonl otherwise].")
@click.option("-o", "out_path", metavar="FILE", help="Append alerts to FILE instead of stdout.")
@click.option("--interval", type=click.FloatRange(min=0.01), default=0.2, show_default=True, metavar="SECONDS",
              help="Time between two looks at the socket tables.")
@click.option("--duration", type=click.FloatRange(min=0.0), default=None, metavar="SECONDS",
              help="Stop after SECONDS (default: until Ctrl-C or SIGTERM).")
@click.option("--show-suppressed", is_flag=True, help="Also output connections the allowlist suppressed.")
def watch_command(config_path: str | None, no_default_allowlist: bool, min_severity: str | None,
                  output: str | None, out_path: str | None, interval: float, duration: float | None,
                  show_suppressed: bool) -> None:
    """Watch this Linux machine: new connections to metadata endpoints, attributed to their process.

    Polls /proc/net/{tcp,tcp6,udp,udp6} of the current network namespace and finds each socket's owner
    through /proc/<pid>/fd. Connections shorter than the interval can be missed; auditd connect()
    records (contrib/auditd) catch every one.
    """
    if not os.path.exists("/proc/net/tcp"):
        _fail("watch needs Linux /proc/net (not available here)")
    try:
        config = load_config(config_path, use_defaults=not no_default_allowlist)
    except ConfigError as error:
        _fail(str(error))
    threshold = Severity.parse(min_severity) if min_severity else (config.min_severity or Severity.LOW)
    output_stream = _StreamingOutput(output or ("table" if out_path is None and sys.stdout.isatty() else "jsonl"),
                                     out_path)
    counts: Counter[str] = Counter()
    suppressed: Counter[str] = Counter()

    def on_alert(alert: Alert) -> None:
        if alert.severity < threshold:
            counts["below --min-severity"] += 1
            return
        counts[alert.severity.label] += 1
        output_stream.emit(alert)

    def on_suppressed(alert: Alert) -> None:
        suppressed[alert.suppressed_by or "?"] += 1
        if show_suppressed:
            output_stream.emit(alert)

    watcher = Watcher(Detector(config.allowlist), on_alert, on_suppressed)
    stop = _stop_on_signals()
    output_stream.on_reader_gone = stop.set
    try:
        watcher.run(stop, interval, duration)
    finally:
        output_stream.close()
    by_severity = ", ".join(f"{s.label}={counts.get(s.label, 0)}" for s in reversed(Severity))
    lines = [f"imds-detect watch: {watcher.polls} poll(s), {watcher.events} metadata connection(s) judged",
             f"  alerts: {sum(counts[s.label] for s in Severity)} ({by_severity})"]
    if suppressed:
        lines.append("  suppressed by allowlist: " + ", ".join(f"{k}={v}" for k, v in sorted(suppressed.items())))
    if counts["below --min-severity"]:
        lines.append(f"  below --min-severity: {counts['below --min-severity']}")
    click.echo("\n".join(lines), err=True)


def _write_atomically(path: str, write: Callable[[TextIO], None]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if path in ("/dev/null", "/dev/stdout") or not os.access(directory, os.W_OK):
        with open(path, "w", encoding="utf-8", newline="") as handle:
            write(handle)
        return
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".imds-detect-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            write(handle)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


