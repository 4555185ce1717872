"""`imds-detect hunt QUESTION`: the hunting questions answered from the state store (table, JSON or CSV)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TextIO

import click
import orjson

from .location import default_state_path
from .store import CREDENTIAL_CLASSES, StateError, StateStore


@dataclass(frozen=True)
class Question:
    name: str
    help: str
    sql: str


_CREDENTIAL_LIST = ", ".join(f"'{c}'" for c in CREDENTIAL_CLASSES)
QUESTIONS: dict[str, Question] = {q.name: q for q in (
    Question("rare-processes",
             "Executables that reached a metadata endpoint on at most --max-hosts hosts, per host.",
             """WITH spread AS (
                    SELECT executable, count(DISTINCT host) AS hosts FROM pairs WHERE executable <> ''
                    GROUP BY executable)
                SELECT p.host, p.executable, s.hosts AS hosts_with_it, sum(p.count) AS times,
                       string_agg(DISTINCT p.path_class, ',' ORDER BY p.path_class) AS path_classes,
                       min(p.first_seen) AS first_seen, max(p.last_seen) AS last_seen
                FROM pairs p JOIN spread s USING (executable)
                WHERE s.hosts <= ? AND p.last_seen >= ?
                GROUP BY p.host, p.executable, s.hosts
                ORDER BY s.hosts, times, p.host, p.executable LIMIT ?"""),
    Question("hosts-per-process",
             "How many hosts each executable reached a metadata endpoint from (widest first).",
             """SELECT executable, count(DISTINCT host) AS hosts, sum(count) AS times,
                       string_agg(DISTINCT host, ',' ORDER BY host) AS host_list,
                       min(first_seen) AS first_seen, max(last_seen) AS last_seen
                FROM pairs WHERE executable <> '' AND ? > 0 AND last_seen >= ?
                GROUP BY executable ORDER BY hosts DESC, times DESC, executable LIMIT ?"""),
    Question("credential-reads",
             "Credential, token and user-data reads per day and host.",
             f"""SELECT CAST(date_trunc('day', ts) AS DATE) AS day, host, count(*) AS reads,
                       count(DISTINCT executable) AS executables,
                       string_agg(DISTINCT path_class, ',' ORDER BY path_class) AS path_classes,
                       arg_max(severity, level) AS worst
                FROM alerts WHERE path_class IN ({_CREDENTIAL_LIST}) AND ? > 0 AND ts >= ?
                GROUP BY day, host ORDER BY day, host LIMIT ?"""),
    Question("unexpected-agents",
             "Executables named like cloud agents seen running from paths those agents never use.",
             """SELECT host, process_name, executable, count(*) AS alerts, min(ts) AS first_seen,
                       max(ts) AS last_seen, string_agg(DISTINCT rule_id, ',' ORDER BY rule_id) AS rules
                FROM alerts WHERE masquerade AND ? > 0 AND ts >= ?
                GROUP BY host, process_name, executable ORDER BY last_seen DESC, host LIMIT ?"""),
)}


def answer(store: StateStore, question: str, max_hosts: int = 2, since: datetime | None = None,
           limit: int = 1000) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows answering `question` (a key of QUESTIONS)."""
    return store.query(QUESTIONS[question].sql, [max_hosts, since or datetime(1970, 1, 1), limit])


def _text(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return "" if value is None else str(value)


def write_table(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], out: TextIO) -> None:
    cells = [[_text(v) for v in row] for row in rows]
    widths = [min(60, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        shown = (v if len(v) <= w else v[: w - 1] + "…" for v, w in zip(row, widths, strict=True))
        out.write("  ".join(v.ljust(w) for v, w in zip(shown, widths, strict=True)).rstrip() + "\n")
    if not rows:
        out.write("(no rows)\n")


def write_json(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], out: TextIO) -> None:
    for row in rows:
        record = {c: (_text(v) if isinstance(v, (datetime, date)) else v) for c, v in zip(columns, row, strict=True)}
        out.write(orjson.dumps(record).decode() + "\n")


def write_csv(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_text(v) for v in row] for row in rows])


WRITERS = {"table": write_table, "json": write_json, "csv": write_csv}


@click.command("hunt", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("question", type=click.Choice(list(QUESTIONS)))
@click.option("--state", "state_path", metavar="PATH", help="The state store [default: the user's data directory, "
              "or $IMDS_DETECT_STATE].")
@click.option("--output", type=click.Choice(list(WRITERS)), default="table", show_default=True)
@click.option("--max-hosts", type=click.IntRange(min=1), default=2, show_default=True,
              help="rare-processes: at most this many hosts.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Only what was seen at or after this UTC date.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
def hunt_command(question: str, state_path: str | None, output: str, max_hosts: int, since: datetime | None,
                 limit: int) -> None:
    """Answer a hunting question from the state store that scans with --state/--remember/--new-only fill.

    \b
    rare-processes     executables that reached metadata on few hosts (--max-hosts)
    hosts-per-process  how many hosts each executable reached metadata from
    credential-reads   credential, token and user-data reads per day and host
    unexpected-agents  agent names running from paths those agents never use
    """
    try:
        with StateStore.open(state_path or default_state_path(), read_only=True) as store:
            columns, rows = answer(store, question, max_hosts, since, limit)
    except StateError as error:
        click.echo(f"imds-detect: error: {error}", err=True)
        sys.exit(2)
    WRITERS[output](columns, rows, sys.stdout)
