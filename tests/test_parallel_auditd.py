"""`scan --jobs N` on raw audit logs: ranges of one audit.log read in worker processes and stitched in file order
(engine/parallel_auditd.py) give exactly what one process gives - alerts with their file, line and record numbers,
suppressed alerts, the summary (skip counts included) and every warning in its order - wherever the cuts fall:
inside multi-record events, inside EXECVE arguments split over records, between the EXECVE of a pid and its later
connect, among interleaved, out-of-order and lost records, with small windows and a small pid map.

Most comparisons run the tasks in this process through a pool that pickles every result as the worker's pipe does
(fast enough for many cuts and examples); some use real worker processes and the command line.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from auditd_mutation import mutate_log
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_auditd_prefilter import MUTATION_SOURCES, _generated
from test_prefilter import metadata_host_spelling

from imds_detect.cli import main
from imds_detect.engine import parallel, parallel_auditd
from imds_detect.engine.scan import ScanOptions, scan
from imds_detect.engine.window import parse_bound
from imds_detect.model import Severity
from imds_detect.sources import auditd as auditd_module
from imds_detect.sources import auditd_tiles
from imds_detect.sources.auditd import AuditdParser
from imds_detect.sources.auditd_events import WINDOW_MS, Assembler

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "benchmarks" / "generate_auditd.py"
FIXTURES = ROOT / "tests" / "fixtures" / "auditd"

Result = tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], list[str]]


def _generate(path: Path, size: str, seed: int, *extra: str) -> Path:
    subprocess.run([sys.executable, str(GENERATOR), "--size", size, "--ratio", "40", "--seed", str(seed),
                    "--out", str(path), *extra], check=True, capture_output=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated raw audit logs (interleaved pairs, late and lost records, serial gaps, long EXECVE arguments
    over several records, planted attacks and decoys): one host, three hosts with ``node=``, and a gzip."""
    folder = tmp_path_factory.mktemp("audit")
    plain = _generate(folder / "audit.log", "1500KB", 5)
    nodes = _generate(folder / "nodes.log", "1200KB", 6, "--node", "3")
    packed = folder / "audit.log.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    return {"plain": plain, "nodes": nodes, "gz": packed}


def _result(paths: list[str], jobs: int, chunk: int, **options: Any) -> Result:
    warnings: list[str] = []
    settings_: dict[str, Any] = {"show_suppressed": True, "min_severity": Severity.INFORMATIONAL}
    settings_.update(options)
    result = scan(paths, ScanOptions(jobs=jobs, chunk_bytes=chunk, warn=warnings.append, **settings_))
    return ([dataclasses.asdict(alert) for alert in result.alerts],
            [dataclasses.asdict(alert) for alert in result.suppressed], result.summary.as_dict(), warnings)


class _Done:
    def __init__(self, value: bytes) -> None:
        self.value = value

    def get(self) -> object:
        return pickle.loads(self.value)


class _Pool:
    """Runs each task at once in this process; its result goes through pickle as a worker's would."""

    def __init__(self, *args: object) -> None:
        pass

    def apply_async(self, function: Callable[..., object], args: tuple[object, ...]) -> _Done:
        return _Done(pickle.dumps(function(*args)))

    def terminate(self) -> None:
        pass

    def join(self) -> None:
        pass


class _Context:
    Pool = _Pool


@pytest.fixture()
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(parallel.multiprocessing, "get_context", lambda method: _Context())
    yield


