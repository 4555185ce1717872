#!/usr/bin/env python3
"""Measure `imds-detect scan` on a large Defender JSON-lines file or raw audit.log against literal-search and
Python baselines.

    python benchmarks/run_benchmark.py --size 1GB [--input defender|auditd|all]

Generates ``<data-dir>/defender-<size>.jsonl`` with generate_defender.py (``--input defender``, the default)
or ``<data-dir>/auditd-<size>.log`` with generate_auditd.py (``--input auditd``) when it is missing (it is
kept for the next run), warms the page cache, runs every command ``--repeat`` times (best wall time,
highest peak RSS) and prints one table: wall seconds, MB/s (10^6 bytes), events/s (rows, or audit records
= lines, in the file / seconds) and the command's own peak RSS (GNU time's %M when installed, else
``os.wait4``; see Runner). It then counts the alerts of one run against the planted rows (events) of the
labels sidecar and compares peak RSS on the first 10% of the file with the whole file. ``--input all``
runs the Defender section and then the auditd section.

Figures are printed, never asserted. The exit status is non-zero only when a command fails.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "generate_defender.py"
AUDITD_GENERATOR = HERE / "generate_auditd.py"
NEEDLE = "169.254.169.254"
HEX_NEEDLE = "A9FEA9FE"  # 169.254.169.254 as the kernel writes it in a SOCKADDR record's saddr
TARGET_MBPS = 200.0
TARGET_RSS_MB = 300.0
AUDITD_TARGETS_MBPS = ((100.0, "issue 3"), (300.0, "issue 4"))  # printed for information, never enforced

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

    @property
    def failed(self) -> bool:
        return not self.skipped and not self.timed_out and self.returncode not in self.ok_codes


@dataclass
class Dataset:
    path: Path
    size: int
    rows: int
    labels: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
    auditd = kind == "auditd"
    name = f"auditd-{size_label(args.size)}.log" if auditd else f"defender-{size_label(args.size)}.jsonl"
    default_path = Path(args.data_dir) / name
    path = Path(args.file) if args.file else default_path
    labels_file = path.with_name(path.name + ".labels.json")
    if not path.exists():
        if args.file:
            raise SystemExit(f"no such file: {path}")
        print(
            f"generating {path} ({size_label(args.size)}, seed {args.seed}, ratio {args.ratio}) ...",
            flush=True,
        )
        cmd = [
            sys.executable,
            str(AUDITD_GENERATOR if auditd else GENERATOR),
            "--size",
            str(args.size),
            "--out",
            str(path),
            "--seed",
            str(args.seed),
            "--ratio",
            str(args.ratio),
            *([] if auditd else ["--format", "jsonl"]),
        ]
        subprocess.run(cmd, check=True)
    labels = json.loads(labels_file.read_text(encoding="utf-8")) if labels_file.exists() else None
    print("warming the page cache ...", flush=True)
    rows = warm_and_count(path)
    return Dataset(path, path.stat().st_size, rows, labels)


def write_prefix(src: Path, dst: Path, fraction: float) -> tuple[int, int]:
    """Copy the first `fraction` of src, cut at a line boundary; return (bytes, lines)."""
    want = max(1, int(src.stat().st_size * fraction))
    copied = lines = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while copied < want:
            chunk = fin.read(min(1 << 20, want - copied))
            if not chunk:
                break
            fout.write(chunk)
            copied += len(chunk)
            lines += chunk.count(b"\n")
        if copied and not chunk.endswith(b"\n"):
            rest = fin.readline()
            fout.write(rest)
            copied += len(rest)
            lines += rest.count(b"\n")
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


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("imds-detect")
    except Exception:
        return "?"


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


def defender_target(mbps: float, rss_mb: float) -> str:
    return (
        f"{'ok' if mbps >= TARGET_MBPS else 'below'} {TARGET_MBPS:.0f} MB/s, "
        f"{'ok' if rss_mb < TARGET_RSS_MB else 'above'} {TARGET_RSS_MB:.0f} MB"
    )


def auditd_target(mbps: float, rss_mb: float) -> str:
    speeds = ", ".join(f"{'ok' if mbps >= goal else 'below'} {goal:.0f}" for goal, _ in AUDITD_TARGETS_MBPS)
    return f"{speeds} MB/s, {'ok' if rss_mb < TARGET_RSS_MB else 'above'} {TARGET_RSS_MB:.0f} MB"


def print_table(
    results: list[Measurement],
    data: Dataset,
    imds_labels: set[str],
    target_text: Callable[[float, float], str] = defender_target,
) -> None:
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
        mbps = mb / m.wall
        rss_mb = m.rss_kb / 1024
        result = m.stdout.strip().splitlines()[-1] if m.stdout.strip() and m.label not in imds_labels else ""
        target = target_text(mbps, rss_mb) if m.label in imds_labels else ""
        if result:
            result = f"count {result}"
        rows.append(
            [
                m.label,
                f"{m.wall:.2f}",
                f"{mbps:,.0f}",
                f"{data.rows / m.wall:,.0f}",
                f"{rss_mb:.1f}",
                result,
                target,
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(fmt_row(header, widths))
    print(fmt_row(["-" * w for w in widths], widths))
    for r in rows:
        print(fmt_row(r, widths))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", default="1GB", help="data size, e.g. 1GB, 200MB (default 1GB)")
    parser.add_argument(
        "--input",
        choices=("defender", "auditd", "all"),
        default="defender",
        help="data to benchmark: Defender JSON lines (default), a raw audit.log, or both one after the other",
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
        help="benchmark this file (JSON lines, or an audit.log with --input auditd) instead of the generated one",
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
    args = parser.parse_args(argv)
    if args.file and args.input == "all":
        parser.error("--file names one file: use it with --input defender or --input auditd")
    args.size = parse_size(args.size)
    kinds = ("defender", "auditd") if args.input == "all" else (args.input,)
    failed = False
    for number, kind in enumerate(kinds):
        if number:
            print()
            print(f"=== {kind} ===")
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
    unit = "audit records (lines)" if auditd else "rows"

    print()
    print(f"data: {data.path} - {mb:,.1f} MB, {data.rows:,} {unit}")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: {os.cpu_count()} cores ({affinity} usable), {cpu_model()}, {platform.system()} {platform.release()}"
    )
    print(
        f"python: {platform.python_version()} ({sys.executable}); imds-detect {package_version()}: {shlex.join(imds)}"
    )
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
    print(f"method: warm page cache, best wall time of {repeat} run(s); MB = 10^6 bytes; peak RSS = {rss_note}")
    if auditd:
        print("events/s: audit records (lines of the log) per second, for every command")
        goals = ", ".join(f">= {goal:.0f} MB/s ({issue})" for goal, issue in AUDITD_TARGETS_MBPS)
        print(f"targets (imds-detect, information only): {goals} on one core, peak RSS < {TARGET_RSS_MB:.0f} MB")
    else:
        print(f"targets (imds-detect): >= {TARGET_MBPS:.0f} MB/s on one core, peak RSS < {TARGET_RSS_MB:.0f} MB")
    print(flush=True)

    keep_dir = data_dir if args.keep else scratch
    suffix = ".log" if auditd else ".jsonl"
    stem = data.path.name.removesuffix(suffix)
    fname = str(data.path)
    fmt = ["--format", "auditd"] if auditd else []
    failed = False
    try:
        scan = [*imds, "scan", fname, *fmt, "--output", "jsonl", "-o", os.devnull]
        default = Measurement("imds-detect scan", scan)
        no_pf = Measurement("imds-detect scan --no-prefilter", [*scan, "--no-prefilter"])
        if not supports_flag(imds, "--no-prefilter"):
            no_pf.skipped = "flag not accepted"
        results = [default, no_pf]
        rg = shutil.which("rg")
        grep = shutil.which("grep")
        if auditd:
            for needle in (NEEDLE, HEX_NEEDLE):
                label = f"rg -c -F {needle}"
                results.append(
                    Measurement(label, [rg, "-c", "-F", needle, fname], ok_codes=(0, 1))
                    if rg
                    else Measurement(label, [], skipped="rg not installed")
                )
            label = f"grep -c -F {HEX_NEEDLE}"
            results.append(
                Measurement(label, [grep, "-c", "-F", HEX_NEEDLE, fname], ok_codes=(0, 1))
                if grep
                else Measurement(label, [], skipped="grep not installed")
            )
            results.append(
                Measurement(f"python SOCKADDR {HEX_NEEDLE} per line", [sys.executable, "-c", AUDITD_BASELINE, fname])
            )
        else:
            results.append(
                Measurement("rg -c -F", [rg, "-c", "-F", NEEDLE, fname], ok_codes=(0, 1))
                if rg
                else Measurement("rg -c -F", [], skipped="rg not installed")
            )
            results.append(
                Measurement("grep -c -F", [grep, "-c", "-F", NEEDLE, fname], ok_codes=(0, 1))
                if grep
                else Measurement("grep -c -F", [], skipped="grep not installed")
            )
            results.append(Measurement("python json.loads per line", [sys.executable, "-c", JSON_BASELINE, fname]))
            try:
                import orjson  # noqa: F401

                results.append(Measurement("python orjson per line", [sys.executable, "-c", ORJSON_BASELINE, fname]))
            except ImportError:
                results.append(Measurement("python orjson per line", [], skipped="orjson not installed"))

        for m in results:
            if m.skipped:
                continue
            print(f"running: {m.label} ...", flush=True)
            runner.measure(m, repeat)
            failed |= m.failed

        # One run writing alerts to a file, to count them against the planted rows.
        alerts_path = keep_dir / f"{stem}.alerts.jsonl"
        print("running: imds-detect scan -o alerts file ...", flush=True)
        alerts_run = runner.measure(
            Measurement(
                "imds-detect scan (alerts to file)",
                [*imds, "scan", fname, *fmt, "--output", "jsonl", "-o", str(alerts_path)],
            ),
            1,
        )
        failed |= alerts_run.failed

        # Memory flatness: the same scan on the first 10% of the file.
        prefix_path = keep_dir / f"{stem}.first10pct{suffix}"
        prefix_bytes, prefix_rows = write_prefix(data.path, prefix_path, 0.10)
        print("running: imds-detect scan on the first 10% ...", flush=True)
        prefix_run = runner.measure(
            Measurement(
                "imds-detect scan (first 10%)",
                [*imds, "scan", str(prefix_path), *fmt, "--output", "jsonl", "-o", os.devnull],
            ),
            repeat,
        )
        failed |= prefix_run.failed

        print()
        print_table(results, data, {default.label, no_pf.label}, auditd_target if auditd else defender_target)
        print()
        for m in results:
            if not m.skipped:
                shown = shlex.join(m.argv) if "python" not in m.label else f"{m.argv[0]} -c <baseline> {fname}"
                print(f"  {m.label}: {shown}")
        print()

        if auditd:
            print_auditd_alerts(data, alerts_run, alerts_path)
        else:
            print_defender_alerts(data, alerts_run, alerts_path)
        print()
        whole, part = rss_text(default), rss_text(prefix_run)
        short = "records" if auditd else "rows"
        print(
            f"memory flatness: imds-detect peak RSS on first 10% ({prefix_bytes / 1e6:,.1f} MB, "
            f"{prefix_rows:,} {short}): {part}  |  whole file ({mb:,.1f} MB, {data.rows:,} {short}): {whole}"
        )

        for m in [*results, alerts_run, prefix_run]:
            if m.failed:
                print(f"\nFAILED: {m.label} exited {m.returncode}: {shlex.join(m.argv)}", file=sys.stderr)
                for line in m.stderr.strip().splitlines()[-15:]:
                    print(f"  {line}", file=sys.stderr)
        if args.keep:
            print(f"\nkept: {alerts_path}, {prefix_path}")
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
