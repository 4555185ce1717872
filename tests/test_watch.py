"""`imds-detect watch`: socket tables, attribution to processes, and a real run in a network namespace."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imds_detect.detect.allowlist import Allowlist, default_entries
from imds_detect.detect.detector import Detector
from imds_detect.live.procnet import decode_address, parse_table
from imds_detect.live.watch import Watcher
from imds_detect.model import Alert

ROOT = Path(__file__).resolve().parent.parent
TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def test_decode_address_ipv4_ipv6_and_mapped() -> None:
    assert decode_address("FEA9FEA9:0050") == ("169.254.169.254", 80)
    assert decode_address("0100007F:9D96") == ("127.0.0.1", 40342)
    assert decode_address("C20E00FD" + "00000000" * 2 + "54020000:0050") == ("fd00:ec2::254", 80)
    assert decode_address("00000000" * 2 + "FFFF0000FEA9FEA9:0050") == ("169.254.169.254", 80)


def test_parse_table_reads_state_uid_inode_and_skips_junk() -> None:
    text = TCP_HEADER + (
        "   0: 0F01000A:C350 FEA9FEA9:0050 02 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n"
        "   1: garbage\n")
    sockets = list(parse_table(text, "tcp"))
    assert len(sockets) == 1
    sock = sockets[0]
    assert (sock.remote_ip, sock.remote_port, sock.state, sock.uid, sock.inode, sock.line) == (
        "169.254.169.254", 80, "SYN_SENT", 1000, 4242, 2)


def _fake_proc(root: Path, rows: list[str], processes: dict[int, tuple[str, str, int, int]]) -> Path:
    """A /proc look-alike: net/tcp rows and, per pid, (exe, cmdline, ppid, socket inode)."""
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(TCP_HEADER + "".join(rows), encoding="ascii")
    for table in ("tcp6", "udp", "udp6"):
        (root / "net" / table).write_text(TCP_HEADER, encoding="ascii")
    for pid, (exe, cmdline, ppid, inode) in processes.items():
        directory = root / str(pid)
        (directory / "fd").mkdir(parents=True)
        (directory / "exe").symlink_to(exe)
        (directory / "fd" / "3").symlink_to(f"socket:[{inode}]")
        (directory / "comm").write_text(Path(exe).name[:15] + "\n", encoding="utf-8")
        (directory / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
        (directory / "status").write_text(f"Name:\t{Path(exe).name}\nPPid:\t{ppid}\nUid:\t0\t0\t0\t0\n",
                                          encoding="ascii")
    return root


def _row(number: int, remote: str, inode: int, state: str = "01", local_port: int | None = None) -> str:
    port = 50000 + number if local_port is None else local_port
    return (f"   {number}: 0F01000A:{port:04X} {remote} {state} 00000000:00000000 00:00000000 "
            f"00000000     0        0 {inode} 1\n")


def test_watcher_attributes_and_judges_each_connection_once(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path / "proc", [
        _row(0, "FEA9FEA9:0050", 101),  # curl to IMDS
        _row(1, "FEA9FEA9:0035", 102),  # GCP DNS on 53: not the API
        _row(2, "FEA9FEA9:0050", 103),  # the SSM agent from its real path
        _row(3, "0202A8C0:01BB", 104),  # an ordinary address
        _row(4, "FEA9FEA9:0050", 0, state="06"),  # TIME_WAIT: no owner left
        _row(5, "FEA9FEA9:0050", 0, state="06", local_port=50000),  # curl's connection closing: not new
    ], {
        4001: ("/usr/bin/curl", "curl http://169.254.169.254/latest/meta-data/", 1, 101),
        4002: ("/usr/lib/systemd/systemd-resolved", "systemd-resolved", 1, 102),
        4003: ("/usr/bin/amazon-ssm-agent", "/usr/bin/amazon-ssm-agent", 1, 103),
        4004: ("/usr/bin/firefox", "firefox", 1, 104),
    })
    alerts: list[Alert] = []
    suppressed: list[Alert] = []
    watcher = Watcher(Detector(Allowlist(default_entries())), alerts.append, suppressed.append, proc=proc)
    watcher.poll()
    watcher.poll()  # nothing new the second time
    assert [(a.process.path, a.process.pid, a.endpoint.canonical) for a in alerts] == [
        ("/usr/bin/curl", 4001, "169.254.169.254"), ("", None, "169.254.169.254")]
    assert "owner already gone" in " ".join(alerts[1].reasons)
    assert [a.suppressed_by for a in suppressed] == ["aws-ssm-agent"]
    assert alerts[0].process.command_line == "curl http://169.254.169.254/latest/meta-data/"


# --------------------------------------------------------------------------------------------------
# For real, inside a network namespace the test owns.
# --------------------------------------------------------------------------------------------------

SLOW_SERVER = """
import http.server, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(1.5)  # keep the connection open long enough for a poller to see it
        body = b'{"Code":"Success","AccessKeyId":"ASIAFAKEFAKEFAKE0001"}'
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(('169.254.169.254', 80), Slow).serve_forever()
"""


def _namespace_or_skip() -> str:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs Linux and root to create a network namespace")
    if shutil.which("ip") is None or shutil.which("curl") is None:
        pytest.skip("needs iproute2 (ip) and curl")
    name = f"imdsdet{os.getpid()}"
    created = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    return name


def test_watch_in_a_network_namespace(tmp_path: Path) -> None:
    namespace = _namespace_or_skip()
    inside = ["ip", "netns", "exec", namespace]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = watcher = None
    try:
        subprocess.run(inside + ["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(inside + ["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"], check=True)
        server = subprocess.Popen(inside + [sys.executable, "-c", SLOW_SERVER])
        agent = tmp_path / "corp-agent" / "corp-imds-agent"
        agent.parent.mkdir()
        shutil.copy("/usr/bin/curl", agent)
        config = tmp_path / "imds.toml"
        config.write_text(f'[[allowlist.entry]]\nid = "corp-agent"\npath = "{agent}"\n', encoding="utf-8")
        watcher = subprocess.Popen(
            inside + [sys.executable, "-m", "imds_detect", "watch", "--interval", "0.05", "--output", "jsonl",
                      "--config", str(config), "--duration", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(1.5)  # server and watcher up
        url = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
        clients = [
            inside + ["curl", "-s", "-m", "10", url],
            inside + [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=10)"],
            inside + [str(agent), "-s", "-m", "10", url],
        ]
        for client in clients:
            subprocess.run(client, check=True, capture_output=True, timeout=20)
        time.sleep(0.5)
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=20)
    finally:
        for process in (watcher, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    assert watcher.returncode == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    paths = sorted({alert["process"]["path"] for alert in alerts})
    python = os.path.realpath(sys.executable)
    assert paths == sorted({"/usr/bin/curl", python}), (paths, err)
    assert all(alert["endpoint"]["canonical"] == "169.254.169.254" for alert in alerts)
    assert "suppressed by allowlist: corp-agent=1" in err
