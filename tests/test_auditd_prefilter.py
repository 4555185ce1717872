"""The auditd shortcut (harmless connect/execve events closed unparsed) never changes an alert.

`scan` runs it by default; `--no-prefilter` builds every event. Both must give the same alerts and
suppressions, including the parent and command line an alert carries from earlier events of the pid, and
the same skips (reason, line, in the same order). The fast reader (blocks cut into whole events by one
regular expression, see `AuditdParser._tiled`) must do exactly what the line loop does with the shortcut:
the same events, skips, assembly statistics and counts, whatever the block size.
"""

from __future__ import annotations

import io
import ipaddress
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from auditd_mutation import mutate_log
from hypothesis import given, settings
from hypothesis import strategies as st
from test_prefilter import COMMANDS, _in_url, metadata_host_spelling

from imds_detect import ScanOptions, Severity, scan
from imds_detect.detect.allowlist import Allowlist, default_entries
from imds_detect.detect.detector import Detector
from imds_detect.model import Event
from imds_detect.sources import auditd
from imds_detect.sources.auditd import AuditdParser
from imds_detect.sources.base import ReadCounts, Skip

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "fixtures" / "auditd"
SHARED = ROOT.parent.parent / "shared" / "data" / "auditd" / "go-libaudit"
OPTIONS = {"min_severity": Severity.INFORMATIONAL, "show_suppressed": True}
DETECTOR = Detector(Allowlist(default_entries()))


@contextmanager
def _blocks_of(size: int) -> Iterator[None]:
    """Read audit logs `size` bytes at a time (events and lines cut by block boundaries)."""
    saved = auditd.READ_BLOCK
    auditd.READ_BLOCK = size
    try:
        yield
    finally:
        auditd.READ_BLOCK = saved


