#!/usr/bin/env python3
"""Generate a synthetic raw Linux ``audit.log`` for benchmarks and recall checks.

The records follow the kernel's raw format (x86_64, ``arch=c000003e``): SYSCALL, EXECVE, CWD, PATH,
SOCKADDR, PROCTITLE and EOE for syscall events, single-record USER_*/CRED_*/LOGIN/SERVICE_* events,
untrusted strings in double quotes or as upper-case hex (the kernel's rule: a byte below 0x21 or above
0x7E, or a double quote), PROCTITLE as the hex of the NUL-separated argv cut at 128 bytes, SOCKADDR as
the hex of the sockaddr (AF_INET ``0200`` + port + address + 8 zero bytes, AF_INET6 ``0A00`` + port +
flowinfo + address + scope, AF_UNIX ``0100`` + path). The mix is mostly other syscalls (openat,
unlinkat, fchmodat, bind, sendto, kill ...), connect() to unix sockets (nscd, D-Bus, journald, docker),
connects to ordinary IPv4/IPv6 addresses (DNS, HTTPS, databases), execve() of ordinary programs and
PAM/systemd records. Records of two events are sometimes interleaved (alternating, or one record late),
a few records are lost and serials skip now and then.

Benign events that touch metadata addresses are labelled *decoys*: cloud agents connecting to
169.254.169.254:80 from their real paths (google_guest_agent, google_osconfig_agent, amazon-ssm-agent
in /usr/bin and in its snap, cloud-init under python3, waagent under python3), the legacy GCE python
daemons, GCP DNS on 169.254.169.254:53, the AWS resolver and time addresses, Azure's WireServer, and
command lines that only mention the address (grep, iptables). About one event in ``--ratio`` starts a
planted metadata access (curl/wget/python3/bash ``/dev/tcp``/nc execve and its connect, encoded host
spellings, arguments over several EXECVE records, connects from processes in /tmp or /dev/shm, a renamed
``cloud-init``, fd00:ec2::254, ECS, EKS Pod Identity, Alibaba, Oracle); every one of its events that must
alert is listed in the labels sidecar ``<out>.labels.json`` with the 1-based line of the event's first
record and the expected rules.

The output is deterministic: the same seed, ratio and node count give the same records whatever the
size (a smaller file is a prefix of a larger one).

    python benchmarks/generate_auditd.py --size 1GB --out bench-data/auditd-1GB.log
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import random
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from generate_defender import parse_size  # noqa: E402  (the same size syntax: 1GB, 200MB, 2MiB)

START_EPOCH = 1715558400  # 2024-05-13T00:00:00Z
MEAN_GAP_MS = 4.0  # ~250 events per second over all hosts
CHUNK_CHARS = 4 << 20
ARCH = "c000003e"  # x86_64
PID_MAX = 4194304
FIRST_FRESH_PID = 2000  # short-lived processes get pids from here; daemons have fixed pids below 2000
UNSET = "4294967295"

# Shares of special treatment (per unit of benign events).
P_PAIR = 0.02  # records of this event and the next one interleave
P_LATE = 0.004  # one record of this event comes after the next event's first record
P_LOST = 0.0008  # one record of this event is lost
P_SERIAL_GAP = 0.01  # the serial skips a few numbers (events the rules did not log)
DECOY_WEIGHT = 0.5  # scales the decoy templates: ~3% of events touch a metadata address benignly

IMDS = "169.254.169.254"
EXECVE_BUDGET = 7500  # MAX_EXECVE_AUDIT_LEN: bytes of arguments per EXECVE record

SYSCALLS = {
    "read": 0, "write": 1, "close": 3, "sendto": 44, "connect": 42, "accept": 43, "bind": 49, "execve": 59,
    "kill": 62, "rename": 82, "unlink": 87, "chmod": 90, "ptrace": 101, "setuid": 105, "setgid": 106,
    "adjtimex": 159, "mount": 165, "umount2": 166, "sethostname": 170, "init_module": 175,
    "setxattr": 188, "clock_settime": 227, "openat": 257, "fchownat": 260, "unlinkat": 263,
    "fchmodat": 268, "accept4": 288, "finit_module": 313, "renameat2": 316,
}

# Sentinels replaced per event: stamps (one per event of a unit) and the pid of a short-lived process.
PID = "\x01p\x02"


def S(i: int = 0) -> str:
    """The stamp sentinel of event `i` of a unit."""
    return f"\x01s{i}\x02"


def P(i: int = 0) -> str:
    """The pid sentinel of process `i` of a planted scenario."""
    return f"\x01p{i}\x02"


def enc(value: str) -> str:
    """How the kernel logs an untrusted string: in double quotes, or as upper-case hex when it holds a
    byte below 0x21 or above 0x7E or a double quote (audit_log_untrustedstring)."""
    data = value.encode()
    if any(b < 0x21 or b > 0x7E or b == 0x22 for b in data):
        return data.hex().upper()
    return f'"{value}"'


def proctitle_value(argv: Sequence[str]) -> str:
    data = "\0".join(argv).encode()[:128]
    if len(argv) == 1:
        return enc(data.decode("utf-8", "replace"))
    return data.hex().upper()


def execve_records(argv: Sequence[str]) -> list[str]:
    """The field text of the EXECVE record(s) of `argv`, as the kernel splits them (audit_log_execve_info):
    a record carries at most EXECVE_BUDGET bytes of arguments, so a long command line continues in further
    EXECVE records (``a5=... a6=...``, no argc); an argument longer than the budget (half of it when
    hex-encoded) is logged as ``aN_len=`` and chunks ``aN[0]=``, ``aN[1]=`` ..."""
    records: list[str] = []
    fields = [f"argc={len(argv)}"]
    used = 0

    def put(field: str) -> None:
        nonlocal fields, used
        if used and used + len(field) + 1 > EXECVE_BUDGET:
            records.append(" ".join(fields))
            fields, used = [], 0
        fields.append(field)
        used += len(field) + 1

    for i, arg in enumerate(argv):
        value = enc(arg)
        data = arg.encode()
        hexed = not value.startswith('"')
        limit = EXECVE_BUDGET // 2 if hexed else EXECVE_BUDGET
        if len(data) <= limit:
            put(f"a{i}={value}")
            continue
        put(f"a{i}_len={len(data)}")
        for n, k in enumerate(range(0, len(data), limit)):
            chunk = data[k: k + limit]
            put(f"a{i}[{n}]={chunk.hex().upper() if hexed else chr(34) + chunk.decode() + chr(34)}")
    records.append(" ".join(fields))
    return records


def inet_saddr(ip: str, port: int) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        data = b"\x02\x00" + port.to_bytes(2, "big") + address.packed + bytes(8)
    else:
        data = b"\x0a\x00" + port.to_bytes(2, "big") + bytes(4) + address.packed + bytes(4)
    return data.hex().upper()


def unix_saddr(path: str, padded: bool = False) -> str:
    """AF_UNIX: family, path, NUL; `padded` writes the whole 110-byte sockaddr_un (glibc's nscd client)."""
    # an abstract socket (@name): a leading NUL and no terminator
    data = b"\x01\x00\x00" + path[1:].encode() if path.startswith("@") else b"\x01\x00" + path.encode() + b"\x00"
    if padded:
        data = data.ljust(110, b"\x00")
    return data.hex().upper()


# --------------------------------------------------------------------------------------------------------
# Processes and records


@dataclass(frozen=True)
class Proc:
    """Who makes a syscall. ``pid`` is a fixed pid (daemons) or PID (a fresh pid per event)."""

    exe: str
    comm: str
    pid: str
    ppid: str
    uid: int = 0
    gid: int = 0
    auid: str = UNSET
    ses: str = UNSET
    tty: str = "(none)"
    argv: tuple[str, ...] = ()
    cwd: str = "/"


class Host:
    """One machine: its node prefix, daemons, sessions, pid counter and serial counter."""

    def __init__(self, rng: random.Random, index: int, node: str, clouds: tuple[str, ...], rhel: bool) -> None:
        self.rng = rng
        self.index = index
        self.node = node
        self.prefix = f"node={node} " if node else ""
        self.clouds = clouds
        self.rhel = rhel
        self.subj = "system_u:system_r:unconfined_service_t:s0" if rhel else "unconfined"
        self.user_subj = "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023" if rhel else "unconfined"
        self.serial = rng.randrange(1000, 900_000)
        self.next_pid = FIRST_FRESH_PID + rng.randrange(0, 50_000)
        self.python = "/usr/bin/python3.9" if rhel else "/usr/bin/python3.10"
        self.user = "ec2-user" if rhel else "ubuntu"
        self.ip = f"10.{rng.randrange(0, 200)}.{rng.randrange(0, 250)}.{rng.randrange(2, 250)}"
        self._pid = 300
        self.templates: list[Template] = []
        self.pool: list[Template] = []
        # Set by benign_templates: parents of planted processes (a login shell, application workers).
        self.parents: list[Proc] = []
        self.php_worker = Proc("/usr/sbin/php-fpm8.1", "php-fpm8.1", "1", "1")

    def daemon_pid(self) -> str:
        self._pid += self.rng.randrange(3, 40)
        return str(self._pid)

    # -- record lines (with sentinels) -----------------------------------------------------------
    def rec(self, kind: str, stamp: str, body: str) -> str:
        return f"{self.prefix}type={kind} msg=audit({stamp}): {body}" if body else \
            f"{self.prefix}type={kind} msg=audit({stamp}):"

    def syscall(self, stamp: str, p: Proc, nr: int, *, success: bool = True, exit_code: str = "0",
                a0: str = "3", a1: str = "", a2: str = "10", a3: str = "0", items: int = 0, key: str = "") -> str:
        a1 = a1 or f"7ff{zlib.crc32((p.exe + str(nr)).encode()) & 0xFFFFFFFFF:09x}"
        gid = p.gid
        subj = self.user_subj if p.auid != UNSET else self.subj
        return self.rec(
            "SYSCALL", stamp,
            f"arch={ARCH} syscall={nr} success={'yes' if success else 'no'} exit={exit_code} a0={a0} a1={a1} "
            f"a2={a2} a3={a3} items={items} ppid={p.ppid} pid={p.pid} auid={p.auid} uid={p.uid} gid={gid} "
            f"euid={p.uid} suid={p.uid} fsuid={p.uid} egid={gid} sgid={gid} fsgid={gid} tty={p.tty} "
            f"ses={p.ses} comm={enc(p.comm[:15])} exe={enc(p.exe)} subj={subj} key={enc(key) if key else '(null)'}",
        )

    def path(self, stamp: str, item: int, name: str, *, mode: str = "0100755", ouid: int = 0,
             nametype: str = "NORMAL") -> str:
        inode = 100 + zlib.crc32(name.encode()) % 4_000_000
        dev = "fd:00" if self.rhel else "08:01"
        obj = " obj=system_u:object_r:bin_t:s0" if self.rhel else ""
        return self.rec(
            "PATH", stamp,
            f"item={item} name={enc(name)} inode={inode} dev={dev} mode={mode} ouid={ouid} ogid={ouid} "
            f"rdev=00:00{obj} nametype={nametype} cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
        )

    def tail(self, stamp: str, p: Proc, argv: Sequence[str] | None = None) -> list[str]:
        return [self.rec("PROCTITLE", stamp, f"proctitle={proctitle_value(argv or p.argv or (p.comm,))}"),
                self.rec("EOE", stamp, "")]

    # -- events ----------------------------------------------------------------------------------
    def execve(self, stamp: str, p: Proc, argv: Sequence[str] | None = None, script: str = "") -> list[str]:
        argv = tuple(argv or p.argv)
        items = 3 if script else 2
        lines = [
            self.syscall(stamp, p, SYSCALLS["execve"], a0=f"55{zlib.crc32(p.exe.encode()):08x}a0",
                         a1="55d0c2a3b520", a2="55d0c2a3b540", a3="8", items=items, key="imds_exec"),
            *(self.rec("EXECVE", stamp, fields) for fields in execve_records(argv)),
            self.rec("CWD", stamp, f"cwd={enc(p.cwd)}"),
        ]
        if script:
            lines.append(self.path(stamp, 0, script))
            lines.append(self.path(stamp, 1, p.exe))
        else:
            lines.append(self.path(stamp, 0, argv[0] if argv[0].startswith("/") else p.exe))
        lines.append(self.path(stamp, items - 1, "/lib64/ld-linux-x86-64.so.2"))
        lines.extend(self.tail(stamp, p, argv))
        return lines

    def connect(self, stamp: str, p: Proc, saddr: str, *, success: bool = False, exit_code: str = "-115",
                unix_path: str = "", a0: str = "3") -> list[str]:
        addrlen = f"{len(saddr) // 2:x}"
        lines = [self.syscall(stamp, p, SYSCALLS["connect"], success=success, exit_code=exit_code, a0=a0,
                              a2=addrlen, items=1 if unix_path else 0, key="imds_connect"),
                 self.rec("SOCKADDR", stamp, f"saddr={saddr}")]
        if unix_path:
            lines.append(self.rec("CWD", stamp, f"cwd={enc(p.cwd)}"))
            lines.append(self.path(stamp, 0, unix_path, mode="0140777", ouid=0))
        lines.extend(self.tail(stamp, p))
        return lines

    def inet_connect(self, stamp: str, p: Proc, ip: str, port: int, *, udp: bool = False) -> list[str]:
        if udp:
            return self.connect(stamp, p, inet_saddr(ip, port), success=True, exit_code="0")
        return self.connect(stamp, p, inet_saddr(ip, port))

    def other(self, stamp: str, p: Proc, call: str, *, paths: Sequence[tuple[str, str]] = (),
              success: bool = True, exit_code: str = "0", key: str = "", saddr: str = "",
              a0: str = "ffffff9c") -> list[str]:
        lines = [self.syscall(stamp, p, SYSCALLS[call], success=success, exit_code=exit_code, a0=a0,
                              a2="80241" if call == "openat" else "0", items=len(paths), key=key)]
        if saddr:
            lines.append(self.rec("SOCKADDR", stamp, f"saddr={saddr}"))
        if paths:
            lines.append(self.rec("CWD", stamp, f"cwd={enc(p.cwd)}"))
            for item, (name, nametype) in enumerate(paths):
                mode = "040755" if nametype == "PARENT" else "0100644"
                lines.append(self.path(stamp, item, name, mode=mode, nametype=nametype))
        lines.extend(self.tail(stamp, p))
        return lines

    def user_record(self, stamp: str, kind: str, pid: str, uid: int, auid: str, ses: str, msg: str) -> list[str]:
        subj = self.subj if auid == UNSET else self.user_subj
        return [self.rec(kind, stamp, f"pid={pid} uid={uid} auid={auid} ses={ses} subj={subj} msg='{msg}'")]


# --------------------------------------------------------------------------------------------------------
# Templates: benign events pre-rendered as %-format strings


@dataclass
class Template:
    text: str  # %-format string: %(s0)s.. stamps, %(p)s a fresh pid
    lines: int
    events: int
    fresh: bool
    tag: str = ""  # decoy kind ("" for ordinary benign events)
    weight: float = 1.0
    first_lines: tuple[int, ...] = (0,)  # offset of each event's first record within the unit


def make_template(events: Sequence[list[str]], weight: float, tag: str = "") -> Template:
    lines: list[str] = []
    firsts = []
    for ev in events:
        firsts.append(len(lines))
        lines.extend(ev)
    text = "\n".join(lines).replace("%", "%%") + "\n"
    fresh = PID in text
    text = text.replace(PID, "%(p)s")
    for i in range(len(events)):
        text = text.replace(S(i), f"%(s{i})s")
    return Template(text, len(lines), len(events), fresh, tag, weight, tuple(firsts))


def benign_templates(h: Host) -> list[Template]:
    """The benign catalogue of one host (weights are relative; decoys carry a tag)."""
    rng = h.rng
    T: list[Template] = []
    s0, s1, s2 = S(0), S(1), S(2)

    def add(weight: float, *events: list[str], tag: str = "") -> None:
        T.append(make_template(events, weight, tag))

    def dpid() -> str:
        return h.daemon_pid()

    user = h.user
    uid = 1000
    ses_a, ses_b = str(rng.randrange(1, 400)), str(rng.randrange(400, 900))
    home = f"/home/{user}"
    bin_ = "/usr/bin"
    systemd = Proc("/usr/lib/systemd/systemd", "systemd", "1", "0", argv=("/sbin/init",))
    journald = Proc("/usr/lib/systemd/systemd-journald", "systemd-journal", dpid(), "1",
                    argv=("/lib/systemd/systemd-journald",))
    resolved = Proc("/usr/lib/systemd/systemd-resolved", "systemd-resolve", dpid(), "1", uid=101, gid=103,
                    argv=("/lib/systemd/systemd-resolved",))
    logind = Proc("/usr/lib/systemd/systemd-logind", "systemd-logind", dpid(), "1",
                  argv=("/lib/systemd/systemd-logind",))
    cron = Proc("/usr/sbin/cron", "cron", dpid(), "1", argv=("/usr/sbin/cron", "-f", "-P"))
    sshd = Proc("/usr/sbin/sshd", "sshd", dpid(), "1",
                argv=("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",))
    rsyslog = Proc("/usr/sbin/rsyslogd", "rsyslogd", dpid(), "1", uid=104, gid=110,
                   argv=("/usr/sbin/rsyslogd", "-n", "-iNONE"))
    chronyd = Proc("/usr/sbin/chronyd", "chronyd", dpid(), "1", uid=115, gid=121,
                   argv=("/usr/sbin/chronyd", "-F", "1"))
    containerd = Proc(f"{bin_}/containerd", "containerd", dpid(), "1", argv=(f"{bin_}/containerd",))
    dockerd = Proc("/usr/bin/dockerd", "dockerd", dpid(), "1",
                   argv=("/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"))
    nginx = Proc("/usr/sbin/nginx", "nginx", dpid(), dpid(), uid=33, gid=33,
                 argv=("nginx: worker process",))
    gunicorn = Proc(h.python, "gunicorn", dpid(), dpid(), uid=1001, gid=1001, cwd="/srv/app",
                    argv=(h.python, "/srv/app/venv/bin/gunicorn", "app.wsgi:application", "--bind",
                          "127.0.0.1:8000", "--workers", "4"))
    php_fpm = Proc("/usr/sbin/php-fpm8.1", "php-fpm8.1", dpid(), dpid(), uid=33, gid=33, cwd="/var/www",
                   argv=("php-fpm: pool www",))
    postgres = Proc("/usr/lib/postgresql/14/bin/postgres", "postgres", dpid(), dpid(), uid=114, gid=120,
                    cwd="/var/lib/postgresql/14/main", argv=("postgres: 14/main: checkpointer",))
    java = Proc("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java", dpid(), "1", uid=1002, gid=1002,
                cwd="/opt/tomcat", argv=("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-Xmx2g", "-jar",
                                         "/opt/tomcat/bin/bootstrap.jar", "start"))
    node = Proc("/usr/bin/node", "node", dpid(), dpid(), uid=1001, gid=1001, cwd="/srv/web",
                argv=("node", "/srv/web/dist/server.js"))
    snapd = Proc("/usr/lib/snapd/snapd", "snapd", dpid(), "1", argv=("/usr/lib/snapd/snapd",))
    bash_a = Proc(f"{bin_}/bash", "bash", dpid(), dpid(), uid=uid, gid=uid, auid=str(uid), ses=ses_a, tty="pts0",
                  argv=("-bash",), cwd=home)
    bash_b = Proc(f"{bin_}/bash", "bash", dpid(), dpid(), uid=0, gid=0, auid=str(uid), ses=ses_b, tty="pts1",
                  argv=("-bash",), cwd="/root")

    def child(parent: Proc, exe: str, argv: Sequence[str], comm: str = "", cwd: str = "") -> Proc:
        return Proc(exe, comm or exe.rsplit("/", 1)[-1], PID, parent.pid, parent.uid, parent.gid, parent.auid,
                    parent.ses, parent.tty, tuple(argv), cwd or parent.cwd)

    # cron children: root's cron session
    cron_ses = str(rng.randrange(900, 5000))
    cron_job = Proc("/usr/bin/dash", "sh", PID, cron.pid, 0, 0, "0", cron_ses, "(none)", (), "/root")

    # ---------------------------------------------------------------- execve of ordinary programs
    interactive = [
        (bash_a, f"{bin_}/ls", ["ls", "--color=auto", "-la"]),
        (bash_a, f"{bin_}/ls", ["ls", "--color=auto"]),
        (bash_a, f"{bin_}/cat", ["cat", "/etc/os-release"]),
        (bash_a, f"{bin_}/grep", ["grep", "--color=auto", "-i", "error", "/var/log/syslog"]),
        (bash_a, f"{bin_}/grep", ["grep", "--color=auto", "-rn", "TODO", "src/"]),
        (bash_a, f"{bin_}/ps", ["ps", "aux"]),
        (bash_a, f"{bin_}/git", ["git", "status"]),
        (bash_a, f"{bin_}/git", ["git", "pull", "--rebase"]),
        (bash_a, f"{bin_}/vim.basic", ["vim", "config.yaml"]),
        (bash_a, f"{bin_}/tail", ["tail", "-n", "200", "-f", "/var/log/nginx/access.log"]),
        (bash_a, f"{bin_}/awk", ["awk", "{print $1}", "/var/log/nginx/access.log"]),
        (bash_a, f"{bin_}/sort", ["sort", "-n"]),
        (bash_a, f"{bin_}/df", ["df", "-h"]),
        (bash_a, f"{bin_}/du", ["du", "-sh", "/var/lib/docker"]),
        (bash_a, f"{bin_}/curl", ["curl", "-s", "https://api.github.com/repos/torvalds/linux"]),
        (bash_a, f"{bin_}/curl", ["curl", "-fsSL", "-o", "/tmp/get-docker.sh", "https://get.docker.com"]),
        (bash_a, f"{bin_}/curl", ["curl", "-s", "-H", "Accept: application/json", "http://localhost:8000/health"]),
        (bash_a, f"{bin_}/wget", ["wget", "-q", "https://releases.hashicorp.com/terraform/1.8.3/terraform_1.8.3_linux_amd64.zip"]),
        (bash_a, f"{bin_}/ssh", ["ssh", "deploy@10.0.3.17"]),
        (bash_a, f"{bin_}/sudo", ["sudo", "systemctl", "restart", "nginx"]),
        (bash_a, f"{bin_}/python3.10" if not h.rhel else h.python, ["python3", "manage.py", "migrate"]),
        (bash_a, h.python, ["python3", "-m", "pip", "install", "--user", "requests==2.31.0"]),
        (bash_a, f"{bin_}/docker", ["docker", "ps", "--format", "{{.Names}} {{.Status}}"]),
        (bash_a, f"{bin_}/kubectl", ["kubectl", "get", "pods", "-n", "prod"]),
        (bash_a, f"{bin_}/journalctl", ["journalctl", "-u", "nginx", "--since", "1 hour ago"]),
        (bash_a, f"{bin_}/find", ["find", "/var/log", "-name", "*.gz", "-mtime", "+7"]),
        (bash_b, f"{bin_}/systemctl", ["systemctl", "status", "nginx"]),
        (bash_b, f"{bin_}/apt-get" if not h.rhel else f"{bin_}/dnf", ["apt-get", "update"]),
        (bash_b, f"{bin_}/tar", ["tar", "czf", "/backup/etc.tgz", "/etc"]),
        (bash_b, "/usr/sbin/ip", ["ip", "-br", "addr"]),
        (bash_b, f"{bin_}/ss", ["ss", "-tlpn"]),
        (bash_b, f"{bin_}/top", ["top", "-b", "-n", "1"]),
    ]
    for parent, exe, argv in interactive:
        p = child(parent, exe, argv, comm=exe.rsplit("/", 1)[-1] if not exe.startswith(h.python) else "python3")
        add(1.0, h.execve(s0, p))
    cron_jobs = [
        ["/bin/sh", "-c", "   cd / && run-parts --report /etc/cron.hourly"],
        ["/bin/sh", "-c", "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )"],
        ["/bin/sh", "-c", "/usr/local/bin/backup.sh >> /var/log/backup.log 2>&1"],
        ["/bin/sh", "-c", "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then "
                          "/usr/lib/php/sessionclean; fi"],
    ]
    for argv in cron_jobs:
        add(1.5, h.execve(s0, cron_job, argv))
    script_execs = [
        (cron_job, h.python, ["/usr/bin/python3", "/usr/local/bin/rotate_logs.py", "--days", "14"],
         "/usr/local/bin/rotate_logs.py", "rotate_logs.py"),
        (bash_a, "/usr/bin/bash", ["/bin/bash", "./deploy.sh", "staging"], f"{home}/deploy.sh", "deploy.sh"),
        (cron_job, "/usr/bin/dash", ["/bin/sh", "/usr/sbin/logrotate-wrapper"], "/usr/sbin/logrotate-wrapper",
         "logrotate-wrap"),
    ]
    for parent, exe, argv, script, comm in script_execs:
        p = child(parent, exe, argv, comm=comm)
        add(0.8, h.execve(s0, p, script=script))
    # exec followed by its first file accesses (the same fresh pid)
    for parent, exe, argv, opened in [
        (cron_job, "/usr/sbin/logrotate", ["/usr/sbin/logrotate", "/etc/logrotate.conf"], "/var/lib/logrotate/status"),
        (bash_a, f"{bin_}/sudo", ["sudo", "-i"], "/etc/sudoers"),
        (cron_job, "/usr/bin/run-parts", ["run-parts", "--report", "/etc/cron.hourly"], "/etc/cron.hourly"),
    ]:
        p = child(parent, exe, argv)
        add(1.2, h.execve(s0, p), h.other(s1, p, "openat", paths=[(opened, "NORMAL")], key="access"),
            h.other(s2, p, "openat", paths=[("/etc/nsswitch.conf", "NORMAL")], key="access"))

    # ---------------------------------------------------------------- other syscalls
    wo = 1.6  # the share of other syscalls (~45% of events)
    opens = [
        (journald, "/var/log/journal/3f2a9c/system.journal", "NORMAL", True),
        (rsyslog, "/var/log/syslog", "NORMAL", True),
        (rsyslog, "/var/log/auth.log", "NORMAL", True),
        (sshd, "/etc/ssh/sshd_config", "NORMAL", True),
        (sshd, "/etc/passwd", "NORMAL", True),
        (logind, "/run/systemd/sessions/.#" + ses_a, "CREATE", True),
        (nginx, "/var/log/nginx/access.log", "NORMAL", True),
        (postgres, "/var/lib/postgresql/14/main/pg_wal/000000010000000A00000042", "NORMAL", True),
        (java, "/opt/tomcat/logs/catalina.out", "NORMAL", True),
        (gunicorn, "/srv/app/media/uploads/report.pdf", "NORMAL", True),
        (containerd, "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db", "NORMAL", True),
        (dockerd, "/var/lib/docker/containers/9b1f/config.v2.json", "NORMAL", True),
        (snapd, "/var/lib/snapd/state.json", "NORMAL", True),
        (cron, "/etc/crontab", "NORMAL", True),
        (child(bash_a, f"{bin_}/cat", ["cat", "/etc/shadow"]), "/etc/shadow", "NORMAL", False),
        (child(bash_a, f"{bin_}/less", ["less", "/var/log/auth.log"]), "/var/log/auth.log", "NORMAL", False),
        (child(bash_b, f"{bin_}/vim.basic", ["vim", "/etc/hosts"]), "/etc/hosts", "NORMAL", True),
    ]
    for p, name, nametype, ok in opens:
        add(wo * (3.0 if ok else 1.0), h.other(s0, p, "openat", paths=[(name, nametype)], success=ok,
                                        exit_code="3" if ok else "-13", key="access"))
    for p, name in [(rsyslog, "/var/log/syslog.1"), (child(cron_job, f"{bin_}/rm", ["rm", "-f", "/tmp/backup.lock"]),
                                                    "/tmp/backup.lock"),
                    (java, "/opt/tomcat/temp/upload_1f3.tmp"), (dockerd, "/var/lib/docker/tmp/docker-import-1")]:
        parent_dir = name.rsplit("/", 1)[0]
        add(wo * 1.5, h.other(s0, p, "unlinkat", paths=[(parent_dir, "PARENT"), (name, "DELETE")], key="delete"))
    for p, name in [(child(bash_b, f"{bin_}/chmod", ["chmod", "600", "/root/.ssh/authorized_keys"]),
                     "/root/.ssh/authorized_keys"),
                    (child(cron_job, f"{bin_}/chown", ["chown", "www-data:", "/var/www/html/index.php"]),
                     "/var/www/html/index.php")]:
        add(wo * 1.0, h.other(s0, p, "fchmodat", paths=[(name, "NORMAL")], key="perm_mod"))
    add(wo * 1.0, h.other(s0, rsyslog, "renameat2",
                     paths=[("/var/log", "PARENT"), ("/var/log", "PARENT"), ("/var/log/syslog", "DELETE"),
                            ("/var/log/syslog.1", "CREATE")], key="delete"))
    add(wo * 2.0, h.other(s0, chronyd, "adjtimex", a0="7ffd4b5c5c40", key="time-change"))
    add(wo * 0.6, h.other(s0, bash_b, "kill", a0="1f4a", key="kill_signals"))
    add(wo * 0.3, h.other(s0, containerd, "mount", a0="c000a3e6c0", key="mounts",
                     paths=[("/run/containerd/io.containerd.runtime.v2.task/k8s.io/9b1f/rootfs", "NORMAL")]))
    add(wo * 1.2, h.other(s0, nginx, "accept4", a0="6", saddr=inet_saddr("203.0.113.77", 51234), key="network_in"))
    add(wo * 0.8, h.other(s0, sshd, "accept4", a0="3", saddr=inet_saddr("198.51.100.23", 60211), key="network_in"))
    add(wo * 0.5, h.other(s0, gunicorn, "bind", a0="5", saddr=inet_saddr("127.0.0.1", 8000), key="network_bind"))
    add(wo * 0.4, h.other(s0, node, "bind", a0="18", saddr=inet_saddr("::", 3000), key="network_bind"))
    add(wo * 1.0, h.other(s0, resolved, "sendto", a0="c", saddr=inet_saddr("1.1.1.1", 53), key="network_out"))
    add(wo * 0.4, h.other(s0, child(bash_b, "/usr/sbin/useradd", ["useradd", "-m", "svc-report"]), "openat",
                     paths=[("/etc/passwd", "NORMAL")], key="identity"))

    # ---------------------------------------------------------------- connect() to unix sockets
    nscd = "/var/run/nscd/socket"
    unix_clients = [
        (child(bash_a, f"{bin_}/ls", ["ls", "-l"]), nscd, True, False, "-2"),
        (child(bash_a, f"{bin_}/id", ["id"]), nscd, True, False, "-2"),
        (child(cron_job, f"{bin_}/run-parts", ["run-parts", "--report", "/etc/cron.hourly"]), nscd, True, False, "-2"),
        (sshd, nscd, True, False, "-2"),
        (child(bash_b, f"{bin_}/systemctl", ["systemctl", "status", "nginx"]), "/run/systemd/private", False, True,
         "0"),
        (child(bash_a, f"{bin_}/busctl", ["busctl", "list"]), "/run/dbus/system_bus_socket", False, True, "0"),
        (logind, "/run/dbus/system_bus_socket", False, True, "0"),
        (nginx, "/run/php/php8.1-fpm.sock", False, True, "0"),
        (gunicorn, "/var/run/postgresql/.s.PGSQL.5432", False, True, "0"),
        (child(bash_a, f"{bin_}/docker", ["docker", "ps"]), "/var/run/docker.sock", False, True, "0"),
        (dockerd, "/run/containerd/containerd.sock", False, True, "0"),
        (child(cron_job, f"{bin_}/logger", ["logger", "-t", "backup", "done"]), "/dev/log", False, True, "0"),
        (systemd, "/run/systemd/journal/stdout", False, True, "0"),
        (snapd, "/run/snapd.socket", False, True, "0"),
    ]
    for p, path, padded, ok, code in unix_clients:
        add(4.0 if path == nscd else 2.0,
            h.connect(s0, p, unix_saddr(path, padded), success=ok, exit_code=code, unix_path=path))
    add(2.0, h.connect(s0, child(bash_a, f"{bin_}/gdbus", ["gdbus", "monitor"]), unix_saddr("@/tmp/dbus-8Xq2LmYzQ3"),
                       success=True, exit_code="0"))

    # ---------------------------------------------------------------- connects to ordinary addresses
    curl_p = child(bash_a, f"{bin_}/curl", ["curl", "-s", "https://api.github.com/repos/torvalds/linux"])
    apt_http = child(bash_b, "/usr/lib/apt/methods/http", ["/usr/lib/apt/methods/http"], comm="http")
    pip_p = child(bash_a, h.python, ["python3", "-m", "pip", "install", "--user", "requests==2.31.0"], comm="python3")
    git_p = child(bash_a, "/usr/lib/git-core/git-remote-https", ["git-remote-https", "origin",
                                                                 "https://github.com/acme/app.git"],
                  comm="git-remote-http")
    inet = [
        (curl_p, "127.0.0.53", 53, True, 4.0),
        (pip_p, "127.0.0.53", 53, True, 2.0),
        (git_p, "127.0.0.53", 53, True, 1.0),
        (curl_p, "140.82.112.6", 443, False, 2.0),
        (curl_p, "2606:50c0:8000::154", 443, False, 0.8),
        (pip_p, "151.101.0.223", 443, False, 1.0),
        (git_p, "140.82.114.3", 443, False, 1.0),
        (apt_http, "91.189.91.82", 80, False, 0.8),
        (apt_http, "2620:2d:4000:1::19", 80, False, 0.5),
        (gunicorn, "127.0.0.1", 5432, False, 2.0),
        (gunicorn, "127.0.0.1", 6379, False, 1.5),
        (java, "10.0.12.40", 3306, False, 1.5),
        (node, "10.0.12.41", 9200, False, 1.0),
        (nginx, "127.0.0.1", 8000, False, 2.0),
        (resolved, "1.1.1.1", 53, True, 1.0),
        (resolved, "2606:4700:4700::1111", 53, True, 0.6),
        (chronyd, "185.125.190.57", 123, True, 0.6),
        (snapd, "185.125.188.59", 443, False, 0.5),
        (containerd, "104.18.123.25", 443, False, 0.4),
        (child(bash_a, f"{bin_}/ssh", ["ssh", "deploy@10.0.3.17"]), "10.0.3.17", 22, False, 0.6),
    ]
    for p, ip, port, udp, weight in inet:
        add(weight, h.inet_connect(s0, p, ip, port, udp=udp))

    # ---------------------------------------------------------------- PAM, logins, systemd units
    cron_msgs = [
        ("USER_ACCT", 'op=PAM:accounting grantors=pam_permit acct="root" exe="/usr/sbin/cron" hostname=? '
                      "addr=? terminal=cron res=success", UNSET, UNSET),
        ("CRED_ACQ", 'op=PAM:setcred grantors=pam_permit,pam_cap acct="root" exe="/usr/sbin/cron" hostname=? '
                     "addr=? terminal=cron res=success", UNSET, UNSET),
        ("LOGIN", None, "0", cron_ses),
        ("USER_START", 'op=PAM:session_open grantors=pam_loginuid,pam_env,pam_env,pam_permit,pam_unix,'
                       'pam_limits acct="root" exe="/usr/sbin/cron" hostname=? addr=? terminal=cron res=success',
         "0", cron_ses),
    ]
    cron_events = []
    for i, (kind, msg, auid, ses) in enumerate(cron_msgs):
        if msg is None:
            cron_events.append([h.rec("LOGIN", S(i), f"pid={PID} uid=0 subj={h.subj} old-auid={UNSET} auid=0 "
                                                     f"tty=(none) old-ses={UNSET} ses={cron_ses} res=1")])
        else:
            cron_events.append(h.user_record(S(i), kind, PID, 0, auid, ses, msg))
    add(2.0, *cron_events)
    end_msgs = [
        ("CRED_DISP", 'op=PAM:setcred grantors=pam_permit,pam_cap acct="root" exe="/usr/sbin/cron" hostname=? '
                      "addr=? terminal=cron res=success"),
        ("USER_END", 'op=PAM:session_close grantors=pam_loginuid,pam_env,pam_env,pam_permit,pam_unix,'
                     'pam_limits acct="root" exe="/usr/sbin/cron" hostname=? addr=? terminal=cron res=success'),
    ]
    add(2.0, *[h.user_record(S(i), kind, PID, 0, "0", cron_ses, msg) for i, (kind, msg) in enumerate(end_msgs)])
    for unit in ("apt-daily", "fwupd-refresh", "systemd-tmpfiles-clean", "motd-news", "man-db", "logrotate",
                 "sysstat-collect", "certbot", "snapd.refresh", "phpsessionclean"):
        for kind in ("SERVICE_START", "SERVICE_STOP"):
            add(0.3, h.user_record(s0, kind, "1", 0, UNSET, UNSET,
                                   f'unit={unit} comm="systemd" exe="/usr/lib/systemd/systemd" hostname=? '
                                   "addr=? terminal=? res=success"))
    ssh_ip = "198.51.100.23"
    add(0.5, h.user_record(s0, "USER_AUTH", PID, 0, UNSET, UNSET,
                           f'op=pubkey_auth grantors=? acct="{user}" exe="/usr/sbin/sshd" hostname=? '
                           f"addr={ssh_ip} terminal=ssh res=success"),
        h.user_record(s1, "USER_ACCT", PID, 0, UNSET, UNSET,
                      f'op=PAM:accounting grantors=pam_permit acct="{user}" exe="/usr/sbin/sshd" '
                      f"hostname={ssh_ip} addr={ssh_ip} terminal=ssh res=success"),
        h.user_record(s2, "CRYPTO_KEY_USER", PID, 0, UNSET, UNSET,
                      f"op=destroy kind=session fp=? direction=both spid={PID} suid=0 rport=60211 "
                      f'laddr={h.ip} lport=22  exe="/usr/sbin/sshd" hostname=? addr={ssh_ip} terminal=? '
                      "res=success"))
    add(0.8, h.user_record(s0, "USER_CMD", PID, uid, str(uid), ses_a,
                           f'cwd="{home}" cmd={b"systemctl restart nginx".hex().upper()} '
                           "exe=\"/usr/bin/sudo\" terminal=pts/0 res=success"))
    add(0.5, h.user_record(s0, "USER_ERR", PID, 0, UNSET, UNSET,
                           'op=PAM:bad_ident grantors=? acct="?" exe="/usr/sbin/sshd" hostname=203.0.113.9 '
                           "addr=203.0.113.9 terminal=ssh res=failed"))
    add(0.3, [h.rec("BPF", s0, "prog-id=84 op=LOAD")])
    add(0.2, [h.rec("NETFILTER_CFG", s0, "table=filter:2 family=2 entries=0 op=xt_replace pid=1123 "
                                         f"subj={h.subj} comm=\"iptables\"")])

    # ---------------------------------------------------------------- decoys: benign events touching metadata
    decoys(h, T, child, resolved, chronyd, bash_a, bash_b)
    h.parents = [bash_a, bash_a, bash_b, gunicorn, java, node]
    h.php_worker = php_fpm
    return T


def decoys(h: Host, T: list[Template], child: Callable[..., Proc], resolved: Proc, chronyd: Proc,
           bash_a: Proc, bash_b: Proc) -> None:
    s0 = S(0)

    def add(weight: float, tag: str, *events: list[str]) -> None:
        T.append(make_template(events, weight * DECOY_WEIGHT, tag))

    clouds = h.clouds
    py = h.python
    if "gcp" in clouds:
        agent = Proc("/usr/bin/google_guest_agent", "google_guest_agent", h.daemon_pid(), "1",
                     argv=("/usr/bin/google_guest_agent",))
        add(1.6, "gcp-guest-agent", h.inet_connect(s0, agent, IMDS, 80))
        osconfig = Proc("/usr/bin/google_osconfig_agent", "google_osconfig_agent", h.daemon_pid(), "1",
                        argv=("/usr/bin/google_osconfig_agent",))
        add(0.6, "gcp-osconfig", h.inet_connect(s0, osconfig, IMDS, 80))
        add(1.2, "gcp-dns", h.inet_connect(s0, resolved, IMDS, 53, udp=True))
        add(0.4, "gcp-dns-sendto", h.other(s0, resolved, "sendto", a0="c", saddr=inet_saddr(IMDS, 53),
                                           key="network_out"))
        legacy = Proc(f"/usr/bin/python2.7;{h.rng.getrandbits(32):08x} (deleted)", "google_accounts",
                      h.daemon_pid(), "1", argv=("/usr/bin/python", "/usr/bin/google_accounts_daemon"))
        add(0.2, "gcp-legacy-daemon", h.inet_connect(s0, legacy, IMDS, 80))
    if "aws" in clouds:
        ssm = Proc("/usr/bin/amazon-ssm-agent", "amazon-ssm-agent", h.daemon_pid(), "1",
                   argv=("/usr/bin/amazon-ssm-agent",))
        add(0.8, "aws-ssm-agent", h.inet_connect(s0, ssm, IMDS, 80))
        rev = str(7000 + h.rng.randrange(0, 1000))
        snap = Proc(f"/snap/amazon-ssm-agent/{rev}/amazon-ssm-agent", "amazon-ssm-agent", h.daemon_pid(), "1",
                    argv=(f"/snap/amazon-ssm-agent/{rev}/amazon-ssm-agent",))
        add(0.8, "aws-ssm-agent-snap", h.inet_connect(s0, snap, IMDS, 80))
        worker = Proc(f"/snap/amazon-ssm-agent/{rev}/ssm-agent-worker", "ssm-agent-worker", h.daemon_pid(),
                      snap.pid, argv=(f"/snap/amazon-ssm-agent/{rev}/ssm-agent-worker",))
        add(0.6, "aws-ssm-agent-worker", h.inet_connect(s0, worker, IMDS, 80))
        add(0.3, "", h.inet_connect(s0, ssm, "52.46.145.233", 443))  # the agent's ordinary traffic
        add(0.8, "aws-dns", h.inet_connect(s0, resolved, "169.254.169.253", 53, udp=True))
        add(0.6, "aws-ntp", h.inet_connect(s0, chronyd, "169.254.169.123", 123, udp=True))
    if "aws" in clouds or "gcp" in clouds or "azure" in clouds:
        ci_argv = ("/usr/bin/python3", "/usr/bin/cloud-init", "modules", "--mode", "final")
        cloud_init = Proc(py, "cloud-init", h.daemon_pid(), "1", argv=ci_argv)
        add(0.15, "cloud-init-exec", h.execve(s0, cloud_init, script="/usr/bin/cloud-init"))  # a #! script
        add(0.5, "cloud-init", h.inet_connect(s0, cloud_init, IMDS, 80))
    if "azure" in clouds:
        wa_argv = ("python3", "-u", "/usr/sbin/waagent", "-run-exthandlers")
        daemon = Proc(py, "python3", h.daemon_pid(), "1", argv=("/usr/bin/python3", "-u", "/usr/sbin/waagent",
                                                                  "-daemon"))
        waagent = Proc(py, "python3", h.daemon_pid(), daemon.pid, argv=wa_argv)
        add(0.15, "azure-waagent-exec", h.execve(s0, waagent))
        add(0.8, "azure-waagent", h.inet_connect(s0, waagent, IMDS, 80))
        add(0.8, "azure-wireserver", h.inet_connect(s0, waagent, "168.63.129.16", 80))
        add(0.3, "azure-wireserver", h.inet_connect(s0, waagent, "168.63.129.16", 32526))
        add(0.6, "azure-dns", h.inet_connect(s0, resolved, "168.63.129.16", 53, udp=True))
    # command lines that only mention the address
    grep = child(bash_a, "/usr/bin/grep", ["grep", "--color=auto", "-rn", IMDS, "/etc/"])
    add(0.1, "mention-grep", h.execve(s0, grep))
    ipt = child(bash_b, "/usr/sbin/xtables-nft-multi",
                ["iptables", "-w", "-A", "OUTPUT", "-d", f"{IMDS}/32", "-m", "owner", "!", "--uid-owner", "0",
                 "-j", "DROP"], comm="iptables")
    add(0.05, "mention-iptables", h.execve(s0, ipt))
    route = child(bash_b, "/usr/sbin/ip", ["ip", "route", "get", IMDS])
    add(0.05, "mention-ip-route", h.execve(s0, route))


class Pool:
    """Weighted templates expanded for O(1) drawing."""

    def __init__(self, templates: Sequence[Template], resolution: int = 8000) -> None:
        total = sum(t.weight for t in templates)
        items: list[Template] = []
        for t in templates:
            items.extend([t] * max(1, round(t.weight / total * resolution)))
        self.items = items
        self.n = len(items)


# --------------------------------------------------------------------------------------------------------
# Planted metadata accesses


ROLES = ("web-app-role", "ec2-prod-role", "eks-node-role", "ci-runner", "backup-s3-writer", "AmazonSSMRoleForInstances")
CREDS = "/latest/meta-data/iam/security-credentials/"


@dataclass
class PlantedEvent:
    lines: list[str]  # concrete except for the sentinels: stamps S(i) (one per event), pids P(k)
    meta: dict[str, Any] | None  # None: an ordinary (unlabelled) event of the scenario, e.g. its DNS query


class Planter:
    """Builds planted scenarios: lists of events, labelled with the rules that must fire.

    Processes of a scenario carry pid sentinels P(0), P(1)... (fresh pids, assigned when written) and stamp
    sentinels S(0), S(1)... (one per event, in order)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        kinds: list[tuple[Callable[[Host, Proc], list[PlantedEvent]], float]] = [
            (self.curl_creds, 3),
            (self.curl_imdsv2, 2),
            (self.wget_userdata, 2),
            (self.python_urllib, 2),
            (self.python_long_script, 0.5),
            (self.curl_long_headers, 1.5),
            (self.bash_dev_tcp, 1.5),
            (self.netcat, 1),
            (self.curl_encoded, 4),
            (self.gcp_name, 2),
            (self.nip_io, 1),
            (self.python_tmp_connect, 1.5),
            (self.devshm_connect, 1),
            (self.renamed_cloud_init, 1),
            (self.ipv6_imds, 1.5),
            (self.ecs_creds, 1),
            (self.azure_token, 1.5),
            (self.other_providers, 1.5),
            (self.webshell_chain, 1.5),
        ]
        total = sum(w for _, w in kinds)
        self.cumulative: list[tuple[float, Callable[[Host, Proc], list[PlantedEvent]]]] = []
        acc = 0.0
        for fn, w in kinds:
            acc += w / total
            self.cumulative.append((acc, fn))

    def pick(self) -> Callable[[Host, Proc], list[PlantedEvent]]:
        r = self.rng.random()
        for acc, fn in self.cumulative:
            if r < acc:
                return fn
        return self.cumulative[-1][1]

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _proc(parent: Proc, exe: str, argv: Sequence[str], comm: str = "", pid: int = 0) -> Proc:
        return Proc(exe, comm or exe.rsplit("/", 1)[-1], P(pid), parent.pid, parent.uid, parent.gid, parent.auid,
                    parent.ses, parent.tty, tuple(argv), parent.cwd)

    def _fetch(self, h: Host, parent: Proc, exe: str, argv: list[str], template: str, host: str, ip: str,
               port: int = 80, *, name_lookup: bool = False, comm: str = "", pid: int = 0,
               first: int = 0) -> list[PlantedEvent]:
        """An execve of a fetching tool and its connect (after a DNS query when the host is a name);
        stamps from S(first)."""
        p = self._proc(parent, exe, argv, comm, pid)
        events = [PlantedEvent(h.execve(S(first), p), {"kind": "execve", "rules": ["imds-command-line"],
                                                         "template": template, "host": host})]
        if name_lookup:
            events.append(PlantedEvent(h.inet_connect(S(first + 1), p, "127.0.0.53", 53, udp=True), None))
        events.append(PlantedEvent(h.inet_connect(S(first + len(events)), p, ip, port),
                                   {"kind": "connect", "rules": ["imds-network-connection"],
                                    "template": template, "host": host}))
        return events

    def _connect_only(self, h: Host, p: Proc, template: str, rules: Sequence[str] = ("imds-network-connection",),
                      ip: str = IMDS) -> list[PlantedEvent]:
        return [PlantedEvent(h.inet_connect(S(0), p, ip, 80),
                             {"kind": "connect", "rules": list(rules), "template": template, "host": ip})]

    def _role(self) -> str:
        return self.rng.choice(ROLES)

    # -- scenarios ----------------------------------------------------------------------------------
    def curl_creds(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        url = f"http://{IMDS}{CREDS}{self._role()}"
        argv = self.rng.choice([["curl", "-s", url], ["curl", url], ["curl", "-sf", "--max-time", "2", url]])
        return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-credentials", IMDS, IMDS)

    def curl_imdsv2(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        put = ["curl", "-s", "-X", "PUT", f"http://{IMDS}/latest/api/token", "-H",
               "X-aws-ec2-metadata-token-ttl-seconds: 21600"]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        token = "AQAEA" + "".join(self.rng.choice(alphabet) for _ in range(51)) + "=="
        get = ["curl", "-s", "-H", f"X-aws-ec2-metadata-token: {token}", f"http://{IMDS}{CREDS}{self._role()}"]
        first = self._fetch(h, parent, "/usr/bin/curl", put, "curl-imdsv2-token", IMDS, IMDS)
        return first + self._fetch(h, parent, "/usr/bin/curl", get, "curl-imdsv2-credentials", IMDS, IMDS,
                                   pid=1, first=len(first))

    def wget_userdata(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        argv = self.rng.choice([["wget", "-q", "-O", "-", f"http://{IMDS}/latest/user-data"],
                                ["wget", "-qO-", f"http://{IMDS}/latest/user-data/"]])
        return self._fetch(h, parent, "/usr/bin/wget", argv, "wget-user-data", IMDS, IMDS)

    def python_urllib(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        url = f"http://{IMDS}{CREDS}{self._role()}"
        code = f"import urllib.request as u; print(u.urlopen('{url}').read().decode())"
        return self._fetch(h, parent, h.python, ["python3", "-c", code], "python-urllib", IMDS, IMDS,
                           comm="python3")

    def python_long_script(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        """``python3 -c`` with a script of 7-8 KB: the kernel splits the argument over EXECVE records
        (``a2_len``, ``a2[0]``, ``a2[1]`` ...), the address near the chunk boundary."""
        url = f"http://{IMDS}{CREDS}{self._role()}"
        pad = "# " + "x" * 60 + "\n"
        lines = self.rng.randrange(100, 125)
        code = f"import urllib.request as u\n{pad * lines}print(u.urlopen('{url}').read().decode())\n"
        return self._fetch(h, parent, h.python, ["python3", "-c", code], "python-long-script", IMDS, IMDS,
                           comm="python3")

    def curl_long_headers(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        """curl with two ~4 KB headers: the command line exceeds one EXECVE record, so the URL is logged in
        a second EXECVE record (``a5=... a6="http://169.254.169.254/..."``)."""
        words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
        rng = self.rng
        cookie = "Cookie:" + ";".join(f"{rng.choice(words)}_{i}={rng.choice(words)}{rng.randrange(10**6)}"
                                      for i in range(200))
        tags = "X-Request-Tags:" + ",".join(rng.choice(words) for _ in range(640))
        argv = ["curl", "-s", "-H", cookie, "-H", tags, f"http://{IMDS}{CREDS}{self._role()}"]
        return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-long-headers", IMDS, IMDS)

    def bash_dev_tcp(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        script = f"exec 3<>/dev/tcp/{IMDS}/80; printf 'GET {CREDS} HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        return self._fetch(h, parent, "/usr/bin/bash", ["bash", "-c", script], "bash-dev-tcp", IMDS, IMDS)

    def netcat(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        return self._fetch(h, parent, "/usr/bin/nc.openbsd", ["nc", IMDS, "80"], "netcat", IMDS, IMDS, comm="nc")

    def curl_encoded(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        spelling = self.rng.choice(["0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "[::ffff:a9fe:a9fe]",
                                    "0xA9.0xFE.0xA9.0xFE", "169.254.43518"])
        path = self.rng.choice([f"{CREDS}{self._role()}", "/latest/user-data", "/latest/meta-data/iam/info"])
        ip = f"::ffff:{IMDS}" if spelling.startswith("[") else IMDS
        return self._fetch(h, parent, "/usr/bin/curl", ["curl", "-s", f"http://{spelling}{path}"],
                           "curl-encoded-host", spelling, ip)

    def gcp_name(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        url = ("http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/"
               + self.rng.choice(["token", "identity?audience=https://example.com"]))
        argv = ["curl", "-s", "-H", "Metadata-Flavor: Google", url]
        return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-gcp-token", "metadata.google.internal", IMDS,
                           name_lookup=True)

    def nip_io(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        argv = ["curl", "-s", f"http://169.254.169.254.nip.io{CREDS}"]
        return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-nip-io", "169.254.169.254.nip.io", IMDS,
                           name_lookup=True)

    def python_tmp_connect(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        if self.rng.random() < 0.5:
            p = self._proc(parent, h.python, ["python3", "/tmp/.cache/update.py"], comm="python3")
            return self._connect_only(h, p, "connect-python-tmp-script")
        p = self._proc(parent, "/tmp/.x/python3", ["/tmp/.x/python3", "-"], comm="python3")
        return self._connect_only(h, p, "connect-python-in-tmp")

    def devshm_connect(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        p = self._proc(parent, "/dev/shm/.k/kworkerd", ["[kworker/0:1]"], comm="kworkerd")
        return self._connect_only(h, p, "connect-dev-shm")

    def renamed_cloud_init(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        """A binary named ``cloud-init`` in /tmp connects (the network alert is raised to high for the name);
        half the time its execve is seen too (the masquerade rule fires on process events)."""
        p = self._proc(parent, "/tmp/cloud-init", ["/tmp/cloud-init", "init"], comm="cloud-init")
        if self.rng.random() < 0.5:
            return self._connect_only(h, p, "connect-renamed-cloud-init")
        return [PlantedEvent(h.execve(S(0), p), {"kind": "execve", "rules": ["imds-agent-masquerade"],
                                                 "template": "renamed-cloud-init", "host": ""}),
                PlantedEvent(h.inet_connect(S(1), p, IMDS, 80),
                             {"kind": "connect", "rules": ["imds-network-connection"],
                              "template": "renamed-cloud-init", "host": IMDS})]

    def ipv6_imds(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        argv = ["curl", "-6", "-s", f"http://[fd00:ec2::254]{CREDS}{self._role()}"]
        return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-ipv6-imds", "fd00:ec2::254", "fd00:ec2::254")

    def ecs_creds(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        argv = ["curl", "-s", f"http://169.254.170.2/v2/credentials/{_uuid(self.rng)}"]
        return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-ecs-credentials", "169.254.170.2",
                           "169.254.170.2")

    def azure_token(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        url = (f"http://{IMDS}/metadata/identity/oauth2/token?api-version=2018-02-01"
               "&resource=https://management.azure.com/")
        return self._fetch(h, parent, "/usr/bin/curl", ["curl", "-s", "-H", "Metadata:true", url],
                           "curl-azure-token", IMDS, IMDS)

    def other_providers(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        """EKS Pod Identity, Alibaba Cloud and Oracle Cloud credential endpoints."""
        which = self.rng.randrange(3)
        if which == 0:
            argv = ["curl", "-s", "-H", "Authorization: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ",
                    "http://169.254.170.23/v1/credentials"]
            return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-eks-pod-identity", "169.254.170.23",
                               "169.254.170.23")
        if which == 1:
            argv = ["curl", "-s", f"http://100.100.100.200/latest/meta-data/ram/security-credentials/{self._role()}"]
            return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-alibaba-ram", "100.100.100.200",
                               "100.100.100.200")
        argv = ["curl", "-s", "-H", "Authorization: Bearer Oracle", f"http://{IMDS}/opc/v2/identity/cert.pem"]
        return self._fetch(h, parent, "/usr/bin/curl", argv, "curl-oracle-identity", IMDS, IMDS)

    def webshell_chain(self, h: Host, parent: Proc) -> list[PlantedEvent]:
        """A PHP worker runs ``sh -c "curl ... | base64 -w0"``: the shell, its curl and the connect."""
        www = h.php_worker
        url = f"http://{IMDS}{CREDS}{self._role()}"
        sh = self._proc(www, "/usr/bin/dash", ["sh", "-c", f"curl -s {url} | base64 -w0"], comm="sh")
        shell = PlantedEvent(h.execve(S(0), sh), {"kind": "execve", "rules": ["imds-command-line"],
                                                  "template": "webshell-sh-curl", "host": IMDS})
        return [shell, *self._fetch(h, sh, "/usr/bin/curl", ["curl", "-s", url], "webshell-curl", IMDS, IMDS,
                                    pid=1, first=1)]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


# --------------------------------------------------------------------------------------------------------
# The writer


@dataclass
class GenResult:
    records: int = 0  # lines
    events: int = 0
    bytes: int = 0
    accesses: int = 0
    planted: list[dict[str, Any]] = field(default_factory=list)
    decoys: dict[str, list[int]] = field(default_factory=dict)
    interleaved: int = 0
    late: int = 0
    lost: int = 0
    seconds: float = 0.0


def make_hosts(rng: random.Random, nodes: int) -> list[Host]:
    if nodes <= 0:
        hosts = [Host(rng, 0, "", ("gcp", "aws", "azure"), rhel=False)]
    else:
        cycle = (("gcp",), ("aws",), ("azure",))
        hosts = [Host(rng, i, f"host{i + 1}", cycle[i % 3], rhel=i % 4 == 3) for i in range(nodes)]
    for h in hosts:
        h.templates = benign_templates(h)
        h.pool = Pool(h.templates).items
    return hosts


def _open_out(out: Path, compress: bool) -> BinaryIO:
    if compress:
        return gzip.open(out, "wb", compresslevel=1)  # type: ignore[return-value]
    return open(out, "wb")


def generate(out: Path, size: int, seed: int = 1, ratio: int = 10_000, nodes: int = 0,
             compress: bool = False) -> GenResult:
    """Write at least `size` bytes of audit records (uncompressed; stopping at the end of a unit of events)
    to `out` and the labels sidecar."""
    started = time.perf_counter()
    rng = random.Random(seed)
    hosts = make_hosts(rng, nodes)
    nh = len(hosts)
    planter = Planter(random.Random(seed * 7919 + 17))
    mal_rng = random.Random(seed * 104729 + 3)

    def next_gap() -> int:
        return 1 + int(mal_rng.random() * (2 * ratio - 1)) if ratio > 1 else 1

    next_mal = next_gap() - 1
    result = GenResult()
    decoy_lines = result.decoys
    rnd = rng.random
    t_ms = START_EPOCH * 1000.0
    last_sec = -1
    sec_text = ""
    events = 0
    line_no = 0  # lines written before the current unit
    chunk: list[str] = []
    chunk_len = 0
    written = 0
    out.parent.mkdir(parents=True, exist_ok=True)

    gap2 = 2 * MEAN_GAP_MS

    def stamps(h: Host, count: int) -> dict[str, str]:
        """Stamps for `count` consecutive events of host `h` (the serial moves on, time moves a little)."""
        nonlocal t_ms, last_sec, sec_text
        d = {}
        for i in range(count):
            t_ms += rnd() * gap2
            ms = int(t_ms)
            sec = ms // 1000
            if sec != last_sec:
                last_sec = sec
                sec_text = str(sec)
            h.serial += 1
            d[f"s{i}"] = f"{sec_text}.{ms % 1000:03d}:{h.serial}"
        return d

    def fresh_pid(h: Host) -> str:
        pid = h.next_pid + 1 + int(rnd() * 3)
        if pid >= PID_MAX:
            pid = FIRST_FRESH_PID
        h.next_pid = pid
        return str(pid)

    def benign(h: Host) -> tuple[Template, str]:
        tmpl = h.pool[int(rnd() * len(h.pool))]
        d = stamps(h, tmpl.events)
        if tmpl.fresh:
            d["p"] = fresh_pid(h)
        return tmpl, tmpl.text % d

    def note_decoy(tag: str, line: int) -> None:
        lst = decoy_lines.get(tag)
        if lst is None:
            lst = decoy_lines[tag] = []
        lst.append(line)

    with _open_out(out, compress) as fh:
        while written + chunk_len < size:
            h = hosts[int(rnd() * nh)] if nh > 1 else hosts[0]
            if rnd() < P_SERIAL_GAP:
                h.serial += 1 + int(rnd() * 3)
            if events >= next_mal:
                # A planted access: its events (labelled), sometimes with a benign event interleaved.
                parent = h.parents[int(rnd() * len(h.parents))]
                scenario = planter.pick()(h, parent)
                d = stamps(h, len(scenario))
                for k in range(4):
                    d[f"p{k}"] = fresh_pid(h)
                lines: list[str] = []
                firsts = []
                for e in scenario:
                    text = "\n".join(e.lines)
                    for key, value in d.items():
                        text = text.replace(f"\x01{key}\x02", value)
                    firsts.append(len(lines))
                    lines.extend(text.split("\n"))
                events += len(scenario)
                result.accesses += 1
                if rnd() < 0.3:
                    tmpl, btext = benign(h)
                    events += tmpl.events
                    last = firsts[-1]
                    merged, first_b = _alternate(lines[last:], btext.split("\n")[:-1], tmpl.events)
                    lines[last:] = merged
                    if tmpl.tag:
                        note_decoy(tmpl.tag, line_no + 1 + last + first_b)
                    result.interleaved += 1
                for e, first in zip(scenario, firsts, strict=True):
                    if e.meta is not None:
                        result.planted.append({"line": line_no + 1 + first, **e.meta, "access": result.accesses,
                                               "node": h.node})
                unit = "\n".join(lines) + "\n"
                nlines = len(lines)
                next_mal += next_gap()
            else:
                # benign(h), inlined for a single event (the hot path: most units)
                pool = h.pool
                tmpl = pool[int(rnd() * len(pool))]
                if tmpl.events == 1:
                    t_ms += rnd() * gap2
                    ms = int(t_ms)
                    sec = ms // 1000
                    if sec != last_sec:
                        last_sec = sec
                        sec_text = str(sec)
                    h.serial += 1
                    d = {"s0": f"{sec_text}.{ms % 1000:03d}:{h.serial}"}
                else:
                    d = stamps(h, tmpl.events)
                if tmpl.fresh:
                    d["p"] = fresh_pid(h)
                unit = tmpl.text % d
                nlines = tmpl.lines
                events += tmpl.events
                r = rnd()
                if r >= P_PAIR + P_LATE + P_LOST or tmpl.events > 1:
                    if tmpl.tag:
                        note_decoy(tmpl.tag, line_no + 1)
                elif r < P_PAIR + P_LATE:
                    # Records of this event and the next one (maybe of another host) interleave.
                    a = unit.split("\n")[:-1]
                    tmpl_b, btext = benign(hosts[int(rnd() * nh)] if nh > 1 else h)
                    events += tmpl_b.events
                    b = btext.split("\n")[:-1]
                    if r < P_PAIR or len(a) < 3:
                        merged, first_b = _alternate(a, b, tmpl_b.events)
                        result.interleaved += 1
                    else:  # this event's PROCTITLE and EOE arrive after the next event's first record
                        merged, first_b = [*a[:-2], b[0], *a[-2:], *b[1:]], len(a) - 2
                        result.late += 1
                    if tmpl.tag:
                        note_decoy(tmpl.tag, line_no + 1)
                    if tmpl_b.tag:
                        note_decoy(tmpl_b.tag, line_no + 1 + first_b)
                    unit = "\n".join(merged) + "\n"
                    nlines = len(merged)
                elif tmpl.tag or nlines < 2:
                    if tmpl.tag:  # decoys never lose records
                        note_decoy(tmpl.tag, line_no + 1)
                else:
                    a = unit.split("\n")[:-1]
                    del a[int(rnd() * len(a))]
                    result.lost += 1
                    unit = "\n".join(a) + "\n"
                    nlines = len(a)
            chunk.append(unit)
            chunk_len += len(unit)
            line_no += nlines
            if chunk_len >= CHUNK_CHARS:
                data = "".join(chunk).encode()
                fh.write(data)
                written += len(data)
                chunk.clear()
                chunk_len = 0
        data = "".join(chunk).encode()
        fh.write(data)
        written += len(data)
    result.records = line_no
    result.events = events
    result.bytes = written
    result.seconds = time.perf_counter() - started
    write_labels(out, result, seed=seed, ratio=ratio, nodes=nodes, compressed=compress)
    return result


def _alternate(a: list[str], b: list[str], b_events: int = 1) -> tuple[list[str], int]:
    """Records of two events alternating (a first); returns the merged lines and b's first offset. When b
    is several (single-record) events, they simply follow."""
    if b_events > 1:
        return [*a, *b], len(a)
    merged: list[str] = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            merged.append(a[i])
        if i < len(b):
            merged.append(b[i])
    return merged, 1


def labels_path(out: Path) -> Path:
    return out.with_name(out.name + ".labels.json")


def write_labels(out: Path, result: GenResult, *, seed: int, ratio: int, nodes: int, compressed: bool) -> Path:
    path = labels_path(out)
    planted = sorted(result.planted, key=lambda p: p["line"])
    decoys = {k: sorted(v) for k, v in sorted(result.decoys.items())}
    data = {
        "file": out.name,
        "format": "auditd",
        "seed": seed,
        "ratio": ratio,
        "nodes": nodes,
        "gzip": compressed,
        "records": result.records,
        "rows": result.records,
        "events": result.events,
        "bytes": result.bytes,
        "accesses": result.accesses,
        "planted_count": len(planted),
        "lines": [p["line"] for p in planted],
        "planted": planted,
        "decoy_counts": {k: len(v) for k, v in decoys.items()},
        "decoys": decoys,
        "interleaved_pairs": result.interleaved,
        "late_records": result.late,
        "lost_records": result.lost,
        "note": "lines are 1-based line numbers of the first record of each planted event (what imds-detect "
        "reports as source.line); records = lines; bytes are uncompressed. accesses = planted scenarios (an "
        "execve and its connect are two planted events of one access). Decoys are benign events touching a "
        "metadata address (and the execs of the script agents, *-exec), by kind, by the line of their first "
        "record.",
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"),
                        help="uncompressed bytes to write, e.g. 1GB, 200MB, 2MiB (default 1GB)")
    parser.add_argument("--out", type=Path, default=Path("bench-data/audit.log"), help="output file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ratio", type=int, default=10_000,
                        help="about one planted metadata access per RATIO audit events (default 10000)")
    parser.add_argument("--node", type=int, default=0, metavar="N",
                        help="N hosts interleaved, records prefixed node=host1..hostN (default: one host, "
                        "no prefix)")
    parser.add_argument("--gzip", action="store_true", help="gzip the output (level 1)")
    args = parser.parse_args(argv)
    if args.ratio < 1:
        parser.error("--ratio must be >= 1")
    if args.node < 0:
        parser.error("--node must be >= 0")
    result = generate(args.out, args.size, seed=args.seed, ratio=args.ratio, nodes=args.node, compress=args.gzip)
    mb = result.bytes / 1e6
    print(f"records written: {result.records} (audit records = lines), events: {result.events}")
    print(f"metadata accesses planted: {result.accesses} (1 per ~{args.ratio} events), "
          f"planted events that must alert: {len(result.planted)}")
    print(f"benign decoys touching metadata addresses: {sum(len(v) for v in result.decoys.values())} "
          + ", ".join(f"{k}={len(v)}" for k, v in sorted(result.decoys.items())))
    print(f"interleaved pairs: {result.interleaved}, late records: {result.late}, lost records: {result.lost}")
    print(f"bytes written: {result.bytes} ({mb:.1f} MB{', before gzip' if args.gzip else ''}) to {args.out}")
    print(f"labels: {labels_path(args.out)}")
    print(f"elapsed: {result.seconds:.2f} s ({mb / max(result.seconds, 1e-9):.1f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
