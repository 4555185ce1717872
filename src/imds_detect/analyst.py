"""The analyst's options of `imds-detect scan`: HTML report, progress bar, state store, live queries.

`cli.py` applies `analyst_options` to the scan command and hands the collected values to `Analyst`,
which runs the scan (live, with a progress bar, or the CLI's own way), filters through the state store,
and writes the HTML report. Each step's logic lives in its own package (report/, state/, live_query/).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import click

from .detect.allowlist import Allowlist
from .engine.scan import ScanOptions, ScanResult
from .engine.window import TimeBound
from .report.terminal import progress_wanted

F = TypeVar("F", bound=Callable[..., Any])


def analyst_options(command: F) -> F:
    """The scan options of this module (keyword arguments of the decorated command)."""
    options = [
        click.option("--html", "html_path", metavar="FILE", default=None,
                     help="Also write a self-contained HTML report (chart, hosts, processes, evidence, incidents, "
                     "guides) to FILE."),
        click.option("--progress/--no-progress", "progress", default=None,
                     help="Progress bar on stderr [default: when stderr is a terminal and one job scans locally]."),
        click.option("--state", "state_path", metavar="PATH", default=None,
                     help="Remember this scan in the DuckDB state store PATH: alerts already reported by an "
                     "earlier run are not reported again."),
        click.option("--remember", is_flag=True,
                     help="Like --state with the default store (the user's data directory, or $IMDS_DETECT_STATE)."),
        click.option("--new-only", is_flag=True,
                     help="With the state store: low and medium alerts only for (host, executable, endpoint, path "
                     "class) pairs never seen before; high and critical always alert."),
        click.option("--sentinel", "sentinel_workspace", metavar="WORKSPACE_ID", default=None,
                     help="Query this Log Analytics workspace (Microsoft Sentinel) for candidate rows instead of "
                     "reading files; --since/--until count back from now (default 24h). Needs "
                     "'imds-detect[sentinel]' and an Azure sign-in (DefaultAzureCredential)."),
        click.option("--defender", is_flag=True,
                     help="Query Microsoft Defender XDR advanced hunting (Graph runHuntingQuery) instead of reading "
                     "files; same window rules as --sentinel."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class Analyst:
    """The values of `analyst_options` and what to do with them."""

    html_path: str | None = None
    progress: bool | None = None
    state_path: str | None = None
    remember: bool = False
    new_only: bool = False
    sentinel_workspace: str | None = None
    defender: bool = False

    @property
    def live(self) -> bool:
        return bool(self.sentinel_workspace) or self.defender

    @property
    def store_path(self) -> str | None:
        if self.state_path:
            return self.state_path
        if self.remember or self.new_only:
            from .state.location import default_state_path

            return str(default_state_path())
        return None

    def problem(self, paths: tuple[str, ...], follow: bool, engine: str) -> str | None:
        """Why these options cannot be combined (one line), or None."""
        if self.sentinel_workspace and self.defender:
            return "--sentinel and --defender are two sources: give one"
        if self.live and paths:
            return "--sentinel/--defender query a service: give no PATH"
        if self.live and (follow or engine != "local"):
            return "--sentinel/--defender cannot be combined with --follow or --engine spark"
        if follow and (self.html_path or self.store_path):
            return "--html, --state, --remember and --new-only need a finished scan: not with --follow"
        return None

    def scan(self, paths: tuple[str, ...], options: ScanOptions, engine: str, since: TimeBound | None,
             until: TimeBound | None, default: Callable[[], ScanResult]) -> ScanResult:
        """Run the scan: from a service, with a progress bar, or `default` (the CLI's local/Spark runner)."""
        if self.sentinel_workspace or self.defender:
            from .live_query.runner import defender_scan, sentinel_scan

            if self.sentinel_workspace:
                return sentinel_scan(self.sentinel_workspace, since, until, options, warn=options.warn)
            return defender_scan(since, until, options, warn=options.warn)
        if self._progress_on(engine, options, sys.stderr) and "-" not in paths:
            from .report.progress import scan_with_progress

            return scan_with_progress(paths, options, sys.stderr)
        return default()

    def _progress_on(self, engine: str, options: ScanOptions, stream: TextIO) -> bool:
        if self.progress is False or engine != "local" or options.jobs != 1:
            return False
        if self.progress:
            return True
        return progress_wanted(stream)

    def remember_scan(self, result: ScanResult, inputs: list[str]) -> list[str]:
        """Filter `result.alerts` through the state store and record the scan; summary lines to print."""
        path = self.store_path
        if path is None:
            return []
        from .state.store import StateStore

        with StateStore.open(path) as store:
            decided = store.remember(result.alerts, result.suppressed, inputs, self.new_only)
        result.alerts = decided.reported
        for alert in decided.dropped:
            result.summary.alerts[alert.severity.label] -= 1
        return decided.notes(path, self.new_only)

    def write_html(self, result: ScanResult, allowlist: Allowlist, write: Callable[[str, Callable[[TextIO], None]],
                   None]) -> None:
        """The HTML report, written with the CLI's atomic writer."""
        if not self.html_path:
            return
        from .report.html import write_html

        alerts = result.alerts + result.suppressed
        incidents = getattr(result, "incidents", [])
        write(self.html_path, lambda handle: write_html(alerts, result.summary, handle, incidents=incidents,
                                                        allowlist=allowlist))


def analyst_errors() -> tuple[type[Exception], ...]:
    """The errors of these options that end a scan with one line and exit code 2."""
    from .live_query import LiveQueryError
    from .state.store import StateError

    return (LiveQueryError, StateError)