@pytest.fixture()
def any_cut(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cut at the first line after each target, not where the audit trail is quiet."""
    monkeypatch.setattr(parallel_auditd, "ALIGN_CUTS", False)
    yield


def _ranges(path: Path, chunk: int, jobs: int = 2) -> list[tuple[int, int]]:
    tasks = parallel._plan_file(0, str(path), ScanOptions(chunk_bytes=chunk), jobs)
    return [task.span for task in tasks if task.span is not None]


def _assert_same(paths: list[str], chunk: int, jobs: tuple[int, ...] = (2,), **options: Any) -> Result:
    one = _result(paths, 1, chunk, **options)
    for count in jobs:
        other = _result(paths, count, chunk, **options)
        assert other[3] == one[3], count  # every warning, in order
        assert other[2] == one[2], count  # the summary: counts, skips, files
        assert other[0] == one[0], count  # alerts, newest first, with line and record numbers
        assert other[1] == one[1], count
    return one


# -- real worker processes ------------------------------------------------------------------------------

@pytest.mark.parametrize("aligned", [True, False], ids=["quiet-cuts", "any-cut"])
@pytest.mark.parametrize("name", ["plain", "nodes"])
def test_workers_give_what_one_process_gives(logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, name: str,
                                             aligned: bool) -> None:
    monkeypatch.setattr(parallel_auditd, "ALIGN_CUTS", aligned)
    parallel_auditd.OUTCOMES.clear()
    path = logs[name]
    assert len(_ranges(path, 20_000)) > 20  # (ranges of an audit log: twice the chunk)
    one = _assert_same([str(path)], 20_000, (2, 3))
    assert one[0], "the generated log holds planted attacks"
    outcomes = parallel_auditd.OUTCOMES
    if aligned:
        ranges = outcomes["accepted"] + sum(count for why, count in outcomes.items() if why.startswith("rescanned"))
        assert outcomes["accepted"] > 0.9 * ranges  # taken as the workers read them
        assert outcomes["undecided events judged ahead"] > outcomes["undecided events judged by the parent"]
    else:  # most cuts fall inside events: those ranges are read again by the parent
        assert outcomes["accepted"] and outcomes["rescanned: an event is open at the cut"]


FLAG_SETS = [
    [],
    ["--show-suppressed", "--min-severity", "informational"],
    ["--since", "20m"],
    ["--no-prefilter", "--show-suppressed"],
    ["--limit", "max_audit_open_events=3", "--limit", "max_audit_event_records=4"],
]


@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda flags: " ".join(flags) or "defaults")
def test_command_line_prints_what_jobs_1_prints(logs: dict[str, Path], flags: list[str]) -> None:
    inputs = [str(logs["plain"]), str(FIXTURES / "malformed.log"), str(logs["nodes"]), str(logs["gz"]),
              str(FIXTURES / "ausearch_i.log"), str(logs["plain"])]  # the same log twice: skips warned once

    def run(jobs: int) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, ["scan", *inputs, "--format", "auditd", "--output", "jsonl", "--jobs",
                                           str(jobs), *flags], env={"IMDS_DETECT_CHUNK_BYTES": "60000"})
        return result.exit_code, result.stdout, result.stderr

    one = run(1)
    assert one[0] in (0, 1), one[2]
    assert one[1], "alerts"
    assert "skipped (incomplete-event)" in one[2]
    assert run(2) == one


def test_gzip_audit_logs_stay_whole(logs: dict[str, Path]) -> None:
    tasks = parallel._plan_file(0, str(logs["gz"]), ScanOptions(chunk_bytes=1000), 2)
    assert len(tasks) == 1 and tasks[0].span is None
    assert len(_ranges(logs["plain"], 1000)) > 100


def test_cuts_fall_where_no_event_is_open(logs: dict[str, Path]) -> None:
    """Planning: each cut opens an event, and the one-process scan has no event open there (so that the parent
    takes the ranges as the workers read them)."""
    for name in ("plain", "nodes"):
        data = logs[name].read_bytes()
        spans = _ranges(logs[name], 25_000)
        assert len(spans) > 15
        parser = AuditdParser("audit.log", lambda skip: None, light=True)
        parser.assembler.finish = lambda: None  # type: ignore[method-assign]
        for start, end in spans[:-1]:
            assert b" type=SYSCALL " in b" " + data[end: data.index(b"\n", end)].split(b"msg=")[0]
            for _ in parser.events(io.BytesIO(data[start:end])):
                pass
            assert not parser.assembler.open, end


# -- every cut, in this process ---------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 300, 1500])
def test_every_line_cut_of_generated_logs(in_process: None, any_cut: None, tmp_path: Path, chunk: int) -> None:
    """chunk 1: a range per line - every cut inside events, split EXECVE arguments, between an EXECVE and the
    connect of its pid, among interleaved records and after lost EOEs."""
    paths = []
    for seed, nodes, interleave, drop_eoe in [(1, 0, False, False), (2, 2, True, False), (3, 0, True, True),
                                             (4, 3, False, True)]:
        path = tmp_path / f"gen{seed}.log"
        path.write_bytes(_generated(seed, ["169.254.169.254", "metadata.google.internal", "[fd00:ec2::254]"],
                                    nodes, interleave, drop_eoe))
        paths.append(str(path))
        assert chunk > 1 or len(_ranges(path, chunk)) > 30
    _assert_same(paths, chunk, (2, 3), format="auditd")


def test_crlf_lines_and_no_final_newline(in_process: None, any_cut: None, tmp_path: Path) -> None:
    path = tmp_path / "crlf.log"
    path.write_bytes(_generated(7, ["169.254.169.254"], 2, True, True).replace(b"\n", b"\r\n").rstrip(b"\r\n"))
    assert len(_ranges(path, 1)) > 30
    _assert_same([str(path)], 1, (2,), format="auditd")
    _assert_same([str(path)], 400, (3,), format="auditd")


@pytest.mark.parametrize("name", ["plain", "nodes"])
def test_small_windows_and_pid_map(in_process: None, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                   name: str) -> None:
    """Events closed by the event and time windows, and a pid map of 40 entries: its oldest entries fall out in
    every range, some of them between their first use in a range and the next."""
    monkeypatch.setattr(Assembler.__init__, "__defaults__", (3, 500, 40))
    for aligned in (True, False):
        monkeypatch.setattr(parallel_auditd, "ALIGN_CUTS", aligned)
        _assert_same([str(logs[name])], 20_000, (2,))


def test_no_prefilter_and_relative_window(in_process: None, any_cut: None, logs: dict[str, Path]) -> None:
    _assert_same([str(logs["nodes"])], 30_000, (2,), prefilter=False)
    _assert_same([str(logs["plain"])], 30_000, (3,), since=parse_bound("10m"), show_suppressed=False,
                 min_severity=Severity.LOW)


def _record(serial: int, kind: str, body: str) -> str:
    return f"type={kind} msg=audit(1715681472.{serial % 1000:03d}:{serial}): {body}"


def _syscall(serial: int, call: int, pid: int, ppid: int, comm: str, exe: str, success: str = "yes") -> str:
    return _record(serial, "SYSCALL", f"arch=c000003e syscall={call} success={success} exit=0 a0=3 a1=7ffd a2=10 "
                                      f"a3=0 items=0 ppid={ppid} pid={pid} auid=1000 uid=0 gid=0 euid=0 suid=0 "
                                      f"fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm=\"{comm}\" exe=\"{exe}\"")


def _event(serial: int, *records: str) -> list[str]:
    return [*records, _record(serial, "EOE", "")]


def test_a_connect_takes_the_argv_and_parent_of_earlier_ranges(in_process: None, tmp_path: Path) -> None:
    """The parent's name and the command line of a connect come from events ranges before it (the pid map as
    one process builds it), also when the pid met other events in between: here the command line names the
    cloud-init script, whose allowlist entry suppresses the connect (its PROCTITLE alone would not)."""
    lines: list[str] = []
    serial = 100
    lines += _event(serial, _syscall(serial, 59, 700, 1, "bash", "/usr/bin/bash"),
                    _record(serial, "EXECVE", 'argc=2 a0="bash" a1="-l"'))
    serial += 1
    lines += _event(serial, _syscall(serial, 59, 4242, 700, "cloud-init", "/usr/bin/python3.10"),
                    _record(serial, "EXECVE", 'argc=3 a0="/usr/bin/python3" a1="/usr/bin/cloud-init" a2="init"'))
    for _ in range(300):  # filler: events of other syscalls and harmless connects of other processes
        serial += 1
        lines += _event(serial, _syscall(serial, 257, 900 + serial % 7, 1, "cron", "/usr/sbin/cron"),
                        _record(serial, "CWD", 'cwd="/"'))
        serial += 1
        lines += _event(serial, _syscall(serial, 42, 800 + serial % 5, 1, "curl", "/usr/bin/curl", "no"),
                        _record(serial, "SOCKADDR", "saddr=020001BB0A0102030000000000000000"))
        if serial == 400:  # the pid does something else in between
            serial += 1
            lines += _event(serial, _syscall(serial, 257, 4242, 700, "cloud-init", "/usr/bin/python3.10"))
    serial += 1
    lines += _event(serial, _syscall(serial, 42, 4242, 700, "cloud-init", "/usr/bin/python3.10", "no"),
                    _record(serial, "SOCKADDR", "saddr=02000050A9FEA9FE0000000000000000"),
                    _record(serial, "PROCTITLE", "proctitle=707974686F6E33"))
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    assert len(_ranges(path, 1500)) > 20
    parallel_auditd.OUTCOMES.clear()
    one = _assert_same([str(path)], 1500, (2, 3))
    assert parallel_auditd.OUTCOMES["accepted"] > 40  # (the pid map crossed the cuts as symbols)
    assert parallel_auditd.OUTCOMES["undecided events judged by the parent"]  # (its argv is not the guess)
    assert not [alert for alert in one[0] if alert["source"]["line"] == len(lines) - 3]
    connect = [alert for alert in one[1] if alert["source"]["line"] == len(lines) - 3]
    assert connect[0]["process"]["command_line"] == "/usr/bin/python3 /usr/bin/cloud-init init"
    assert connect[0]["process"]["parent_name"] == "bash"
    assert connect[0]["suppressed_by"] == "cloud-init-script"


def _line(moment_ms: int, serial: int, kind: str, body: str) -> str:
    return f"type={kind} msg=audit({moment_ms // 1000}.{moment_ms % 1000:03d}:{serial}): {body}".rstrip()


def _call(moment_ms: int, serial: int, call: int, pid: int, comm: str, exe: str) -> str:
    return _line(moment_ms, serial, "SYSCALL", f"arch=c000003e syscall={call} success=no exit=-115 a0=3 a1=7ffd "
                                               f"a2=10 a3=0 items=0 ppid=1 pid={pid} auid=1000 uid=0 gid=0 euid=0 "
                                               f"suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 "
                                               f'comm="{comm}" exe="{exe}"')


IMDS_SADDR = "saddr=02000050A9FEA9FE0000000000000000"
OTHER_SADDR = "saddr=020001BB0A0102030000000000000000"


def _scan_cut_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], cut: int) -> Result:
    """Write `lines` as an audit log, cut its ranges at line `cut`, and scan it with 1 and 2 jobs (asserted
    the same, OUTCOMES counted afresh); returns what :func:`_assert_same` returns."""
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    chunk = _cut_before(monkeypatch, path, cut)
    parallel_auditd.OUTCOMES.clear()
    return _assert_same([str(path)], chunk, (2,))


def _cut_before(monkeypatch: pytest.MonkeyPatch, path: Path, *lines: int) -> int:
    """Plan the ranges of `path` to start exactly at these (0-based) lines; returns the chunk size to scan with."""
    data = path.read_bytes()
    offsets = [0]
    for text in data.split(b"\n"):
        offsets.append(offsets[-1] + len(text) + 1)
    wanted = [offsets[line] for line in lines]
    monkeypatch.setattr(parallel_auditd, "_cut_near",
                        lambda handle, target, size: min((cut for cut in wanted if cut >= target), default=None))
    assert [start for start, _ in _ranges(path, 1)] == [0, *wanted]
    return 1


def test_a_clock_stepping_back_across_a_cut(in_process: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest time of a node before a cut holds the time window open after it: an event without EOE just after
    the cut, older than that time, stays open (its late record joins it) as in one process."""
    moment, serial, lines = 1_715_681_472_000, 100, []

    def filler(count: int, at: int) -> None:
        nonlocal serial
        for _ in range(count):
            serial += 1
            lines.extend([_call(at, serial, 257, 900, "cron", "/usr/sbin/cron"), _line(at, serial, "EOE", "")])

    filler(800, moment - 10_000)
    serial += 1
    lines.extend([_call(moment, serial, 42, 810, "curl", "/usr/bin/curl"),  # the node's newest time
                  _line(moment, serial, "SOCKADDR", OTHER_SADDR), _line(moment, serial, "EOE", "")])
    filler(150, moment - 10_000)
    cut = len(lines)
    serial += 1
    late = serial  # 5 s older, its EOE lost
    lines.extend([_call(moment - 5000, late, 42, 820, "curl", "/usr/bin/curl"),
                  _line(moment - 5000, late, "SOCKADDR", IMDS_SADDR)])
    serial += 1
    lines.extend([_call(moment - 2500, serial, 42, 830, "curl", "/usr/bin/curl"),
                  _line(moment - 2500, serial, "SOCKADDR", OTHER_SADDR), _line(moment - 2500, serial, "EOE", "")])
    lines.append(_line(moment - 5000, late, "PROCTITLE", "proctitle=6375726C002D73"))
    filler(1000, moment - 2400)
    one = _scan_cut_at(tmp_path, monkeypatch, lines, cut)
    assert [alert["process"]["command_line"] for alert in one[0]] == ["curl -s"]  # (from the late PROCTITLE)
    assert parallel_auditd.OUTCOMES["rescanned: a node's time goes back across the cut"] == 1


