"""The auditd shortcut (harmless connect/execve events closed unparsed) never changes an alert.

`scan` runs it by default; `--no-prefilter` builds every event. Both must give the same alerts and
suppressions, including the parent and command line an alert carries from earlier events of the pid.
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_prefilter import COMMANDS, _in_url, metadata_host_spelling

from imds_detect import ScanOptions, Severity, scan

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "fixtures" / "auditd"
SHARED = ROOT.parent.parent / "shared" / "data" / "auditd" / "go-libaudit"
OPTIONS = {"min_severity": Severity.INFORMATIONAL, "show_suppressed": True}


def _both(path: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    fast = scan([str(path)], ScanOptions(**OPTIONS))
    slow = scan([str(path)], ScanOptions(prefilter=False, **OPTIONS))
    assert fast.summary.records == slow.summary.records
    return ([a.as_dict() for a in fast.alerts + fast.suppressed],
            [a.as_dict() for a in slow.alerts + slow.suppressed])


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
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.serial = 100
        self.time = 1_715_681_472.0
        self.pids = [1]
        self.events: list[list[str]] = []

    def _header(self) -> str:
        self.serial += 1
        self.time += 0.003
        return f"msg=audit({self.time:.3f}:{self.serial})"

    def _syscall(self, header: str, number: int, pid: int, comm: str, exe: str, success: str = "yes") -> str:
        ppid = self.rng.choice(self.pids)
        return (f"type=SYSCALL {header}: arch=c000003e syscall={number} success={success} exit=0 a0=3 a1=7ffd "
                f"a2=10 a3=0 items=0 ppid={ppid} pid={pid} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 "
                f"sgid=0 fsgid=0 tty=pts0 ses=3 comm={_value(comm)} exe={_value(exe)} key=\"imds\"")

    def execve(self, argv: list[str], exe: str) -> int:
        header = self._header()
        pid = self.rng.randrange(2, 60000)
        comm = exe.rsplit("/", 1)[-1][:15]
        fields = [f"a{i}={_value(arg)}" for i, arg in enumerate(argv)]
        cut = self.rng.randrange(1, len(fields)) if len(fields) > 1 and self.rng.random() < 0.3 else len(fields)
        records = [f"type=EXECVE {header}: argc={len(argv)} {' '.join(fields[:cut])}"]
        if cut < len(fields):  # the kernel continues long argument lists in further EXECVE records
            records.append(f"type=EXECVE {header}: {' '.join(fields[cut:])}")
        title = b"\0".join(a.encode() for a in argv)[:128].hex().upper()
        self.events.append([self._syscall(header, 59, pid, comm, exe), *records,
                            f'type=CWD {header}: cwd="/root"', f"type=PROCTITLE {header}: proctitle={title}",
                            f"type=EOE {header}: "])
        self.pids.append(pid)
        return pid

    def connect(self, pid: int, exe: str, saddr: str) -> None:
        header = self._header()
        comm = exe.rsplit("/", 1)[-1][:15]
        self.events.append([self._syscall(header, 42, pid, comm, exe, "no"), f"type=SOCKADDR {header}: saddr={saddr}",
                            f"type=PROCTITLE {header}: proctitle={comm.encode().hex().upper()}",
                            f"type=EOE {header}: "])

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


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), hosts=st.lists(metadata_host_spelling(), min_size=1, max_size=4),
       interleave=st.booleans(), drop_eoe=st.booleans())
def test_generated_logs_identical_with_and_without_shortcut(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                                            hosts: list[str], interleave: bool,
                                                            drop_eoe: bool) -> None:
    rng = random.Random(seed)
    log = _Log(rng)
    for _ in range(rng.randrange(5, 40)):
        choice = rng.random()
        exe = rng.choice(EXES)
        if choice < 0.4:
            pid = log.execve(list(rng.choice(BENIGN_COMMANDS)), exe)
        elif choice < 0.6:
            _, template = rng.choice(COMMANDS)
            host = rng.choice(hosts)
            pid = log.execve(template.format(h=_in_url(host)).split(" "), exe)
        else:
            pid = rng.choice(log.pids)
        if rng.random() < 0.6:
            ip, port = rng.choice(ADDRESSES)
            saddr = _sockaddr(ip.removeprefix("::ffff:"), port) if "::ffff:" not in ip else (
                "0A00" + f"{port:04X}" + "00000000" + "00000000000000000000FFFFA9FEA9FE" + "00000000")
            log.connect(pid, exe, saddr if rng.random() > 0.1 else "01002F72756E2F6E7363642F736F636B6574")
    path = tmp_path_factory.mktemp("gen") / "audit.log"
    path.write_bytes(log.text(interleave, drop_eoe))
    fast, slow = _both(path)
    assert fast == slow


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
