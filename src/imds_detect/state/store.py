"""The DuckDB state store: baselines of (host, executable, endpoint, path class), alerts already reported, scans.

`remember()` is the one step a scan takes: it decides which alerts to report (deduplication across runs and,
with `new_only`, first-seen pairs for low and medium findings) and records everything the scan saw.
Credential, token and user-data reads (high and critical) always alert under `new_only`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..model import Alert, Severity, iso_utc

SCHEMA_VERSION = 1
MASQUERADE_RULE = "imds-agent-masquerade"
CREDENTIAL_CLASSES = ("credential", "token", "userdata")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE SEQUENCE IF NOT EXISTS scan_ids START 1",
    """CREATE TABLE IF NOT EXISTS scans (
        id BIGINT PRIMARY KEY, started TIMESTAMP, finished TIMESTAMP, inputs VARCHAR,
        alerts BIGINT, reported BIGINT, duplicates BIGINT, known_pairs BIGINT, new_pairs BIGINT)""",
    """CREATE TABLE IF NOT EXISTS pairs (
        host VARCHAR, executable VARCHAR, provider VARCHAR, endpoint VARCHAR, path_class VARCHAR,
        first_seen TIMESTAMP, last_seen TIMESTAMP, count BIGINT, first_scan BIGINT, last_scan BIGINT,
        PRIMARY KEY (host, executable, endpoint, path_class))""",
    """CREATE TABLE IF NOT EXISTS alerts (
        fingerprint VARCHAR PRIMARY KEY, rule_id VARCHAR, severity VARCHAR, level INTEGER, ts TIMESTAMP,
        host VARCHAR, user_name VARCHAR, process_name VARCHAR, executable VARCHAR, command_line VARCHAR,
        provider VARCHAR, endpoint VARCHAR, path VARCHAR, path_class VARCHAR, masquerade BOOLEAN,
        source VARCHAR, first_scan BIGINT)""",
)


class StateError(Exception):
    """The store cannot be opened or written (one line for the user)."""


def executable(alert: Alert) -> str:
    """The executable identity of an alert: its path, else its name ('' when no process is attached)."""
    return alert.process.path or alert.process.name


def pair_key(alert: Alert) -> tuple[str, str, str, str]:
    """(host, executable, endpoint, path class): the unit of the baseline."""
    endpoint = alert.endpoint
    return (alert.host.lower(), executable(alert), endpoint.canonical or endpoint.raw, endpoint.path_class)


def fingerprint(alert: Alert) -> str:
    """The same finding on the same record, whichever file or run it is read from."""
    process, endpoint = alert.process, alert.endpoint
    parts = (alert.rule_id, iso_utc(alert.timestamp), alert.host.lower(), process.path, process.name,
             str(process.pid), process.command_line, endpoint.raw, endpoint.path, endpoint.canonical)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def is_masquerade(alert: Alert) -> bool:
    return alert.rule_id == MASQUERADE_RULE or any("is named like" in reason for reason in alert.reasons)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass
class Remembered:
    """What the store decided for one scan."""

    reported: list[Alert]
    scan_id: int
    duplicates: int = 0  # alerts already reported by an earlier run
    known_pairs: int = 0  # low/medium alerts hidden by --new-only: their pair was seen before
    repeats: int = 0  # low/medium alerts hidden by --new-only: a later alert of a pair new in this scan
    new_pairs: int = 0
    dropped: list[Alert] = field(default_factory=list)

    def notes(self, path: str, new_only: bool) -> list[str]:
        lines = [f"  state {path}: scan #{self.scan_id}, {self.new_pairs} new (host, executable, endpoint) pair(s)"]
        if self.duplicates:
            lines.append(f"  already reported by an earlier run: {self.duplicates}")
        if new_only and (self.known_pairs or self.repeats):
            lines.append(f"  --new-only: {self.known_pairs} low/medium on known pairs, {self.repeats} repeat(s) "
                         "of new pairs not reported")
        return lines


class StateStore:
    """One DuckDB file; open it with `StateStore.open(path)` and close it (or use `with`)."""

    def __init__(self, connection: Any, path: str) -> None:
        self.db = connection
        self.path = path

    @classmethod
    def open(cls, path: str | Path, read_only: bool = False) -> StateStore:
        try:
            import duckdb
        except ImportError:
            raise StateError("the state store needs DuckDB: pip install 'imds-detect[state]'") from None
        target = Path(path)
        if read_only and not target.exists():
            raise StateError(f"state {target}: no such store (run a scan with --state or --remember first)")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            connection = duckdb.connect(str(target), read_only=read_only)
        except (OSError, duckdb.Error) as error:
            raise StateError(f"state {target}: cannot open: {error}") from None
        store = cls(connection, str(target))
        if not read_only:
            store._create()
        return store

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _create(self) -> None:
        for statement in _SCHEMA:
            self.db.execute(statement)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", [str(SCHEMA_VERSION)])
        elif int(row[0]) > SCHEMA_VERSION:
            raise StateError(f"state {self.path}: written by a newer imds-detect (schema {row[0]})")

    # -- one scan ---------------------------------------------------------------------------------
    def remember(self, alerts: Sequence[Alert], suppressed: Iterable[Alert] = (), inputs: Iterable[str] = (),
                 new_only: bool = False) -> Remembered:
        """Decide what to report of `alerts` (newest first, as a scan returns them) and record the scan."""
        started = datetime.now(UTC)
        scan_id = int(self.db.execute("SELECT nextval('scan_ids')").fetchone()[0])
        known = self._known_pairs()
        seen = self._known_fingerprints(alerts)
        result = Remembered([], scan_id)
        first_in_scan: dict[tuple[str, str, str, str], Alert] = {}
        for alert in sorted(alerts, key=lambda a: a.timestamp):  # oldest first: the first sighting of a pair
            first_in_scan.setdefault(pair_key(alert), alert)
        for alert in alerts:
            key = pair_key(alert)
            if fingerprint(alert) in seen:
                result.duplicates += 1
            elif new_only and alert.severity < Severity.HIGH and key in known:
                result.known_pairs += 1
            elif new_only and alert.severity < Severity.HIGH and first_in_scan[key] is not alert:
                result.repeats += 1
            else:
                result.reported.append(alert)
                continue
            result.dropped.append(alert)
        everything = [*alerts, *suppressed]
        result.new_pairs = len({pair_key(a) for a in everything} - known)
        try:
            self.db.execute("BEGIN TRANSACTION")
            self._record_pairs(everything, scan_id)
            self._record_alerts([a for a in alerts if fingerprint(a) not in seen], scan_id)
            self.db.execute("INSERT INTO scans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                scan_id, _naive(started), _naive(datetime.now(UTC)), "\n".join(inputs), len(alerts),
                len(result.reported), result.duplicates, result.known_pairs, result.new_pairs])
            self.db.execute("COMMIT")
        except Exception:
            self.db.execute("ROLLBACK")
            raise
        return result

    def _known_pairs(self) -> set[tuple[str, str, str, str]]:
        rows = self.db.execute("SELECT host, executable, endpoint, path_class FROM pairs").fetchall()
        return {(str(a), str(b), str(c), str(d)) for a, b, c, d in rows}

    def _known_fingerprints(self, alerts: Sequence[Alert]) -> set[str]:
        if not alerts:
            return set()
        low = _naive(min(a.timestamp for a in alerts))
        high = _naive(max(a.timestamp for a in alerts))
        rows = self.db.execute("SELECT fingerprint FROM alerts WHERE ts BETWEEN ? AND ?", [low, high]).fetchall()
        return {str(row[0]) for row in rows}

    def _record_pairs(self, alerts: Iterable[Alert], scan_id: int) -> None:
        merged: dict[tuple[str, str, str, str], list[Any]] = {}
        for alert in alerts:
            key = pair_key(alert)
            moment = _naive(alert.timestamp)
            row = merged.get(key)
            if row is None:
                merged[key] = [*key[:2], alert.endpoint.provider, *key[2:], moment, moment, 1, scan_id, scan_id]
            else:
                row[5], row[6], row[7] = min(row[5], moment), max(row[6], moment), row[7] + 1
        if merged:
            self.db.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host, executable, endpoint, "
                "path_class) DO UPDATE SET first_seen = least(pairs.first_seen, excluded.first_seen), "
                "last_seen = greatest(pairs.last_seen, excluded.last_seen), count = pairs.count + excluded.count, "
                "last_scan = excluded.last_scan", list(merged.values()))

    def _record_alerts(self, alerts: Iterable[Alert], scan_id: int) -> None:
        rows = {}
        for alert in alerts:
            endpoint = alert.endpoint
            rows[fingerprint(alert)] = [
                fingerprint(alert), alert.rule_id, alert.severity.label, int(alert.severity), _naive(alert.timestamp),
                alert.host.lower(), alert.user, alert.process.name, executable(alert), alert.process.command_line,
                endpoint.provider, endpoint.canonical or endpoint.raw, endpoint.path, endpoint.path_class,
                is_masquerade(alert), f"{alert.source.file}:{alert.source.line}", scan_id]
        if rows:
            self.db.executemany("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                "ON CONFLICT DO NOTHING", list(rows.values()))

    # -- reading ----------------------------------------------------------------------------------
    def query(self, sql: str, parameters: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a read query."""
        cursor = self.db.execute(sql, list(parameters))
        return [column[0] for column in cursor.description], [tuple(row) for row in cursor.fetchall()]
