#!/usr/bin/env python3
"""Measure `imds-detect scan` on ~1 GB of Defender JSON lines, Defender CSV or a raw audit.log against
ripgrep with the prefilter's literal set, literal-search and plain-Python baselines.

    python benchmarks/run_benchmark.py --size 1GB [--input defender|csv|auditd|all]

Generates ``<data-dir>/defender-<size>.jsonl`` (``--input defender``, the default), ``defender-<size>.csv``
(``--input csv``; generate_defender.py --format csv) or ``auditd-<size>.log`` (``--input auditd``;
generate_auditd.py) when it is missing (it is kept for the next run), warms the page cache, runs every
command ``--repeat`` times (best wall time, highest peak RSS) and prints one table per input: wall seconds,
MB/s (10^6 bytes), events/s (rows/records in the file, or audit records = lines, / seconds) and the
command's own peak RSS (GNU time's %M when installed, else ``os.wait4``; see Runner). imds-detect runs
with ``--jobs 1`` and ``--jobs 0`` (every usable core); ``rg -c -F -i -f`` gets the prefilter's literal
set from the knowledge base. It then counts the alerts against the planted rows (events) of the labels
sidecar, compares peak RSS on the first 10% of the file with the whole file and prints PASS/MISS per
target of the issue. ``--input all`` runs the three inputs one after the other.

Figures are printed, never asserted: a MISS does not change the exit status, which is non-zero only when a
command fails.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "generate_defender.py"
AUDITD_GENERATOR = HERE / "generate_auditd.py"
SCAN_FLOOR = HERE / "scan_floor.py"
NEEDLE = "169.254.169.254"
HEX_NEEDLE = "A9FEA9FE"  # 169.254.169.254 as the kernel writes it in a SOCKADDR record's saddr
KINDS = ("defender", "csv", "auditd")
SUFFIX = {"defender": ".jsonl", "csv": ".csv", "auditd": ".log"}
TITLE = {"defender": "Defender JSON lines", "csv": "Defender CSV", "auditd": "raw audit.log"}
# The issue's targets. Printed as PASS/MISS, never enforced.
JSON_MBPS_PER_CORE = 1000.0  # Defender JSON lines, end to end, imds-detect --jobs 1
RG_SHARE = 0.25  # imds-detect --jobs 1 throughput / rg -c -F -i -f LITERALS throughput, same file
SPEEDUP_ALL_CORES = 1.7  # imds-detect --jobs 0 / --jobs 1, when at least 2 cores are usable
AUDITD_TARGETS_MBPS = ((100.0, "issue 3"), (300.0, "issue 4"))  # imds-detect --jobs 1 on a raw audit.log
RSS_SLACK_MB = 20.0  # default --rss-slack: "flat" = whole-file peak RSS at most this above the 10% prefix's

JSON_BASELINE = f"""
import json, sys
n = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        r = json.loads(line)
        if r.get("RemoteIP") == "{NEEDLE}" or "{NEEDLE}" in (r.get("ProcessCommandLine") or ""):
            n += 1
print(n)
"""

ORJSON_BASELINE = JSON_BASELINE.replace("import json, sys", "import orjson as json, sys")

CSV_BASELINE = f"""
import csv, sys
csv.field_size_limit(sys.maxsize)
n = 0
with open(sys.argv[1], newline="", encoding="utf-8", errors="replace") as fh:
    rows = csv.reader(fh)
    header = next(rows)
    ip, cmd = header.index("RemoteIP"), header.index("ProcessCommandLine")
    for r in rows:
        if r[ip] == "{NEEDLE}" or "{NEEDLE}" in r[cmd]:
            n += 1
print(n)
"""

AUDITD_BASELINE = f"""
import sys
n = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        if line.startswith(b"node="):
            line = line[line.find(b" ") + 1:]
        if line.startswith(b"type=SOCKADDR") and b"{HEX_NEEDLE}" in line:
            n += 1
print(n)
"""

# A fixed pure-Python loop: run alone, then once per core at the same time, it shows how much of N cores this
# machine really gives N busy processes (vCPUs that share physical cores or a busy host give less than N).
CPU_LOOP = "n = 0\nfor i in range(20_000_000):\n    n += i & 7\n"


def machine_scaling(cores: int, repeat: int = 2) -> float | None:
    """The speed-up of `cores` copies of CPU_LOOP run at once over one run alone (best of `repeat`); None on one
    core."""
    if cores < 2:
        return None

    def wall(copies: int) -> float:
        start = time.perf_counter()
        processes = [subprocess.Popen([sys.executable, "-c", CPU_LOOP]) for _ in range(copies)]
        for process in processes:
            process.wait()
        return time.perf_counter() - start

    alone = min(wall(1) for _ in range(repeat))
    together = min(wall(cores) for _ in range(repeat))
    return cores * alone / together


@dataclass
class Measurement:
    label: str
    argv: list[str]
    wall: float = float("inf")
    rss_kb: int = 0
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    ok_codes: tuple[int, ...] = (0,)
    skipped: str = ""  # reason when not run (n/a)
    runs: int = 0
    timed_out: bool = False
    role: str = ""  # jobs1, jobs0, noprefilter, purepython, floor, rg_f: the rows the targets are computed from
    alerts_path: Path | None = None  # imds-detect rows: where the alerts of the last run were written
    result: str = ""  # imds-detect rows: the alert count of the last run

    @property
    def failed(self) -> bool:
        return not self.skipped and not self.timed_out and self.returncode not in self.ok_codes

    @property
    def ok(self) -> bool:
        """Ran to the end at least once with an accepted exit code (so `wall` is a measurement)."""
        return not self.skipped and not self.failed and self.wall != float("inf")

    def mbps(self, size: int) -> float | None:
        return size / 1e6 / self.wall if self.ok else None


@dataclass
class Dataset:
    path: Path
    size: int
    rows: int  # events: JSON lines, CSV records (from the labels, else lines - 1), audit records (lines)
    labels: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    lines: int = 0


class _Timeout(Exception):
    """A run exceeded --timeout."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # run the cleanup (kill the running command, remove scratch files)