def _both(path: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    warnings: tuple[list[str], list[str]] = ([], [])
    fast = scan([str(path)], ScanOptions(warn=warnings[0].append, **OPTIONS))
    slow = scan([str(path)], ScanOptions(prefilter=False, warn=warnings[1].append, **OPTIONS))
    assert fast.summary.records == slow.summary.records
    assert fast.summary.skipped == slow.summary.skipped
    assert warnings[0] == warnings[1]  # the same skips, named by line, in the same order
    return ([a.as_dict() for a in fast.alerts + fast.suppressed],
            [a.as_dict() for a in slow.alerts + slow.suppressed])


Parsed = tuple[list[Event], list[Skip], object, int, object]


def _parse(data: bytes, light: bool, tiled: bool = True, block_size: int | None = None, **window: int) -> Parsed:
    skips: list[Skip] = []
    parser = AuditdParser("audit.log", skips.append, light=light, tiled=tiled, block_size=block_size, **window)
    counts = ReadCounts()
    events = list(parser.events(io.BytesIO(data), counts))
    return events, skips, parser.stats, counts.records, counts.newest


def _alerts(events: list[Event]) -> list[dict[str, object]]:
    found = []
    for event in events:
        detection = DETECTOR.run(event)
        found.extend(alert.as_dict() for alert in detection.alerts + detection.suppressed)
    return found


def _assert_exact(data: bytes, block_sizes: tuple[int | None, ...] = (None, 997, 64), **window: int) -> Parsed:
    """The fast reader against the line loop (both with the shortcut), and the shortcut against the full
    path: identical events (or, for the full path, alerts), skips in order, statistics and counts."""
    reference = _parse(data, light=True, tiled=False, **window)
    for size in block_sizes:
        tiled = _parse(data, light=True, block_size=size, **window)
        assert tiled[0] == reference[0], size
        assert tiled[1] == reference[1], size
        assert tiled[2:] == reference[2:], size
    full = _parse(data, light=False, **window)
    assert full[1] == reference[1]
    assert full[3] == reference[3]
    assert _alerts(full[0]) == _alerts(reference[0])
    return reference


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.log")))
def test_fixture_alerts_identical_with_and_without_shortcut(name: str) -> None:
    fast, slow = _both(FIXTURES / name)
    assert fast == slow


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/auditd not present")
def test_real_logs_identical_with_and_without_shortcut() -> None:
    for path in sorted(SHARED.glob("*.log")):
        fast, slow = _both(path)
        assert fast == slow, path.name


# --------------------------------------------------------------------------- generated logs

def _value(text: str) -> str:
    """How the kernel writes an untrusted string: quoted when plain printable ASCII, else hex."""
    data = text.encode()
    if all(0x21 <= b <= 0x7E and b != 0x22 for b in data) and data:
        return f'"{text}"'
    return data.hex().upper()


def _sockaddr(ip: str, port: int) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return f"0200{port:04X}{int(address):08X}" + "0" * 16
    return f"0A00{port:04X}00000000{int(address):032X}00000000"


class _Log:
    def __init__(self, rng: random.Random, nodes: int = 0) -> None:
        self.rng = rng
        self.serial = 100
        self.time = 1_715_681_472.0
        self.pids = [1]
        self.nodes = [f"node=host{i} " for i in range(1, nodes + 1)] or [""]
        self.events: list[list[str]] = []

    def _header(self) -> str:
        self.serial += 1
        self.time += self.rng.choice((0.001, 0.003, 0.003, 0.5, 2.5))  # sometimes beyond the 2 s window
        return f"msg=audit({self.time:.3f}:{self.serial})"

    def _syscall(self, header: str, number: int, pid: int, comm: str, exe: str, success: str = "yes") -> str:
        ppid = self.rng.choice(self.pids)
        return (f"type=SYSCALL {header}: arch=c000003e syscall={number} success={success} exit=0 a0=3 a1=7ffd "
                f"a2=10 a3=0 items=0 ppid={ppid} pid={pid} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 "
                f"sgid=0 fsgid=0 tty=pts0 ses=3 comm={_value(comm)} exe={_value(exe)} key=\"imds\"")

    def _add(self, records: list[str]) -> None:
        node = self.rng.choice(self.nodes)
        self.events.append([node + record for record in records])

    def execve(self, argv: list[str], exe: str) -> int:
        header = self._header()
        pid = self.rng.randrange(2, 60000)
        comm = exe.rsplit("/", 1)[-1][:15]
        fields = []
        for i, arg in enumerate(argv):
            if len(arg) > 20 and self.rng.random() < 0.2:  # a long argument logged in chunks
                data = arg.encode().hex().upper()
                fields += [f"a{i}_len={len(arg)}"] + [f"a{i}[{k}]={data[c: c + 16]}"
                                                     for k, c in enumerate(range(0, len(data), 16))]
            else:
                fields.append(f"a{i}={_value(arg)}")
        cut = self.rng.randrange(1, len(fields)) if len(fields) > 1 and self.rng.random() < 0.3 else len(fields)
        records = [f"type=EXECVE {header}: argc={len(argv)} {' '.join(fields[:cut])}"]
        if cut < len(fields):  # the kernel continues long argument lists in further EXECVE records
            records.append(f"type=EXECVE {header}: {' '.join(fields[cut:])}")
        title = b"\0".join(a.encode() for a in argv)[:128].hex().upper()
        self._add([self._syscall(header, 59, pid, comm, exe), *records, f'type=CWD {header}: cwd="/root"',
                   f"type=PATH {header}: item=0 name={_value(exe)} inode=2530369 dev=08:01 mode=0100755",
                   f"type=PROCTITLE {header}: proctitle={title}", f"type=EOE {header}: "])
        self.pids.append(pid)
        return pid

    def connect(self, pid: int, exe: str, saddr: str) -> None:
        header = self._header()
        comm = exe.rsplit("/", 1)[-1][:15]
        self._add([self._syscall(header, 42, pid, comm, exe, "no"), f"type=SOCKADDR {header}: saddr={saddr}",
                   f"type=PROCTITLE {header}: proctitle={comm.encode().hex().upper()}", f"type=EOE {header}: "])

    def other(self, pid: int, comm: str, exe: str) -> None:
        """An event of another syscall (openat): its process feeds the pid map (a thread may bear another
        comm than its process)."""
        header = self._header()
        self._add([self._syscall(header, 257, pid, comm, exe), f'type=CWD {header}: cwd="/"',
                   f"type=PATH {header}: item=0 name=\"/etc/hosts\" inode=12 dev=08:01 mode=0100644",
                   f"type=PROCTITLE {header}: proctitle={comm.encode().hex().upper()}", f"type=EOE {header}: "])

    def text(self, interleave: bool, drop_eoe: bool) -> bytes:
        lines: list[str] = []
        for event in self.events:
            if drop_eoe and self.rng.random() < 0.3:
                event = event[:-1]
            lines.extend(event)
        if interleave:
            for _ in range(len(lines) // 3):
                i = self.rng.randrange(len(lines) - 1)
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
        return ("\n".join(lines) + "\n").encode()


BENIGN_COMMANDS = (
    ["ls", "-la", "/tmp"], ["grep", "-rn", "169.254.169.254", "/etc"], ["curl", "-s", "https://example.com/"],
    ["python3", "/opt/app/run.py", "--port", "8080"], ["bash", "-c", "echo hello world"],
    ["systemctl", "status", "nginx"], ["wget", "http://10.1.2.3/file"],
)
ADDRESSES = (("10.1.2.3", 443), ("8.8.8.8", 53), ("169.254.169.254", 80), ("169.254.169.254", 53),
             ("169.254.169.253", 53), ("fd00:ec2::254", 80), ("::ffff:169.254.169.254", 80), ("169.254.170.2", 80),
             ("127.0.0.1", 40342), ("127.0.0.1", 8080), ("2001:db8::1", 443), ("100.100.100.200", 80))
EXES = ("/usr/bin/python3", "/usr/bin/curl", "/tmp/cloud-init", "/usr/bin/amazon-ssm-agent", "/dev/shm/x",
        "/usr/bin/google_guest_agent", "/usr/sbin/nginx")


THREADS = ("worker-1", "GC Thread#0", "C2 CompilerThre")  # threads of a process log their own comm


def _generated(seed: int, hosts: list[str], nodes: int = 0, interleave: bool = False, drop_eoe: bool = False) -> bytes:
    """A log of execs (benign and fetching a metadata host spelled as `hosts`; quoted, hex, chunked and
    split arguments), connects (metadata, neighbours, ordinary, IPv6, unix) and other syscalls."""
    rng = random.Random(seed)
    log = _Log(rng, nodes)
    for _ in range(rng.randrange(5, 40)):
        choice = rng.random()
        exe = rng.choice(EXES)
        if choice < 0.35:
            pid = log.execve(list(rng.choice(BENIGN_COMMANDS)), exe)
        elif choice < 0.55:
            _, template = rng.choice(COMMANDS)
            host = rng.choice(hosts)
            pid = log.execve(template.format(h=_in_url(host)).split(" "), exe)
        else:
            pid = rng.choice(log.pids)
        if rng.random() < 0.4:
            log.other(rng.choice(log.pids), rng.choice((exe.rsplit("/", 1)[-1], *THREADS)), exe)
        if rng.random() < 0.6:
            ip, port = rng.choice(ADDRESSES)
            saddr = _sockaddr(ip.removeprefix("::ffff:"), port) if "::ffff:" not in ip else (
                "0A00" + f"{port:04X}" + "00000000" + "00000000000000000000FFFFA9FEA9FE" + "00000000")
            log.connect(pid, exe, saddr if rng.random() > 0.1 else "01002F72756E2F6E7363642F736F636B6574")
    return log.text(interleave, drop_eoe)


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), hosts=st.lists(metadata_host_spelling(), min_size=1, max_size=4),
       nodes=st.sampled_from([0, 0, 2]), interleave=st.booleans(), drop_eoe=st.booleans(),
       block=st.sampled_from([1 << 21, 4096, 333]))
