"""Write a test's observations in the log formats users have; the files double as regression data."""

from __future__ import annotations

from pathlib import Path

from .render.auditd import audit_lines
from .render.mde import mde_rows, write_csv, write_jsonl, write_parquet
from .render.sysmon import sysmon_lines
from .telemetry import Observation

FILE_NAMES = {"auditd": "audit.log", "mde": "defender.jsonl", "mde-csv": "defender.csv", "sysmon": "sysmon.log",
              "parquet": "defender.parquet"}
REAL_FORMATS = ("auditd", "mde", "sysmon")
SYNTHETIC_FORMATS = ("auditd", "mde", "mde-csv", "sysmon", "parquet")


def write_formats(directory: Path, observations: list[Observation], formats: tuple[str, ...], host: str,
                  raw_audit: list[str] | None = None) -> dict[str, Path]:
    """Write each format into `directory`; `raw_audit` (kernel records) is written as is instead of
    rendering. Returns label -> file for the formats written (Parquet only with pyarrow)."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    rows = mde_rows(observations, host)
    for label in formats:
        path = directory / FILE_NAMES[label]
        if label == "auditd":
            lines = raw_audit if raw_audit is not None else audit_lines(observations)
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        elif label == "mde":
            write_jsonl(rows, path)
        elif label == "mde-csv":
            write_csv(rows, path)
        elif label == "sysmon":
            path.write_text("".join(line + "\n" for line in sysmon_lines(observations, host)), encoding="utf-8")
        elif label == "parquet" and not write_parquet(rows, path):
            continue
        written[label] = path
    return written


def concatenate(sources: list[Path], target: Path) -> None:
    """Append text files into one (the run-wide files next to the per-test ones)."""
    with target.open("w", encoding="utf-8") as out:
        for source in sources:
            out.write(source.read_text(encoding="utf-8"))