def gnu_time() -> str | None:
    """Path of GNU time if it is installed (it reports the command's own peak RSS with %M)."""
    exe = shutil.which("time", path="/usr/bin:/bin:/usr/local/bin")
    if not exe:
        return None
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if "GNU" in (done.stdout + done.stderr) else None


class Runner:
    """Runs commands and reads each child's own peak RSS.

    A child's ru_maxrss from os.wait4 is not enough on its own: Linux carries the high-water RSS of the
    address space a process had before exec() into ru_maxrss, and subprocess starts children with vfork,
    so every child would report at least this runner's own peak. GNU time forks the command from its own
    ~2 MB process and reports that command's ru_maxrss, so it is used when installed (method "time");
    otherwise the figure comes from os.wait4 and has the runner's peak as a floor (method "wait4").
    """

    def __init__(self, scratch: Path, method: str = "auto", timeout: float | None = None) -> None:
        self.scratch = scratch
        self.timeout = timeout
        self.time_exe = gnu_time() if method in ("auto", "time") else None
        if method == "time" and not self.time_exe:
            raise SystemExit("--rss-method time: GNU time is not installed")
        self.method = "time" if self.time_exe else "wait4"

    def run_once(self, argv: Sequence[str]) -> tuple[float, int, int, str, str]:
        """Run argv; return (wall seconds, peak RSS in KiB, exit code, stdout, stderr)."""
        out_path, err_path = self.scratch / "cmd.stdout", self.scratch / "cmd.stderr"
        time_path = self.scratch / "cmd.time"
        full = list(argv)
        if self.time_exe:
            full = [self.time_exe, "-f", "%M", "-o", str(time_path), *full]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            # Own session, so an interrupt or timeout can kill the command and anything it started.
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            try:
                if self.timeout:
                    signal.setitimer(signal.ITIMER_REAL, self.timeout)
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            finally:
                if self.timeout:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # reaped already: keep Popen from waiting again
        rss = int(usage.ru_maxrss)
        if self.time_exe:
            # GNU time writes "Command exited with non-zero status N" first when the command fails.
            lines = time_path.read_text(errors="replace").split() if time_path.exists() else []
            rss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        return wall, rss, code, out_path.read_text(errors="replace"), err_path.read_text(errors="replace")

    def measure(self, m: Measurement, repeat: int) -> Measurement:
        for _ in range(repeat):
            try:
                wall, rss, code, out, err = self.run_once(m.argv)
            except _Timeout:
                m.timed_out = True
                break
            m.runs += 1
            m.rss_kb = max(m.rss_kb, rss)
            m.returncode, m.stdout, m.stderr = code, out, err
            if code not in m.ok_codes:
                break
            m.wall = min(m.wall, wall)
        return m


def warm_and_count(path: Path) -> int:
    """Read the file once (page cache) and count its lines."""
    lines = 0
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def size_label(size: int) -> str:
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def parse_size(text: str) -> int:
    sys.path.insert(0, str(HERE))
    try:
        from generate_defender import parse_size as _parse
    finally:
        sys.path.pop(0)
    return _parse(text)


def ensure_dataset(args: argparse.Namespace, kind: str = "defender") -> Dataset:
    prefix = "auditd" if kind == "auditd" else "defender"
    default_path = Path(args.data_dir) / f"{prefix}-{size_label(args.size)}{SUFFIX[kind]}"
    path = Path(args.file) if args.file else default_path
    labels_file = path.with_name(path.name + ".labels.json")
    if not path.exists():
        if args.file:
            raise SystemExit(f"no such file: {path}")
        print(
            f"generating {path} ({size_label(args.size)}, seed {args.seed}, ratio {args.ratio}) ...",
            flush=True,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            str(AUDITD_GENERATOR if kind == "auditd" else GENERATOR),
            "--size",
            str(args.size),
            "--out",
            str(path),
            "--seed",
            str(args.seed),
            "--ratio",
            str(args.ratio),
            *({"defender": ["--format", "jsonl"], "csv": ["--format", "csv"]}.get(kind, [])),
        ]
        subprocess.run(cmd, check=True)
    labels = json.loads(labels_file.read_text(encoding="utf-8")) if labels_file.exists() else None
    print("warming the page cache ...", flush=True)
    lines = warm_and_count(path)
    rows = lines
    if kind == "csv":
        # A CSV record may span lines (quoted newlines): the generator's labels know the record count.
        rows = int(labels["rows"]) if labels and isinstance(labels.get("rows"), int) else max(lines - 1, 0)
    return Dataset(path, path.stat().st_size, rows, labels, lines=lines)