def test_generated_logs_identical_with_and_without_shortcut(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                                            hosts: list[str], nodes: int, interleave: bool,
                                                            drop_eoe: bool, block: int) -> None:
    path = tmp_path_factory.mktemp("gen") / "audit.log"
    path.write_bytes(_generated(seed, hosts, nodes, interleave, drop_eoe))
    with _blocks_of(block):
        fast, slow = _both(path)
    assert fast == slow


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), hosts=st.lists(metadata_host_spelling(), min_size=1, max_size=3),
       nodes=st.sampled_from([0, 3]), interleave=st.booleans(), drop_eoe=st.booleans(),
       window=st.sampled_from([{}, {"window_events": 2, "window_ms": 400, "max_pids": 6}]))
def test_fast_reader_is_the_line_loop(seed: int, hosts: list[str], nodes: int, interleave: bool, drop_eoe: bool,
                                      window: dict[str, int]) -> None:
    """Parser level, exactly: the same events (fields, parents, command lines, lines, indexes), skips,
    statistics and counts, with blocks cutting events, small windows and a small pid map."""
    _assert_exact(_generated(seed, hosts, nodes, interleave, drop_eoe), **window)


MUTATION_SOURCES = (FIXTURES / "raw_x86_64.log", FIXTURES / "malformed.log", FIXTURES / "enriched_node.log",
                    FIXTURES / "assembly.log", FIXTURES / "ausearch_i.log")


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_logs_give_the_same_skips_and_alerts(data: st.DataObject) -> None:
    """Broken input: flipped and inserted bytes, cut, moved and repeated lines. The shortcut reports every
    skip the full path reports, on the same line, in the same order, and the fast reader is the line loop."""
    source = bytearray(data.draw(st.sampled_from([_generated(data.draw(st.integers(0, 999)), ["169.254.169.254"],
                                                             data.draw(st.sampled_from([0, 2]))),
                                                  *(path.read_bytes() for path in MUTATION_SOURCES)])))
    source = bytearray(mutate_log(source, data))
    _assert_exact(bytes(source), (None, 200))