def test_memory_of_other_syscalls_overflowing_across_cuts(in_process: None, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Events of other syscalls without EOE fill the bounded memory of their keys over two ranges: its oldest keys
    fall out in the second, and a record of one of them in the third range opens an event of its own, as in one
    process (the ranges are taken as the workers read them)."""
    moment, serial, lines = 1_715_681_472_000, 100_000, []
    first_key = serial + 1
    for _ in range(2500):
        serial += 1
        lines.append(_call(moment, serial, 257, 900, "cron", "/usr/sbin/cron"))
    second = len(lines)
    for _ in range(2000):  # (one at a time between whole events: no interleaved region to judge)
        serial += 1
        lines.append(_call(moment, serial, 257, 900, "cron", "/usr/sbin/cron"))
        serial += 1
        lines.extend([_call(moment, serial, 257, 901, "cron", "/usr/sbin/cron"), _line(moment, serial, "EOE", "")])
    third = len(lines)
    serial += 1
    lines.extend([_call(moment, serial, 257, 901, "cron", "/usr/sbin/cron"), _line(moment, serial, "EOE", "")])
    lines.append(_line(moment, first_key, "CWD", 'cwd="/"'))  # its event fell out of the memory: a new one
    serial += 1
    lines.extend([_call(moment, serial, 42, 820, "curl", "/usr/bin/curl"),
                  _line(moment, serial, "SOCKADDR", IMDS_SADDR), _line(moment, serial, "EOE", "")])
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    chunk = _cut_before(monkeypatch, path, second, third)
    parallel_auditd.OUTCOMES.clear()
    one = _assert_same([str(path)], chunk, (3,))
    assert len(one[0]) == 1 and one[0][0]["source"]["record"] == 2500 + 4000 + 1 + 1  # (the CWD opened one)
    assert parallel_auditd.OUTCOMES["accepted"] == 3 and not any("rescanned" in why for why in parallel_auditd.OUTCOMES)


def test_a_harmless_child_resolves_a_parent_from_before_the_cut(in_process: None, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A harmless connect looks its parent up - an entry from before the cut: one process turns its raw text into
    a Known in place, which a later event of another syscall by the parent (another exe) then keeps."""
    moment, serial, lines = 1_715_681_472_000, 100, []
    serial += 1
    lines.extend([_call(moment, serial, 257, 4300, "daemon", "/usr/sbin/daemon"), _line(moment, serial, "EOE", "")])
    cut = len(lines)
    serial += 1  # the child's harmless connect: its parent is looked up
    lines.extend([_call(moment, serial, 42, 4301, "curl", "/usr/bin/curl").replace("ppid=1 ", "ppid=4300 "),
                  _line(moment, serial, "SOCKADDR", OTHER_SADDR), _line(moment, serial, "EOE", "")])
    serial += 1  # the parent runs another executable: its entry stays the Known
    lines.extend([_call(moment, serial, 257, 4300, "other", "/usr/bin/other"), _line(moment, serial, "EOE", "")])
    serial += 1
    lines.extend([_call(moment, serial, 42, 4302, "curl", "/usr/bin/curl").replace("ppid=1 ", "ppid=4300 "),
                  _line(moment, serial, "SOCKADDR", IMDS_SADDR), _line(moment, serial, "EOE", "")])
    one = _scan_cut_at(tmp_path, monkeypatch, lines, cut)
    assert [alert["process"]["parent_path"] for alert in one[0]] == ["/usr/sbin/daemon"]
    assert parallel_auditd.OUTCOMES["accepted"] == 2


def test_an_entry_that_cannot_be_read_looked_up_after_a_cut(in_process: None, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A pid whose first event in a range is of another syscall with an undecodable exe, then looked up as a
    parent: one process drops the entry unless it held a Known before the cut - the parent reads that range."""
    moment, serial, lines = 1_715_681_472_000, 100, []
    for _ in range(50):
        serial += 1
        lines.extend([_call(moment, serial, 257, 900, "cron", "/usr/sbin/cron"), _line(moment, serial, "EOE", "")])
    cut = len(lines)
    serial += 1
    lines.extend([_call(moment, serial, 257, 4300, "x", "/bin/x").replace('exe="/bin/x"', "exe=ABC"),
                  _line(moment, serial, "EOE", "")])
    for address in (OTHER_SADDR, IMDS_SADDR):
        serial += 1
        lines.extend([_call(moment, serial, 42, 4301, "curl", "/usr/bin/curl").replace("ppid=1 ", "ppid=4300 "),
                      _line(moment, serial, "SOCKADDR", address), _line(moment, serial, "EOE", "")])
    one = _scan_cut_at(tmp_path, monkeypatch, lines, cut)
    assert len(one[0]) == 1 and one[0][0]["process"]["parent_name"] == ""
    assert parallel_auditd.OUTCOMES["rescanned: a pid map step depends on the past"] == 1


# -- generated and mutated logs, many cuts ---------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), hosts=st.lists(metadata_host_spelling(), min_size=1, max_size=3),
       nodes=st.sampled_from([0, 0, 3]), interleave=st.booleans(), drop_eoe=st.booleans(),
       chunk=st.sampled_from([1, 300, 2000]), aligned=st.booleans(),
       window=st.sampled_from([None, (2, 400, 6), (4, WINDOW_MS, 20)]))
def test_generated_logs_at_any_cut(in_process: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seed: int,
                                   hosts: list[str], nodes: int, interleave: bool, drop_eoe: bool, chunk: int,
                                   aligned: bool, window: tuple[int, int, int] | None) -> None:
    path = tmp_path / f"gen-{seed}.log"
    path.write_bytes(_generated(seed, hosts, nodes, interleave, drop_eoe))
    with monkeypatch.context() as patch:
        patch.setattr(parallel_auditd, "ALIGN_CUTS", aligned)
        if window is not None:
            patch.setattr(Assembler.__init__, "__defaults__", window)
        _assert_same([str(path)], chunk, (2,), format="auditd")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_logs_at_any_cut(in_process: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 data: st.DataObject) -> None:
    """Broken input (flipped and inserted bytes, cut, moved and repeated lines: late records, records of events
    from before a cut, undecodable values, ausearch separators) cut at every line or in larger ranges."""
    source = bytearray(data.draw(st.sampled_from([
        _generated(data.draw(st.integers(0, 999)), ["169.254.169.254"], data.draw(st.sampled_from([0, 2])),
                   data.draw(st.booleans()), data.draw(st.booleans())),
        *(path.read_bytes() for path in MUTATION_SOURCES)])))
    source = bytearray(mutate_log(source, data))
    path = tmp_path / "mutated.log"
    path.write_bytes(bytes(source))
    with monkeypatch.context() as patch:
        patch.setattr(parallel_auditd, "ALIGN_CUTS", data.draw(st.booleans()))
        if data.draw(st.booleans()):
            patch.setattr(Assembler.__init__, "__defaults__", (2, 400, 6))
        _assert_same([str(path)], data.draw(st.sampled_from([1, 150, 1000])), (2,), format="auditd")


@pytest.mark.skipif(auditd_tiles.NATIVE_TILES is None, reason="the C tiler (imds_detect._audit_tiles) is not built")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_range_notes_the_same_keys_with_either_tiler(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """A range's assembler notes every event key it met and how full the memory of other syscalls' events got,
    whichever tiler read the range: the C tiler applies events of other syscalls through quick_other_read, which
    the speculative assembler must hook as it hooks quick_other (the keys decide whether a range is accepted)."""
    log = b"".join(_generated(seed * 100 + index, ["169.254.169.254"], nodes=seed % 2 * 2) for index in range(20))

    def read(tiler: Callable[..., Any]) -> tuple[list[int], int, int]:
        monkeypatch.setattr(auditd_module, "tiles", tiler)
        parser = parallel_auditd._SpecParser("f", lambda skip: None, light=True)
        parser.assembler = parallel_auditd._SpecAssembler("f", lambda skip: None, symbolic=True, last=False)
        sum(1 for _ in parser.events(io.BytesIO(log)))
        return sorted(parser.assembler.keys), parser.assembler.peak, len(parser.assembler.keys)

    with_c = read(auditd_tiles.NATIVE_TILES)
    assert with_c == read(auditd_tiles.regex_tiles)
    assert with_c[2] > 100  # (events of other syscalls among them: see _generated)