def write_prefix(src: Path, dst: Path, fraction: float, quoted_records: bool = False) -> tuple[int, int]:
    """Copy the first `fraction` of src, cut at a line boundary; return (bytes, lines).

    quoted_records (CSV): also extend the cut until the number of double quotes is even, so a quoted
    field with a newline in it is never cut in two (a doubled quote `""` counts twice, which keeps
    the parity).
    """
    want = max(1, int(src.stat().st_size * fraction))
    copied = lines = quotes = 0
    chunk = b""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while copied < want:
            chunk = fin.read(min(1 << 20, want - copied))
            if not chunk:
                break
            fout.write(chunk)
            copied += len(chunk)
            lines += chunk.count(b"\n")
            quotes += chunk.count(b'"')
        pending = bool(chunk) and not chunk.endswith(b"\n")
        while pending or (quoted_records and quotes % 2):
            rest = fin.readline()
            if not rest:
                break
            fout.write(rest)
            copied += len(rest)
            lines += rest.count(b"\n")
            quotes += rest.count(b'"')
            pending = False
    return copied, lines


def imds_command(args: argparse.Namespace) -> list[str]:
    if args.imds_cmd:
        return shlex.split(args.imds_cmd)
    exe = shutil.which("imds-detect")
    if exe:
        return [exe]
    return [sys.executable, "-c", "import sys; from imds_detect.cli import main; sys.exit(main())"]