def test_generated_logs_do_alert(tmp_path: Path) -> None:
    """Guard against a vacuous property: metadata connects and commands in such logs alert."""
    log = _Log(random.Random(7))
    pid = log.execve(["curl", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"], "/usr/bin/curl")
    log.connect(pid, "/usr/bin/curl", _sockaddr("169.254.169.254", 80))
    log.connect(pid, "/usr/bin/curl", _sockaddr("10.1.2.3", 80))
    log.execve(["ls", "-la"], "/usr/bin/ls")
    target = tmp_path / "audit.log"
    target.write_bytes(log.text(False, False))
    result = scan([str(target)], ScanOptions(**OPTIONS))
    assert sorted(a.rule_id for a in result.alerts) == ["imds-command-line", "imds-network-connection"]
    network = next(a for a in result.alerts if a.rule_id == "imds-network-connection")
    assert network.process.command_line.startswith("curl http://169.254.169.254/")
    assert result.summary.parsed < (scan([str(target)], ScanOptions(prefilter=False, **OPTIONS)).summary.parsed)


def test_arguments_continued_in_a_second_execve_record(tmp_path: Path) -> None:
    """The URL sits in the second EXECVE record: the shortcut must not judge the event by the first."""
    header = "msg=audit(1715681472.010:1002)"
    path = tmp_path / "audit.log"
    path.write_text(
        f"type=SYSCALL {header}: arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=8 items=2 ppid=2300 "
        'pid=2301 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 '
        'tty=pts0 ses=3 comm="curl" exe="/usr/bin/curl" key="imds_exec"\n'
        f'type=EXECVE {header}: argc=3 a0="curl" a1="-s"\n'
        f'type=EXECVE {header}: a2="http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role"\n'
        f"type=EOE {header}: \n")
    fast, slow = _both(path)
    assert fast == slow
    assert [(a["rule_id"], a["severity"]) for a in fast] == [("imds-command-line", "high")]


# --------------------------------------------------------------------------- what the shortcut once got wrong

def _record(serial: int, kind: str, body: str, node: str = "") -> bytes:
    return f"{node}type={kind} msg=audit(1715681472.{serial:03d}:{serial}): {body}".encode()


def _syscall(serial: int, call: int, pid: int, ppid: int, comm: str, exe: str, success: str = "yes") -> bytes:
    return _record(serial, "SYSCALL", f"arch=c000003e syscall={call} success={success} exit=0 a0=3 a1=2 a2=3 a3=4 "
                   f"items=0 ppid={ppid} pid={pid} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 "
                   f"fsgid=0 tty=pts0 ses=3 comm={comm} exe={exe} key=(null)")


def _connect(serial: int, pid: int, ppid: int, saddr: str, comm: str = '"curl"', exe: str = '"/usr/bin/curl"',
             more: tuple[bytes, ...] = ()) -> list[bytes]:
    return [_syscall(serial, 42, pid, ppid, comm, exe), _record(serial, "SOCKADDR", f"saddr={saddr}"), *more,
            _record(serial, "EOE", "")]


def _other(serial: int, pid: int, comm: str) -> list[bytes]:
    return [_syscall(serial, 257, pid, 1, f'"{comm}"', '"/usr/bin/java"'), _record(serial, "EOE", "")]


TEN = "020000500A0000010000000000000000"  # 10.0.0.1:80
IMDS = "02000050A9FEA9FE0000000000000000"  # 169.254.169.254:80


def test_a_harmless_child_resolves_its_parent_as_a_built_one_does() -> None:
    """Looking up a parent fixes its entry (a later thread comm does not replace it): a connect the
    shortcut does not build must look it up too, or a later alert names another parent."""
    lines = [*_other(1, 100, "java"), *_connect(2, 200, 100, TEN), *_other(3, 100, "worker-1"),
             *_connect(4, 300, 100, IMDS)]
    events = _assert_exact(b"\n".join(lines) + b"\n")[0]
    assert [(e.process.pid, e.process.parent_name) for e in events] == [(300, "java")]


def test_skips_of_harmless_events_are_reported() -> None:
    """Undecodable comm/exe, saddr, PROCTITLE or CWD in events that cannot alert: the full path reports them
    (with their lines, in order), so the shortcut must too."""
    lines = [*_connect(1, 200, 1, TEN, comm="ZZ"), *_connect(2, 201, 1, "01002F72756E", exe='"/usr/bin/curl'),
             *_connect(3, 202, 1, "0100ZZ"),
             *_connect(4, 203, 1, TEN, more=(_record(4, "PROCTITLE", "proctitle=6375726"),)),
             *_connect(5, 204, 1, TEN, more=(_record(5, "CWD", 'cwd="/tmp" x'),)),
             _record(6, "SYSCALL", "arch=c000003e syscall=42 success=no"),  # truncated: no pid, comm, exe
             b"node=host1 type.SOCKADDR msg=audit(1715681472.007:7): saddr=" + TEN.encode()]
    skips = _assert_exact(b"\n".join(lines) + b"\n")[1]
    assert [(s.reason, s.line) for s in skips] == [
        ("bad-hex", 1), ("malformed-record", 4), ("bad-hex", 8), ("bad-hex", 12), ("malformed-record", 16),
        ("malformed-record", 18), ("malformed-record", 19)]


def test_a_deferred_syscall_that_cannot_be_read_is_reported_in_order() -> None:
    """A connect SYSCALL record that is not ASCII is parsed (and reported) where it stands, before the
    junk line after it."""
    lines = [_syscall(1, 42, 200, 1, '"curl"', '"/usr/bin/curl"').replace(b"uid=0", b"uid=\xff", 1), b"junk",
             _record(1, "SOCKADDR", f"saddr={TEN}"), _record(1, "EOE", "")]
    skips = _assert_exact(b"\n".join(lines) + b"\n")[1]
    assert [(s.reason, s.line) for s in skips] == [("invalid-utf8", 1), ("malformed-record", 2)]


def test_a_long_executable_path_survives_a_harmless_connect() -> None:
    """The pid map keeps a light connect's exe whole (a later alert of that pid names it)."""
    exe = "/opt/" + "x" * 700 + "/curl"
    lines = [*_connect(1, 200, 1, TEN, exe=f'"{exe}"'), *_connect(2, 300, 200, IMDS)]
    events = _assert_exact(b"\n".join(lines) + b"\n")[0]
    assert [e.process.parent_path for e in events] == [exe]


def test_interleaved_events_are_applied_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two events whose records alternate (and a third, late EOE) are applied at once, with the same result
    as the line loop; an alert among them is still built."""
    a, b, c = _connect(1, 200, 1, TEN), _other(2, 201, "java"), _connect(3, 202, 1, IMDS)
    lines = [a[0], b[0], a[1], c[0], b[1], c[1], a[2], c[2]]
    applied: list[bool] = []
    original = AuditdParser._quick_region

    def counted(self: AuditdParser, *args: object) -> bool:
        applied.append(original(self, *args))  # type: ignore[arg-type]
        return applied[-1]

    monkeypatch.setattr(AuditdParser, "_quick_region", counted)
    events = _assert_exact(b"\n".join(lines) + b"\n")[0]
    assert [(e.process.pid, e.remote_ip) for e in events] == [(202, "169.254.169.254")]
    assert False in applied  # (the alert's event is not applied at once)
    applied.clear()
    _assert_exact(b"\n".join([a[0], b[0], a[1], b[1], a[2]]) + b"\n", (None, 997))
    assert applied == [True, True]  # (once per block size; a smaller block would cut them)
