"""`validate --synthetic`: each test's expected telemetry, rendered in every supported input format and
scanned. Nothing is run; everything produced is labelled synthetic.

The telemetry follows from the test definition: per step, the process (argv with sample values for the
``{{...}}`` placeholders), a DNS lookup when the URL names a host (answered from the knowledge base), and
the connection to the metadata address.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from ..detect.allowlist import Allowlist
from ..knowledge.endpoints import name_info
from ..mock.config import MockConfig
from .catalog import AtomicTest
from .detection import detect, judge
from .namespace import program_path
from .outputs import SYNTHETIC_FORMATS, write_formats
from .report import Outcome, Report
from .telemetry import Observation, make_proc

SAMPLES = {"role": MockConfig().role, "token": "AQAEA-synthetic-imdsv2-session-token=="}
_URL = re.compile(r"https?://[^\s'\"]+")
SHELL = make_proc(4000, "/usr/bin/bash", ("bash",), ppid=3999, user="root")


def _exe(name: str) -> str:
    return program_path(name) or f"/usr/bin/{name}"


def expected_observations(test: AtomicTest, start: datetime) -> list[Observation]:
    """The exec, dns and connect observations the test should produce."""
    out: list[Observation] = []
    moment = start
    for number, step in enumerate(test.steps):
        argv = step.resolve(SAMPLES)
        proc = make_proc(4100 + number, _exe(argv[0]), argv, ppid=SHELL.pid, parent=SHELL)
        out.append(Observation("exec", moment, proc))
        for url in _URL.findall(" ".join(argv)):
            parts = urlsplit(url)
            host = parts.hostname or ""
            info = name_info(host)
            if info is not None:
                out.append(Observation("dns", moment + timedelta(milliseconds=1), proc, info.resolves_to, 53, "udp",
                                       qname=host, answer=info.resolves_to))
                host = info.resolves_to
            out.append(Observation("connect", moment + timedelta(milliseconds=2), proc, host, parts.port or 80,
                                   "tcp", "-115"))
        moment += timedelta(milliseconds=50)
    return out


def run_synthetic(tests: tuple[AtomicTest, ...], out_dir: Path, allowlist: Allowlist,
                  host: str = "validate-synthetic") -> Report:
    """Render, scan and judge every test (no root, no network, nothing executed)."""
    report = Report("synthetic", "synthetic", "none (synthetic telemetry rendered from the test definitions)",
                    str(out_dir))
    start = datetime.now(UTC).replace(microsecond=0)
    for index, test in enumerate(tests):
        observations = expected_observations(test, start + timedelta(seconds=index))
        files = write_formats(out_dir / test.id, observations, SYNTHETIC_FORMATS, host)
        results = [detect(path, label, allowlist) for label, path in files.items()]
        verdict, reasons = judge(test.expect, results, [])
        lines = [f"synthetic: {o.describe()}" for o in observations]
        execs = sum(1 for o in observations if o.kind == "exec")
        connects = sum(1 for o in observations if o.kind == "connect")
        dns = sum(1 for o in observations if o.kind == "dns")
        brief = f"synthetic: {execs} execve, {connects} connect, {dns} dns in {len(files)} formats"
        report.outcomes.append(Outcome(test, lines, brief, results, verdict, reasons))
    if "parquet" in SYNTHETIC_FORMATS and not any("parquet" in {r.format for r in o.results} for o in report.outcomes):
        report.notes.append("parquet not rendered: pyarrow is not installed (pip install 'imds-detect[parquet]')")
    report.notes.append("winsec (Windows Security 4688/5156) not rendered: it only carries Windows processes")
    return report
