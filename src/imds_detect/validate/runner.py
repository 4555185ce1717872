"""The real run: sandbox, mock, each test's commands under capture, then the files, detection and verdicts."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..detect.allowlist import Allowlist
from ..knowledge.hosts import metadata_host
from ..mock.canary import find_canaries
from .capture import AuditCapture, CaptureUnavailable, StraceCapture, choose
from .catalog import AtomicTest
from .detection import FormatResult, detect, judge, read_events
from .namespace import SAFE_ENV, SAFE_PATH, Sandbox, SandboxError, program_path, unavailable_reason
from .outputs import REAL_FORMATS, concatenate, write_formats
from .report import Outcome, Report
from .telemetry import Observation, Proc, from_event

STEP_TIMEOUT = 30.0
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class Unavailable(RuntimeError):
    """A real run is not possible here (the message says why; --synthetic still works)."""


@dataclass
class StepRun:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass
class TestRun:
    """What running one test produced, before detection."""

    test: AtomicTest
    index: int
    steps: list[StepRun] = field(default_factory=list)
    mock_entries: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def missing_programs(test: AtomicTest) -> list[str]:
    return [name for name in test.requires if program_path(name) is None]


def split_runnable(tests: tuple[AtomicTest, ...]) -> tuple[list[AtomicTest], list[tuple[AtomicTest, str]]]:
    runnable, skipped = [], []
    for test in tests:
        missing = missing_programs(test)
        if missing:
            skipped.append((test, f"{', '.join(missing)} not installed"))
        else:
            runnable.append(test)
    return runnable, skipped


# -- the mock inside the sandbox ---------------------------------------------------------------------------
def start_mock(box: Sandbox, log: Path, errors: Path) -> subprocess.Popen[Any]:
    """Start `imds-detect mock-imds` inside on every sandbox address (port 80) plus DNS; wait until ready."""
    argv = [sys.executable, "-m", "imds_detect", "mock-imds", "--log", str(log), "--dns", "169.254.169.254:53"]
    for address in box.addresses:
        argv += ["--listen", f"[{address}]:80" if ":" in address else f"{address}:80"]
    with errors.open("w") as stderr:
        process = box.popen(argv, env={**SAFE_ENV, "PYTHONPATH": PACKAGE_ROOT}, stdout=subprocess.DEVNULL,
                            stderr=stderr)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = errors.read_text(encoding="utf-8", errors="replace")
        if "mock-imds: ready" in text:
            return process
        if process.poll() is not None:
            raise SandboxError(f"the mock metadata service did not start: {text.strip()[-500:]}")
        time.sleep(0.05)
    raise SandboxError("the mock metadata service did not get ready in 20 s")


def read_log(log: Path, offset: int) -> list[dict[str, Any]]:
    with log.open("rb") as handle:
        handle.seek(offset)
        return [json.loads(line) for line in handle.read().splitlines() if line.strip()]


# -- running one test --------------------------------------------------------------------------------------
def run_test(box: Sandbox, capture: AuditCapture | StraceCapture, test: AtomicTest, index: int, log: Path,
             directory: Path) -> TestRun:
    run = TestRun(test, index)
    offset = log.stat().st_size
    saved: dict[str, str] = {}
    for number, step in enumerate(test.steps):
        argv = list(step.resolve(saved))
        program = program_path(argv[0]) or argv[0]
        command, executable, preexec = capture.wrap(directory, index, number, argv, program)
        try:
            done = box.run(command, timeout=STEP_TIMEOUT, then=preexec, executable=executable)
        except subprocess.TimeoutExpired:
            run.problems.append(f"step {number + 1} timed out after {STEP_TIMEOUT:.0f} s")
            break
        run.steps.append(StepRun(tuple(argv), done.returncode, done.stdout, done.stderr))
        if done.returncode != 0:
            run.problems.append(f"step {number + 1} ({argv[0]}) exited {done.returncode}: {done.stderr.strip()[:200]}")
            break
        if step.save_as:
            saved[step.save_as] = done.stdout.strip()
    capture.settle()
    run.mock_entries = read_log(log, offset)  # the mock logs a request before answering it
    return run


# -- after the run: files, detection, verdict ----------------------------------------------------------------
def dns_observations(entries: list[dict[str, Any]]) -> list[Observation]:
    out = []
    for entry in entries:
        if entry.get("kind") == "dns":
            moment = datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00"))
            server = str(entry.get("local", "")).rsplit(":", 1)[0]
            out.append(Observation("dns", moment, Proc(0, ""), server, 53, "udp", qname=str(entry["qname"]),
                                   qtype=str(entry.get("qtype", "A")), answer=str(entry.get("answer", ""))))
    return out


def observed_lines(run: TestRun, observations: list[Observation]) -> tuple[list[str], str, list[str]]:
    """(observed lines, the table's summary, problems) of one test."""
    lines = [o.describe() for o in observations if o.kind != "dns"]
    problems: list[str] = []
    http = [e for e in run.mock_entries if e.get("kind") == "http"]
    dns = [e for e in run.mock_entries if e.get("kind") == "dns"]
    lines += [f"dns {e['qtype']} {e['qname']} -> {e['answer'] or e['rcode']} (mock resolver, from {e['client']})"
              for e in dns]
    lines += [f"http {e['method']} {e['target']} -> {e['status']} ({e['provider']}, from {e['client']})"
              for e in http]
    output = run.steps[-1].stdout if run.steps else ""
    present = [name for name in run.test.response_fields if name in output]
    if present:
        lines.append(f"response has {', '.join(present)}")
    canaries = sorted({c for e in http for c in e.get("canaries", [])} | set(find_canaries(output)))
    if canaries:
        lines.append(f"canary credentials handed out: IMDSCANARY{{{','.join(canaries)}}}")
    missing = [name for name in run.test.response_fields if name not in output]
    if missing:
        problems.append(f"response lacks {', '.join(missing)}")
    for name in run.test.dns_names:
        if not any(e["qname"] == name and e["answer"] for e in dns):
            problems.append(f"no DNS resolution of {name} observed")
    execs = [o for o in observations if o.kind == "exec"]
    connects = [o for o in observations if o.kind == "connect" and metadata_host(o.remote_ip, o.remote_port)]
    if not execs or not connects:
        problems.append("no process or no metadata connection captured")
    if not http:
        problems.append("the mock received no request")
    destinations = sorted({f"{o.remote_ip}:{o.remote_port}" for o in connects})
    brief = (f"{len(execs)} execve, {len(connects)} connect {','.join(destinations)}; {len(dns)} dns; "
             f"{len(http)} http {','.join(sorted({str(e['status']) for e in http}))}")
    return lines, brief, problems


def finish(run: TestRun, capture: AuditCapture | StraceCapture, directory: Path, host: str,
           allowlist: Allowlist) -> Outcome:
    """Write the test's telemetry files, scan them, judge."""
    dns = dns_observations(run.mock_entries)
    raw: list[str] | None = None
    if isinstance(capture, AuditCapture):
        raw = capture.raw_lines(run.index)
        audit_file = directory / "audit.log"
        directory.mkdir(parents=True, exist_ok=True)
        audit_file.write_text("".join(line + "\n" for line in raw), encoding="utf-8")
        parsed = [from_event(e) for e in read_events(audit_file, "auditd")]
        observations = [o for o in parsed if o is not None]
    else:
        observations = capture.observations(run.index)
    files = write_formats(directory, sorted(observations + dns, key=lambda o: o.time), REAL_FORMATS, host, raw)
    (directory / "mock-requests.jsonl").write_text("".join(json.dumps(e) + "\n" for e in run.mock_entries),
                                                   encoding="utf-8")
    results: list[FormatResult] = [detect(path, label, allowlist) for label, path in files.items()]
    lines, brief, problems = observed_lines(run, observations)
    verdict, reasons = judge(run.test.expect, results, run.problems + problems)
    return Outcome(run.test, lines, brief, results, verdict, reasons)


def run_real(tests: tuple[AtomicTest, ...], out_dir: Path, allowlist: Allowlist, choice: str = "auto") -> Report:
    """Run the tests for real inside a sandbox; raises Unavailable when that cannot be done here."""
    reason = unavailable_reason()
    if reason:
        raise Unavailable(reason)
    runnable, skipped = split_runnable(tests)
    curl = shutil.which("curl", path=SAFE_PATH)
    staged = {path: curl for test in runnable for path in test.staged if curl}
    host = socket.gethostname()
    work = Path(tempfile.mkdtemp(prefix="imds-validate-work-"))
    runs: list[TestRun] = []
    try:
        with Sandbox(work, staged) as box:
            start_mock(box, work / "mock.jsonl", work / "mock.err")
            try:
                capture = choose(choice, max(len(runnable), 1))
            except CaptureUnavailable as error:
                raise Unavailable(str(error)) from None
            try:
                for index, test in enumerate(runnable):
                    runs.append(run_test(box, capture, test, index, work / "mock.jsonl", out_dir / test.id))
            finally:
                capture.stop()
            notes = list(box.notes)
    except SandboxError as error:
        raise Unavailable(f"sandbox: {error}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = Report("real", capture.mechanism, capture.detail, str(out_dir), skipped=skipped, notes=notes)
    for run in runs:
        report.outcomes.append(finish(run, capture, out_dir / run.test.id, host, allowlist))
    for name in ("audit.log", "defender.jsonl", "sysmon.log", "mock-requests.jsonl"):
        concatenate([out_dir / run.test.id / name for run in runs if (out_dir / run.test.id / name).exists()],
                    out_dir / name)
    return report