def supports_flag(imds: list[str], flag: str) -> bool:
    try:
        done = subprocess.run([*imds, "scan", "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in done.stdout or flag in done.stderr


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


PURE_PYTHON = "IMDS_DETECT_PURE_PYTHON"  # imds_detect.accelerators.SWITCH: the C extensions off


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("imds-detect")
    except Exception:
        return "?"


def accelerators() -> str:
    """Which optional native parts this Python uses (the default --imds-cmd runs with the same Python)."""
    try:
        from imds_detect.accelerators import report
        from imds_detect.knowledge.indicators import _shape_gate

        prefilter = _shape_gate().engine
        built = ", ".join(f"{name} {'yes' if used else 'NO'}" for name, used in report().items())
    except Exception as error:  # another checkout under --imds-cmd, or an old one
        return f"unknown ({error.__class__.__name__})"
    return f"prefilter patterns: {prefilter}; C extensions: {built}"


def alert_records(path: Path, key: str = "record") -> tuple[int, list[int], int]:
    """(alert lines, the alerts' integer ``source[key]`` where the schema has them, suppressed alerts): the
    0-based source records by default, ``key="line"`` for the 1-based lines (auditd events)."""
    count, records, suppressed = 0, [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            count += 1
            try:
                alert = json.loads(line)
            except ValueError:
                continue
            if not isinstance(alert, dict):
                continue
            if alert.get("suppressed_by"):
                suppressed += 1
            source = alert.get("source")
            if isinstance(source, dict) and isinstance(source.get(key), int):
                records.append(source[key])
    return count, records, suppressed


def fmt_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def rss_text(m: Measurement) -> str:
    if m.failed:
        return "FAILED"
    if m.timed_out and m.wall == float("inf"):
        return "TIMEOUT"
    return f"{m.rss_kb / 1024:.1f} MB"


def load_text() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average: ?"
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min)"


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    if head.returncode:
        return "?"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def prefilter_literals() -> tuple[tuple[str, ...], str]:
    """The literal set of the prefilter (knowledge base), and a note on where it comes from.

    The prefilter's strong patterns (`strong_patterns()`) are these literal needles, matched caseless,
    plus encoding marks, Unicode-folding characters and base64 forms; the literals are what a fixed-string
    search can take. Returns ((), reason) when imds_detect cannot be imported.
    """
    try:
        from imds_detect.knowledge.indicators import literal_needles, strong_patterns
    except ImportError as exc:
        return (), f"imds_detect not importable ({exc})"
    needles = literal_needles()
    return needles, (
        f"{len(needles)} literals = imds_detect.knowledge.indicators.literal_needles(), the literal part of the "
        f"prefilter's {len(strong_patterns())} strong patterns (the rest: encoding marks, Unicode-folding "
        f"characters, base64 forms), caseless (-i) as the prefilter matches them"
    )


def write_literals(needles: Sequence[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{needle}\n" for needle in needles), encoding="utf-8")


def build_commands(
    kind: str,
    imds: list[str],
    fname: str,
    alerts_dir: Path,
    *,
    rg: str | None,
    grep: str | None,
    literals_path: Path | None,
    literals_skip: str = "",
    cores: int = 1,
    has_jobs: bool = True,
    has_no_prefilter: bool = True,
    has_orjson: bool = True,
) -> list[Measurement]:
    """The table's commands for one input, in table order; a tool that is missing gives an n/a row."""
    fmt = ["--format", "auditd"] if kind == "auditd" else []
    stem = Path(fname).name

    def scan(role: str, label: str, extra: list[str], skipped: str = "", env: Sequence[str] = ()) -> Measurement:
        alerts = alerts_dir / f"{stem}.{role}.alerts.jsonl"
        argv = [*(["env", *env] if env else []), *imds, "scan", fname, *fmt, "--output", "jsonl", "-o", str(alerts),
                *extra]
        return Measurement(label, argv, role=role, alerts_path=alerts, skipped=skipped)

    results = [
        scan("jobs1", "imds-detect scan --jobs 1", ["--jobs", "1"] if has_jobs else []),
        scan(
            "jobs0",
            f"imds-detect scan --jobs 0 ({cores} core{'s' if cores != 1 else ''})",
            ["--jobs", "0"],
            "" if has_jobs else "flag not accepted",
        ),
        scan(
            "noprefilter",
            "imds-detect scan --jobs 1 --no-prefilter",
            [*(["--jobs", "1"] if has_jobs else []), "--no-prefilter"],
            "" if has_no_prefilter else "flag not accepted",
        ),
        scan(
            "purepython",
            "imds-detect scan --jobs 1, pure Python",
            ["--jobs", "1"] if has_jobs else [],
            env=[f"{PURE_PYTHON}=1"],
        ),
    ]

    if kind != "csv":  # (CSV records are read whole by csv.reader: no separate raw pass to time)
        results.append(Measurement("imds-detect raw passes alone (nothing parsed)",
                                   [sys.executable, str(SCAN_FLOOR), fname], role="floor"))

    def tool(exe: str | None, name: str, label: str, args: list[str], role: str = "") -> Measurement:
        if not exe:
            return Measurement(label, [], role=role, skipped=f"{name} not installed")
        return Measurement(label, [exe, *args, fname], ok_codes=(0, 1), role=role)

    n_literals = literals_path.read_text(encoding="utf-8").count("\n") if literals_path else 0
    rg_label = f"rg -c -F -i -f LITERALS ({n_literals} literals)" if literals_path else "rg -c -F -i -f LITERALS"
    if literals_path is None and rg:
        results.append(Measurement(rg_label, [], role="rg_f", skipped=literals_skip or "no literal set"))
    else:
        results.append(tool(rg, "rg", rg_label, ["-c", "-F", "-i", "-f", str(literals_path)], role="rg_f"))
    if kind == "auditd":
        for needle in (NEEDLE, HEX_NEEDLE):
            results.append(tool(rg, "rg", f"rg -c -F {needle}", ["-c", "-F", needle]))
        results.append(tool(grep, "grep", f"grep -c -F {HEX_NEEDLE}", ["-c", "-F", HEX_NEEDLE]))
        results.append(
            Measurement(f"python SOCKADDR {HEX_NEEDLE} per line", [sys.executable, "-c", AUDITD_BASELINE, fname])
        )
    else:
        results.append(tool(rg, "rg", f"rg -c -F {NEEDLE}", ["-c", "-F", NEEDLE]))
        results.append(tool(grep, "grep", f"grep -c -F {NEEDLE}", ["-c", "-F", NEEDLE]))
        if kind == "csv":
            results.append(Measurement("python csv.reader", [sys.executable, "-c", CSV_BASELINE, fname]))
        else:
            results.append(Measurement("python json.loads per line", [sys.executable, "-c", JSON_BASELINE, fname]))
            orjson_label = "python orjson per line"
            if has_orjson:
                results.append(Measurement(orjson_label, [sys.executable, "-c", ORJSON_BASELINE, fname]))
            else:
                results.append(Measurement(orjson_label, [], skipped="orjson not installed"))
    return results


@dataclass
class Target:
    goal: str
    verdict: str  # PASS, MISS, n/a, info
    measured: str
    role: str = ""  # the table row it belongs to ("" = below the table only)
    short: str = ""  # the table's `vs target` text


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def evaluate_targets(
    kind: str,
    size: int,
    results: Sequence[Measurement],
    prefix_run: Measurement | None,
    cores: int,
    rss_slack_mb: float = RSS_SLACK_MB,
    machine: float | None = None,
) -> list[Target]:
    """The issue's targets for one input: PASS/MISS when measured, n/a when a figure is missing, info when
    the issue sets no target for this input."""
    by_role = {m.role: m for m in results if m.role}
    targets: list[Target] = []
    j1, j0, rg, floor = by_role.get("jobs1"), by_role.get("jobs0"), by_role.get("rg_f"), by_role.get("floor")
    mbps1 = j1.mbps(size) if j1 else None
    mbps0 = j0.mbps(size) if j0 else None
    rg_mbps = rg.mbps(size) if rg else None

    def missing(m: Measurement | None) -> str:
        if m is None:
            return "not run"
        if m.skipped:
            return m.skipped
        if m.timed_out and m.wall == float("inf"):
            return "timed out"
        return "failed" if m.failed else "no figure"

    # Throughput per core.
    if kind == "defender":
        goals = [(JSON_MBPS_PER_CORE, "")]
    elif kind == "auditd":
        goals = [(goal, f", {issue}") for goal, issue in AUDITD_TARGETS_MBPS]
    else:
        goals = []
    floor_mbps = floor.mbps(size) if floor else None
    ceiling = f" (ceiling: the raw passes alone, nothing parsed, {floor_mbps:,.0f} MB/s)" if floor_mbps else ""
    for goal, note in goals:
        text = f">= {goal:,.0f} MB/s per core{note} (--jobs 1, end to end)"
        if mbps1 is None:
            targets.append(Target(text, "n/a", missing(j1), "jobs1", f"{goal:.0f} MB/s n/a"))
        else:
            verdict = _verdict(mbps1 >= goal)
            targets.append(Target(text, verdict, f"{mbps1:,.0f} MB/s{ceiling}", "jobs1", f"{goal:.0f} MB/s {verdict}"))
    if kind == "csv" and mbps1 is not None:
        targets.append(Target("MB/s per core (--jobs 1; no CSV target in the issue)", "info", f"{mbps1:,.0f} MB/s"))

    # Share of ripgrep's throughput with the literal set.
    share_goal = kind == "defender"
    text = f">= {RG_SHARE:.0%} of rg -c -f throughput (--jobs 1 vs rg, one file each)"
    if not share_goal:
        text = "share of rg -c -f throughput (--jobs 1 vs rg; target is for Defender JSON)"
    if mbps1 is None or rg_mbps is None:
        targets.append(Target(text, "n/a" if share_goal else "info", missing(j1 if mbps1 is None else rg), "jobs1"))
    else:
        share = mbps1 / rg_mbps
        verdict = _verdict(share >= RG_SHARE) if share_goal else "info"
        targets.append(
            Target(
                text,
                verdict,
                f"{mbps1:,.0f} / {rg_mbps:,.0f} MB/s = {share:.0%}",
                "jobs1",
                f"{share:.0%} of rg {verdict}" if share_goal else "",
            )
        )

    # Speed-up on all cores.
    speed_goal = kind == "defender"
    text = f">= {SPEEDUP_ALL_CORES}x on all cores (--jobs 0 on {cores} usable cores vs --jobs 1)"
    if not speed_goal:
        how = "is cut into ranges where no event is open" if kind == "auditd" else "is read by one worker"
        text = f"speed-up on all cores (--jobs 0 on {cores} usable cores; {TITLE[kind]} {how})"
    if mbps1 is None or mbps0 is None:
        targets.append(Target(text, "n/a" if speed_goal else "info", missing(j1 if mbps1 is None else j0), "jobs0"))
    else:
        ratio = mbps0 / mbps1
        if not speed_goal:
            targets.append(Target(text, "info", f"{ratio:.2f}x", "jobs0", f"{ratio:.2f}x"))
        elif cores < 2:
            targets.append(Target(text, "n/a", f"{ratio:.2f}x; needs >= 2 usable cores", "jobs0", f"{ratio:.2f}x n/a"))
        else:
            verdict = _verdict(ratio >= SPEEDUP_ALL_CORES)
            targets.append(Target(text, verdict, f"{ratio:.2f}x", "jobs0", f"{ratio:.2f}x {verdict}"))
    if machine is not None and mbps1 is not None and mbps0 is not None:
        targets.append(Target(f"this machine: {cores} copies of a pure Python loop at once vs one alone (same run)",
                              "info", f"{machine:.2f}x; imds-detect --jobs 0 reaches {mbps0 / mbps1 / machine:.0%} "
                              "of it"))

    # What the C extensions bring: --jobs 1 with them vs without (IMDS_DETECT_PURE_PYTHON=1).
    pure = by_role.get("purepython")
    mbps_pure = pure.mbps(size) if pure else None
    text = f"C extensions (--jobs 1 vs the same with {PURE_PYTHON}=1)"
    if mbps1 is None or mbps_pure is None:
        targets.append(Target(text, "info", missing(j1 if mbps1 is None else pure), "purepython"))
    else:
        ratio = mbps1 / mbps_pure
        targets.append(Target(text, "info", f"{mbps1:,.0f} vs {mbps_pure:,.0f} MB/s = {ratio:.2f}x", "purepython",
                              f"C extensions {ratio:.2f}x"))

    # Flat memory: peak RSS of --jobs 1 on the whole file vs on its first 10%.
    text = f"peak RSS flat (--jobs 1: whole file <= first 10% + {rss_slack_mb:.0f} MB)"
    if j1 is None or not j1.ok or prefix_run is None or not prefix_run.ok:
        failed_run = j1 if j1 is None or not j1.ok else prefix_run
        targets.append(Target(text, "n/a", missing(failed_run), "jobs1"))
    else:
        whole, part = j1.rss_kb / 1024, prefix_run.rss_kb / 1024
        verdict = _verdict(whole - part <= rss_slack_mb)
        targets.append(
            Target(
                text,
                verdict,
                f"{whole:.1f} MB whole vs {part:.1f} MB first 10% ({whole - part:+.1f} MB)",
                "jobs1",
                f"RSS flat {verdict}",
            )
        )
    return targets


def print_table(results: list[Measurement], data: Dataset, targets: Sequence[Target] = ()) -> None:
    mb = data.size / 1e6
    header = ["command", "wall s", "MB/s", "events/s", "peak RSS MB", "result", "vs target"]
    rows: list[list[str]] = []
    for m in results:
        if m.skipped:
            rows.append([m.label, "n/a", "n/a", "n/a", "n/a", m.skipped, ""])
            continue
        if m.timed_out and m.wall == float("inf"):
            rows.append([m.label, "TIMEOUT", "", "", "", "killed at --timeout", ""])
            continue
        if m.failed or m.wall == float("inf"):
            rows.append([m.label, "FAILED", "", "", f"{m.rss_kb / 1024:.1f}", f"exit {m.returncode}", ""])
            continue
        result = m.result
        if not result and m.alerts_path is None and m.stdout.strip():
            result = f"count {m.stdout.strip().splitlines()[-1]}"
        target = "; ".join(t.short for t in targets if t.role and t.role == m.role and t.short)
        rows.append(
            [
                m.label,
                f"{m.wall:.2f}",
                f"{mb / m.wall:,.0f}",
                f"{data.rows / m.wall:,.0f}",
                f"{m.rss_kb / 1024:.1f}",
                result,
                target,
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(fmt_row(header, widths))
    print(fmt_row(["-" * w for w in widths], widths))
    for r in rows:
        print(fmt_row(r, widths).rstrip())


def print_targets(kind: str, targets: Sequence[Target]) -> None:
    print(f"targets ({TITLE[kind]}; PASS/MISS are printed, never enforced):")
    width = max((len(t.goal) for t in targets), default=0)
    for t in targets:
        print(f"  {t.verdict:<4}  {t.goal.ljust(width)}  {t.measured}")


def alerts_lines(path: Path | None) -> list[str] | None:
    if path is None or not path.exists():
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", default="1GB", help="data size, e.g. 1GB, 200MB (default 1GB)")
    parser.add_argument(
        "--input",
        choices=(*KINDS, "all"),
        default="defender",
        help="data to benchmark: Defender JSON lines (default), Defender CSV, a raw audit.log, or all three "
        "one after the other",
    )
    parser.add_argument("--data-dir", default="bench-data", help="where the data file lives (default bench-data)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scratch files (10%% prefix copy, alerts output) in --data-dir",
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per command; the best is reported (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed when generating (default 1)")
    parser.add_argument("--ratio", type=int, default=10_000, help="generator ratio when generating (default 10000)")
    parser.add_argument(
        "--file",
        help="benchmark this file (JSON lines; a CSV with --input csv; an audit.log with --input auditd) instead "
        "of the generated one",
    )
    parser.add_argument("--imds-cmd", help="command that runs imds-detect (default: imds-detect on PATH)")
    parser.add_argument(
        "--timeout",
        type=float,
        help="kill a run after this many seconds and report TIMEOUT (default: no limit)",
    )
    parser.add_argument(
        "--rss-method",
        choices=("auto", "time", "wait4"),
        default="auto",
        help="how to read peak RSS: GNU time when installed (auto), or os.wait4 only",
    )
    parser.add_argument(
        "--rss-slack",
        type=float,
        default=RSS_SLACK_MB,
        help=f"flat memory target: whole-file peak RSS at most this many MB above the 10%% prefix's "
        f"(default {RSS_SLACK_MB:.0f})",
    )
    args = parser.parse_args(argv)
    if args.file and args.input == "all":
        parser.error("--file names one file: use it with --input defender, csv or auditd")
    args.size = parse_size(args.size)
    kinds = KINDS if args.input == "all" else (args.input,)
    failed = False
    for number, kind in enumerate(kinds):
        if len(kinds) > 1:
            if number:
                print()
            print(f"=== {kind}: {TITLE[kind]} ===", flush=True)
        failed |= run_input(args, kind)
    return 1 if failed else 0


def run_input(args: argparse.Namespace, kind: str) -> bool:
    """Benchmark one kind of input (generating its data when missing); True when a command failed."""
    auditd = kind == "auditd"
    repeat = max(1, args.repeat)

    data = ensure_dataset(args, kind)
    data_dir = data.path.parent
    imds = imds_command(args)
    mb = data.size / 1e6
    cores = usable_cores()
    if auditd:
        unit = "audit records (lines)"
    elif kind == "csv":
        unit = f"records ({data.lines:,} lines, header included)"
    else:
        unit = "rows"
    planted = data.labels.get("planted_count") if data.labels else None
    planted_text = "n/a" if planted is None else str(planted)

    print()
    print(f"data: {data.path} - {mb:,.1f} MB, {data.rows:,} {unit}; planted: {planted_text}")
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; commit {git_revision()}")
    print(
        f"machine: {os.cpu_count()} cores ({cores} usable), {cpu_model()}, {platform.system()} {platform.release()}; "
        f"{load_text()}"
    )
    print(
        f"python: {platform.python_version()} ({sys.executable}); imds-detect {package_version()}: {shlex.join(imds)}"
    )
    print(f"accelerators: {accelerators()}")
    scratch_ctx = tempfile.TemporaryDirectory(prefix="bench-", dir=data_dir)
    scratch = Path(scratch_ctx.name)
    runner = Runner(scratch, args.rss_method, args.timeout)
    if runner.method == "time":
        rss_note = f"the command's own ru_maxrss as reported by GNU time ({runner.time_exe} -f %M)"
    else:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rss_note = (
            f"ru_maxrss from os.wait4 (GNU time not used: figures include this runner's own peak of "
            f"{own:.1f} MB, inherited across exec)"
        )
    print(
        f"method: warm page cache, best wall time of {repeat} run(s); MB = 10^6 bytes; peak RSS = {rss_note}; "
        f"with --jobs 0 the largest single process"
    )
    if auditd:
        print("events/s: audit records (lines of the log) per second, for every command")
    elif kind == "csv":
        print("events/s: CSV records per second (a record may span lines), for every command")
    needles, literals_note = prefilter_literals()
    literals_path = data_dir / "prefilter-literals.txt" if needles else None
    if literals_path is not None:
        write_literals(needles, literals_path)
        print(f"LITERALS: {literals_path}: {literals_note}")
    else:
        print(f"LITERALS: n/a: {literals_note}")
    print(flush=True)

    keep_dir = data_dir if args.keep else scratch
    suffix = SUFFIX[kind]
    stem = data.path.name.removesuffix(suffix)
    fname = str(data.path)
    fmt = ["--format", "auditd"] if auditd else []
    failed = False
    try:
        try:
            import orjson  # noqa: F401

            has_orjson = True
        except ImportError:
            has_orjson = False
        has_jobs = supports_flag(imds, "--jobs")
        results = build_commands(
            kind,
            imds,
            fname,
            keep_dir,
            rg=shutil.which("rg"),
            grep=shutil.which("grep"),
            literals_path=literals_path,
            literals_skip=literals_note,
            cores=cores,
            has_jobs=has_jobs,
            has_no_prefilter=supports_flag(imds, "--no-prefilter"),
            has_orjson=has_orjson,
        )
        by_role = {m.role: m for m in results if m.role}

        for m in results:
            if m.skipped:
                continue
            print(f"running: {m.label} ...", flush=True)
            runner.measure(m, repeat)
            failed |= m.failed
            if m.alerts_path is not None and m.ok:
                m.result = f"{alert_records(m.alerts_path)[0]} alerts"

        # Memory flatness: the same scan on the first 10% of the file.
        prefix_path = keep_dir / f"{stem}.first10pct{suffix}"
        prefix_bytes, prefix_lines = write_prefix(data.path, prefix_path, 0.10, quoted_records=kind == "csv")
        print("running: imds-detect scan --jobs 1 on the first 10% ...", flush=True)
        prefix_run = runner.measure(
            Measurement(
                "imds-detect scan (first 10%)",
                [
                    *imds,
                    "scan",
                    str(prefix_path),
                    *fmt,
                    "--output",
                    "jsonl",
                    "-o",
                    os.devnull,
                    *(["--jobs", "1"] if has_jobs else []),
                ],
            ),
            repeat,
        )
        failed |= prefix_run.failed
        machine = None
        if kind == "defender" and cores >= 2 and has_jobs:
            print(f"running: {cores} copies of a pure Python loop at once, and one alone ...", flush=True)
            machine = machine_scaling(cores)

        targets = evaluate_targets(kind, data.size, results, prefix_run, cores, args.rss_slack, machine)
        print()
        print(f"after the runs: {load_text()}")
        print()
        print_table(results, data, targets)
        print()
        for m in results:
            if not m.skipped:
                shown = shlex.join(m.argv) if "python" not in m.label else f"{m.argv[0]} -c <baseline> {fname}"
                print(f"  {m.label}: {shown}")
        print()
        print_targets(kind, targets)
        print()

        j1 = by_role["jobs1"]
        if auditd:
            print_auditd_alerts(data, j1, j1.alerts_path or Path(os.devnull))
        else:
            print_defender_alerts(data, j1, j1.alerts_path or Path(os.devnull))
        reference = alerts_lines(j1.alerts_path) if j1.ok else None
        for role in ("jobs0", "noprefilter", "purepython"):
            other = by_role.get(role)
            if reference is None or other is None or not other.ok:
                continue
            mine = alerts_lines(other.alerts_path)
            same = "identical to" if mine == reference else "DIFFERENT from"
            print(f"  alerts of {other.label}: {len(mine or [])}, {same} --jobs 1")
        print()
        whole, part = rss_text(j1), rss_text(prefix_run)
        short = "lines" if kind == "csv" else "records" if auditd else "rows"
        print(
            f"memory flatness: imds-detect --jobs 1 peak RSS on first 10% ({prefix_bytes / 1e6:,.1f} MB, "
            f"{prefix_lines:,} {short}): {part}  |  whole file ({mb:,.1f} MB, {data.lines:,} {short}): {whole}"
        )

        for m in [*results, prefix_run]:
            if m.failed:
                print(f"\nFAILED: {m.label} exited {m.returncode}: {shlex.join(m.argv)}", file=sys.stderr)
                for line in m.stderr.strip().splitlines()[-15:]:
                    print(f"  {line}", file=sys.stderr)
        if args.keep:
            kept = [str(m.alerts_path) for m in results if m.alerts_path is not None and m.alerts_path.exists()]
            print(f"\nkept: {', '.join(kept)}, {prefix_path}")
    finally:
        scratch_ctx.cleanup()
    return failed


def print_summary_tail(run: Measurement) -> None:
    summary = run.stderr.strip()
    if summary:
        print("  imds-detect summary (stderr):")
        for line in summary.splitlines()[-12:]:
            print(f"    {line}")


def print_defender_alerts(data: Dataset, alerts_run: Measurement, alerts_path: Path) -> None:
    planted = data.labels.get("planted_count") if data.labels else None
    planted_text = "n/a" if planted is None else str(planted)
    planted_text = f"{planted}" if planted is not None else "n/a (no labels sidecar)"
    if alerts_run.failed or alerts_run.timed_out:
        state = "TIMED OUT" if alerts_run.timed_out else f"FAILED (exit {alerts_run.returncode})"
        print(f"alerts: run {state}; planted malicious rows: {planted_text}")
        return
    n_alerts, records, suppressed = alert_records(alerts_path)
    print(
        f"alerts: imds-detect reported {n_alerts} alert(s) ({suppressed} marked suppressed); "
        f"planted malicious rows: {planted_text}"
    )
    if data.labels and records:
        planted_idx = set(data.labels.get("indices", []))
        decoy_idx = {i for v in data.labels.get("decoys", {}).values() for i in v}
        alerted = set(records)
        hit = alerted & planted_idx
        on_decoys = alerted & decoy_idx
        other = alerted - planted_idx - decoy_idx
        print(
            f"  planted rows alerted: {len(hit)}/{len(planted_idx)}; benign decoy rows alerted: "
            f"{len(on_decoys)} of {len(decoy_idx)}; other rows alerted: {len(other)}"
        )
        missed = sorted(planted_idx - alerted)
        if missed:
            by_index = {p["index"]: p for p in data.labels.get("planted", [])}
            kinds: dict[str, int] = {}
            for i in missed:
                t = by_index.get(i, {}).get("template", "?")
                kinds[t] = kinds.get(t, 0) + 1
            print("  missed planted templates: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    print_summary_tail(alerts_run)


def print_auditd_alerts(data: Dataset, alerts_run: Measurement, alerts_path: Path) -> None:
    """Alerts against the labels: an alert's ``source.line`` is the line of its event's first record."""
    labels = data.labels
    planted = labels.get("planted_count") if labels else None
    accesses = f" ({labels['accesses']} accesses)" if labels and "accesses" in labels else ""
    planted_text = f"{planted}{accesses}" if planted is not None else "n/a (no labels sidecar)"
    if alerts_run.failed or alerts_run.timed_out:
        state = "TIMED OUT" if alerts_run.timed_out else f"FAILED (exit {alerts_run.returncode})"
        print(f"alerts: run {state}; planted malicious events: {planted_text}")
        return
    n_alerts, lines, suppressed = alert_records(alerts_path, "line")
    print(
        f"alerts: imds-detect reported {n_alerts} alert(s) ({suppressed} marked suppressed) on {len(set(lines))} "
        f"event(s); planted malicious events: {planted_text}"
    )
    if labels:
        planted_lines = set(labels.get("lines", []))
        decoy_lines = {i for v in labels.get("decoys", {}).values() for i in v}
        alerted = set(lines)
        hit = alerted & planted_lines
        on_decoys = alerted & decoy_lines
        other = alerted - planted_lines - decoy_lines
        print(
            f"  planted events alerted (by source.line): {len(hit)}/{len(planted_lines)}; benign decoy events "
            f"alerted: {len(on_decoys)} of {len(decoy_lines)}; other events alerted: {len(other)}"
        )
        missed = sorted(planted_lines - alerted)
        if missed:
            by_line = {p["line"]: p for p in labels.get("planted", [])}
            kinds: dict[str, int] = {}
            for i in missed:
                p = by_line.get(i, {})
                t = f"{p.get('template', '?')}/{p.get('kind', '?')}"
                kinds[t] = kinds.get(t, 0) + 1
            print("  missed planted templates: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
        if on_decoys:
            by_kind = {i: k for k, v in labels.get("decoys", {}).items() for i in v}
            counts: dict[str, int] = {}
            for i in on_decoys:
                counts[by_kind[i]] = counts.get(by_kind[i], 0) + 1
            print("  alerted decoy kinds: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        if other:
            print("  other alerted lines (first 10): " + ", ".join(map(str, sorted(other)[:10])))
    print_summary_tail(alerts_run)


def _entry() -> int:
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    try:
        return main()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(_entry())
