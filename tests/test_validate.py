"""`imds-detect validate`: the test catalogue, telemetry capture and rendering, verdicts, the synthetic mode,
and (as root, with network namespaces) the real run against the mock metadata service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.knowledge.agents import AGENTS
from imds_detect.model import Alert, Endpoint, EventKind, ProcessInfo, Severity, SourceRef
from imds_detect.validate import runner
from imds_detect.validate.audit import group_by_auid, record_line
from imds_detect.validate.catalog import Expectation, Step, agent_path, catalog
from imds_detect.validate.detection import FormatResult, judge, read_events
from imds_detect.validate.namespace import Sandbox, SandboxError, sandbox_addresses, unavailable_reason
from imds_detect.validate.outputs import write_formats
from imds_detect.validate.render.auditd import audit_lines, encode, sockaddr_hex
from imds_detect.validate.strace import c_string, parse_strace
from imds_detect.validate.synthetic import expected_observations
from imds_detect.validate.telemetry import Observation, make_proc

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = {"ref-1-aws-iam-curl": ("aws", "credential"), "ref-2-azure-mi-token": ("azure", "token"),
             "ref-3-gcp-sa-token": ("gcp", "token"), "ref-4-python-ssrf": ("aws", "credential")}
NOW = datetime(2024, 5, 14, 10, 11, 12, 345000, tzinfo=UTC)


# -- the catalogue --------------------------------------------------------------------------------------------

def test_catalog_has_the_four_reference_tests_and_an_allowlisted_agent() -> None:
    tests = {t.id: t for t in catalog()}
    for test_id, (provider, path_class) in REFERENCE.items():
        assert tests[test_id].expect == Expectation(provider, path_class)
        assert tests[test_id].origin.startswith("reference test plan")
    agent = tests["agent-aws-ssm"]
    assert agent.expect is None and agent.staged == (agent_path(),)
    ssm = next(a for a in AGENTS if a.id == "aws-ssm-agent")
    assert agent_path() in ssm.paths and all(step.argv[0] == agent_path() for step in agent.steps)
    assert tests["ref-3-gcp-sa-token"].dns_names == ("metadata.google.internal",)
    assert tests["art-azure-pwsh-instance"].requires == ("pwsh",)


def test_step_placeholders_are_filled_from_earlier_output() -> None:
    step = Step(("curl", "-H", "X-aws-ec2-metadata-token: {{token}}", "http://x/{{role}}"))
    assert step.resolve({"token": "T", "role": "r"}) == ("curl", "-H", "X-aws-ec2-metadata-token: T", "http://x/r")
    pwsh = next(t for t in catalog() if t.id == "art-azure-pwsh-instance").steps[0]
    assert '@{"Metadata"="true"}' in pwsh.resolve({"role": "x"})[-1]  # PowerShell braces are left alone


def test_sandbox_addresses_come_from_the_knowledge_base() -> None:
    addresses = sandbox_addresses()
    assert {"169.254.169.254", "fd00:ec2::254", "169.254.170.2"} <= set(addresses)
    assert "127.0.0.1" not in addresses and "::1" not in addresses


# -- strace -----------------------------------------------------------------------------------------------------

TRACE = "\n".join([
    r'100 1715681472.000100 execve("/usr/bin/sh", ["sh", "-c", "curl -s \"http://169.254.169.254/\"\n"], '
    r"0x7ffd /* 3 vars */) = 0",
    r"100 1715681472.000200 vfork( <unfinished ...>",
    r'101 1715681472.000300 execve("/usr/bin/curl", ["curl", "-s", '
    r'"http://169.254.169.254/latest/meta-data/iam/security-credentials/r\x41"], 0x55 /* 3 vars */ <unfinished ...>',
    r"100 1715681472.000400 <... vfork resumed>) = 101",
    r"101 1715681472.000500 <... execve resumed>) = 0",
    r"101 1715681472.000600 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, "
    r"child_tid=0x7f}, 88) = 102",
    r'102 1715681472.000700 connect(6, {sa_family=AF_INET, sin_port=htons(53), '
    r'sin_addr=inet_addr("169.254.169.254")}, 16) = 0',
    r'101 1715681472.000800 connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT '
    r"(No such file or directory)",
    r'101 1715681472.000900 connect(5, {sa_family=AF_INET, sin_port=htons(80), '
    r'sin_addr=inet_addr("169.254.169.254")}, 16) = -1 EINPROGRESS (Operation now in progress)',
    r"101 1715681472.001000 connect(5, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), "
    r'inet_pton(AF_INET6, "fd00:ec2::254", &sin6_addr), sin6_scope_id=0}, 28) = 0',
    r'100 1715681472.001100 execve("/nope/python3", ["python3"], 0x55 /* 3 vars */) = -1 ENOENT (No such file)',
])


def test_strace_trace_becomes_exec_and_connect_observations() -> None:
    observations = parse_strace(TRACE)
    assert [o.kind for o in observations] == ["exec", "exec", "connect", "connect", "connect"]
    shell, curl, dns, http4, http6 = observations
    assert shell.proc.argv == ("sh", "-c", 'curl -s "http://169.254.169.254/"\n')
    assert curl.proc.argv[-1].endswith("/security-credentials/rA")  # \x41 decoded
    assert (curl.proc.ppid, curl.proc.parent_exe) == (100, "/usr/bin/sh")
    assert (dns.proc.pid, dns.proc.exe, dns.remote_port) == (101, "/usr/bin/curl", 53)  # resolver thread -> curl
    assert (http4.remote_ip, http4.remote_port, http4.result) == ("169.254.169.254", 80, "-115")
    assert (http6.remote_ip, http6.result) == ("fd00:ec2::254", "0")
    assert curl.time == datetime.fromtimestamp(1715681472.0003, UTC)


def test_c_string_unescapes_like_strace_writes() -> None:
    assert c_string(r'"a\"b\\c\n\t\101\xff"', 0)[0] == 'a"b\\c\n\tA\ufffd'
    assert c_string('"cut"...,', 0) == ("cut", 8)
    with pytest.raises(ValueError):
        c_string('"open', 0)


# -- audit ------------------------------------------------------------------------------------------------------

def test_audit_records_are_grouped_by_the_tests_login_uid() -> None:
    lines = [
        'type=SYSCALL msg=audit(1.000:10): arch=c000003e syscall=59 auid=501 uid=0 comm="curl" key="imds_validate"',
        "type=EXECVE msg=audit(1.000:10): argc=1 a0=\"curl\"",
        'type=SYSCALL msg=audit(1.000:11): arch=c000003e syscall=42 auid=502 uid=0 comm="py" key="imds_validate"',
        "type=SOCKADDR msg=audit(1.000:11): saddr=02000050A9FEA9FE0000000000000000",
        'type=SYSCALL msg=audit(1.000:12): arch=c000003e syscall=42 auid=502 uid=0 comm="x" key="other"',
        'type=SYSCALL msg=audit(1.000:13): arch=c000003e syscall=42 auid=900 uid=0 comm="x" key="imds_validate"',
    ]
    grouped = group_by_auid(lines, "imds_validate", 500, 3)
    assert sorted(grouped) == [1, 2]
    assert [line.split()[0] for line in grouped[1]] == ["type=SYSCALL", "type=EXECVE"]
    assert len(grouped[2]) == 2 and "audit(1.000:12)" not in " ".join(grouped[2])


def test_netlink_record_becomes_an_audit_log_line() -> None:
    assert record_line(1300, b"audit(1.5:7): arch=c000003e syscall=42\0\0") == \
        "type=SYSCALL msg=audit(1.5:7): arch=c000003e syscall=42"
    assert record_line(1334, b"audit(1.5:8): x=1").startswith("type=UNKNOWN[1334] msg=")


# -- rendering, read back by the real parsers ------------------------------------------------------------------

def _sample() -> list[Observation]:
    parent = make_proc(10, "/usr/bin/bash", ("bash",))
    curl = make_proc(11, "/usr/bin/curl", ("curl", "-H", "Metadata: true", "http://169.254.169.254/metadata/"
                                           "identity/oauth2/token?api-version=2018-02-01&resource=x"), 10, parent)
    long_arg = make_proc(12, "/usr/bin/python3.11", ("python3", "-c", "x = 1\n" * 2000,
                                                      "http://169.254.169.254/latest/user-data"), 10, parent)
    return [Observation("exec", NOW, curl), Observation("connect", NOW, curl, "169.254.169.254", 80, "", "-115"),
            Observation("connect", NOW, curl, "fd00:ec2::254", 80, "", "0"),
            Observation("exec", NOW, long_arg),
            Observation("dns", NOW, make_proc(0, "", ()), "169.254.169.254", 53, "udp",
                        qname="metadata.google.internal", answer="169.254.169.254")]


def test_auditd_rendering_follows_kernel_encoding() -> None:
    assert encode("curl") == '"curl"' and encode("Metadata: true") == "4D657461646174613A2074727565"
    assert encode('say "hi"') == "7361792022686922"
    assert sockaddr_hex("169.254.169.254", 80) == "02000050A9FEA9FE0000000000000000"
    assert sockaddr_hex("fd00:ec2::254", 80).startswith("0A00005000000000FD000EC2")
    lines = audit_lines(_sample())
    assert any(line.startswith("type=EXECVE") and "a2_len=" in line for line in lines)  # the 12 KB argument
    assert not any(line.startswith("type=DNS") for line in lines)


def test_rendered_files_parse_back_to_the_same_telemetry(tmp_path: Path) -> None:
    observations = _sample()
    files = write_formats(tmp_path, observations, ("auditd", "mde", "mde-csv", "sysmon"), "host-1")
    expected_cmd = observations[0].proc.command_line
    for label, path in files.items():
        events = list(read_events(path, label))
        processes = [e for e in events if e.kind is EventKind.PROCESS]
        networks = [(e.remote_ip, e.remote_port) for e in events if e.kind is EventKind.NETWORK]
        assert processes[0].process.command_line == expected_cmd, label
        script = observations[3].proc.command_line  # (the sysmon log holds its newlines as rsyslog's #012)
        assert processes[1].process.command_line == script, label
        assert ("169.254.169.254", 80) in networks and ("fd00:ec2::254", 80) in networks, label
        dns = [e.dns_query for e in events if e.kind is EventKind.DNS]
        assert dns == (["metadata.google.internal"] if label.startswith("mde") else []), label
    assert len(files["sysmon"].read_text().splitlines()) == 4  # the newlines of the script stay escaped (#012)
    assert "#012" in files["sysmon"].read_text()


# -- verdicts ---------------------------------------------------------------------------------------------------

def _alert(provider: str, path_class: str, suppressed_by: str | None = None) -> Alert:
    return Alert("imds-command-line", "t", Severity.HIGH, NOW, "h", "u", ProcessInfo(path="/usr/bin/curl"),
                 Endpoint(provider, "169.254.169.254", "169.254.169.254", 80, "/p", path_class), [],
                 SourceRef("auditd", "f", 1, 0), suppressed_by=suppressed_by)


def test_judge_requires_the_expected_alert_in_every_format() -> None:
    expect = Expectation("aws", "credential")
    good = FormatResult("auditd", Path("a"), [_alert("aws", "credential")], [])
    wrong = FormatResult("mde", Path("b"), [_alert("multi-cloud", "unknown")], [])
    assert judge(expect, [good], []) == ("pass", [])
    verdict, reasons = judge(expect, [good, wrong], [])
    assert verdict == "fail" and reasons == ["mde: no aws/credential alert (got: multi-cloud/unknown)"]
    assert judge(expect, [good], ["the mock received no request"])[0] == "fail"
    assert judge(expect, [], [])[0] == "fail"


def test_judge_for_an_allowlisted_agent() -> None:
    quiet = FormatResult("auditd", Path("a"), [], [_alert("aws", "credential", "aws-ssm-agent")])
    assert judge(None, [quiet], []) == ("pass", [])
    loud = FormatResult("mde", Path("b"), [_alert("aws", "credential")], [])
    assert judge(None, [quiet, loud], [])[0] == "fail"
    unseen = FormatResult("sysmon", Path("c"), [], [])
    assert judge(None, [unseen], [])[1] == ["sysmon: nothing suppressed (the agent's telemetry was not judged)"]


def test_expected_observations_resolve_names_and_fill_placeholders() -> None:
    gcp = next(t for t in catalog() if t.id == "ref-3-gcp-sa-token")
    kinds = [(o.kind, o.remote_ip, o.qname) for o in expected_observations(gcp, NOW)]
    assert kinds == [("exec", "", ""), ("dns", "169.254.169.254", "metadata.google.internal"),
                     ("connect", "169.254.169.254", "")]
    imdsv2 = next(t for t in catalog() if t.id == "art-aws-imdsv2-creds")
    last = expected_observations(imdsv2, NOW)[-2]
    assert last.proc.argv[-1].endswith("/security-credentials/imds-canary-role") and "{{" not in last.proc.command_line


# -- the synthetic mode (no privileges) -----------------------------------------------------------------------

def _run_cli(args: list[str]) -> tuple[int, str, dict[str, Any]]:
    result = CliRunner().invoke(main, args)
    json_path = args[args.index("--json") + 1] if "--json" in args else None
    data = json.loads(Path(json_path).read_text()) if json_path and Path(json_path).exists() else {}
    return result.exit_code, result.output, data


def test_synthetic_mode_detects_every_test_in_every_format(tmp_path: Path) -> None:
    code, output, data = _run_cli(["validate", "--synthetic", "--json", str(tmp_path / "r.json"),
                                   "--out", str(tmp_path / "out")])
    assert code == 0, output
    assert "SYNTHETIC" in output and data["capture"] == "synthetic" and data["mode"] == "synthetic"
    tests = {t["id"]: t for t in data["tests"]}
    assert set(tests) == {t.id for t in catalog()}
    for test in data["tests"]:
        assert {"name", "expected_signal", "observed", "alerts", "verdict"} <= set(test)
        assert test["verdict"] == "pass", test["reasons"]
        assert all(line.startswith("synthetic:") for line in test["observed"])
    formats = {"auditd", "mde", "mde-csv", "sysmon"} | ({"parquet"} if _has_pyarrow() else set())
    for test_id, (provider, path_class) in REFERENCE.items():
        hits = {a["format"] for a in tests[test_id]["alerts"]
                if (a["provider"], a["path_class"]) == (provider, path_class)}
        assert hits == formats, (test_id, hits)
    agent = tests["agent-aws-ssm"]
    assert agent["alerts"] == [] and {s["suppressed_by"] for s in agent["suppressed"]} == {"aws-ssm-agent"}
    assert (tmp_path / "out" / "ref-1-aws-iam-curl" / "audit.log").read_text().startswith("type=SYSCALL")


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


def test_synthetic_agent_alerts_without_the_default_allowlist(tmp_path: Path) -> None:
    config = tmp_path / "no-defaults.toml"
    config.write_text("[allowlist]\ndefaults = false\n", encoding="utf-8")
    code, output, data = _run_cli(["validate", "--synthetic", "--config", str(config), "--test", "agent-aws-ssm",
                                   "--test", "ref-2-azure-mi-token", "--json", str(tmp_path / "r.json"),
                                   "--out", str(tmp_path / "out")])
    assert code == 1, output
    verdicts = {t["id"]: t["verdict"] for t in data["tests"]}
    assert verdicts == {"ref-2-azure-mi-token": "pass", "agent-aws-ssm": "fail"}
    assert "alerted although allowlisted" in output


def test_validate_without_root_explains_and_points_to_synthetic(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "unavailable_reason", lambda: "needs root (network and mount namespaces)")
    result = CliRunner().invoke(main, ["validate", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "needs root" in result.output and "--synthetic" in result.output


def test_validate_lists_tests_and_rejects_unknown_ones() -> None:
    listed = CliRunner().invoke(main, ["validate", "--list"])
    assert listed.exit_code == 0 and "ref-3-gcp-sa-token" in listed.output and "gcp/token" in listed.output
    assert CliRunner().invoke(main, ["validate", "--synthetic", "--test", "nope"]).exit_code == 2


# -- the real run (root, network namespaces) -----------------------------------------------------------------

def _real_or_skip() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"real validate run: {reason}")
    probe = subprocess.run(["ip", "netns", "add", f"imdsprobe{os.getpid()}"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create network namespaces here: {probe.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", f"imdsprobe{os.getpid()}"], capture_output=True)


def _audit_state() -> str:
    if shutil.which("auditctl") is None:
        return ""
    status = subprocess.run(["auditctl", "-s"], capture_output=True, text=True).stdout.splitlines()
    rules = subprocess.run(["auditctl", "-l"], capture_output=True, text=True).stdout
    return "\n".join(line for line in status if line.split()[0] in ("enabled", "pid", "backlog_limit")) + rules


def _netns() -> set[str]:
    return {line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                        text=True).stdout.splitlines() if line.strip()}


def _validate_for_real(tmp_path: Path, capture: str) -> dict[str, Any]:
    before_audit, before_netns = _audit_state(), _netns()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "imds_detect", "validate", "--capture", capture,
                           "--json", str(tmp_path / "r.json"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    if capture == "audit" and done.returncode == 2 and "kernel audit" in done.stderr:
        pytest.skip(f"kernel audit not usable here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _audit_state() == before_audit  # rule removed, status restored
    assert _netns() == before_netns  # namespace deleted
    data: dict[str, Any] = json.loads((tmp_path / "r.json").read_text())
    tests = {t["id"]: t for t in data["tests"]}
    for test_id, (provider, path_class) in REFERENCE.items():
        test = tests[test_id]
        assert test["verdict"] == "pass", test["reasons"]
        hits = {a["format"] for a in test["alerts"] if (a["provider"], a["path_class"]) == (provider, path_class)}
        assert hits == {"auditd", "mde", "sysmon"}, (test_id, test["alerts"])
    agent = tests["agent-aws-ssm"]
    assert agent["verdict"] == "pass" and agent["alerts"] == []
    assert {s["format"] for s in agent["suppressed"]} == {"auditd", "mde", "sysmon"}
    assert {s["suppressed_by"] for s in agent["suppressed"]} == {"aws-ssm-agent"}
    gcp = tests["ref-3-gcp-sa-token"]["observed"]
    assert any(line.startswith("dns A metadata.google.internal -> 169.254.169.254") for line in gcp)
    assert any(line.startswith("connect 169.254.169.254:80 by /usr/bin/curl") for line in gcp)
    azure = tests["ref-2-azure-mi-token"]["observed"]
    assert "response has access_token, token_type, expires_in" in azure
    assert any(line.startswith("canary credentials handed out: IMDSCANARY{") for line in azure)
    python = tests["ref-4-python-ssrf"]["alerts"]
    assert any(a["process"].startswith("/usr/bin/python3") for a in python)
    return data


def test_real_run_with_kernel_audit(tmp_path: Path) -> None:
    _real_or_skip()
    data = _validate_for_real(tmp_path, "audit")
    assert data["capture"] == "kernel-audit" and data["mode"] == "real"
    raw = (tmp_path / "out" / "ref-1-aws-iam-curl" / "audit.log").read_text()
    assert 'key="imds_validate"' in raw and "type=SOCKADDR" in raw and "02000050A9FEA9FE" in raw


def test_real_run_with_strace(tmp_path: Path) -> None:
    _real_or_skip()
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    data = _validate_for_real(tmp_path, "strace")
    assert data["capture"] == "strace"
    assert (tmp_path / "out" / "ref-1-aws-iam-curl" / "strace-2.trace").exists()


def test_sandbox_has_no_way_out(tmp_path: Path) -> None:
    _real_or_skip()
    with Sandbox(tmp_path) as box:
        # 192.0.2.1 (TEST-NET-1) is never routed; inside the sandbox there is no route at all.
        out = box.run(["sh", "-c", "ip -o route; curl -s -m 3 http://192.0.2.1/ ; echo rc=$?"])
        assert "rc=7" in out.stdout and out.stdout.startswith("rc=")  # no routes, connection impossible
        inside = box.run(["readlink", "/proc/self/ns/net"]).stdout
    assert inside.strip() != os.readlink("/proc/self/ns/net")
    assert box.name not in _netns()


def test_sandbox_refuses_to_start_when_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import imds_detect.validate.namespace as namespace

    monkeypatch.setattr(namespace, "unavailable_reason", lambda: "needs root")
    with pytest.raises(SandboxError, match="needs root"):
        Sandbox(tmp_path).start()

