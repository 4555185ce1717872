"""The C tiler of audit logs (``imds_detect._audit_tiles``) against the regular expression it replaces.

:func:`imds_detect.sources.auditd_tiles.regex_tiles` is the reference: on generated, mutated, real and hostile
blocks, the C tiler must cut the same pieces with the same groups and offsets, and the SYSCALL fields it reads
must be those :func:`.auditd_events.light_syscall` reads (or None where that function would not read them from
the kernel's field order). End to end, a scan with the C tiler and one with ``IMDS_DETECT_PURE_PYTHON=1`` give the
same alerts and summary.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from auditd_mutation import mutate_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_auditd_prefilter import _generated
from test_native import scan_with_and_without_c

from imds_detect.sources.auditd_events import _KERNEL_SYSCALL, light_syscall
from imds_detect.sources.auditd_tiles import NATIVE_TILES, regex_tiles

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "auditd"
SHARED = ROOT.parent / "shared" / "data" / "auditd"

native = pytest.mark.skipif(NATIVE_TILES is None, reason="the C extension imds_detect._audit_tiles is not built "
                                                         "(no compiler at install, or IMDS_DETECT_PURE_PYTHON set)")


def assert_same_tiles(block: bytes, end: int | None = None) -> int:
    """The C tiler's pieces of ``block[:end]`` are the regular expression's; returns the number of events."""
    assert NATIVE_TILES is not None
    end = len(block) if end is None else end
    expected, expected_lines = regex_tiles(block, end)
    actual, lines = NATIVE_TILES(block, end)
    assert lines == expected_lines == block.count(b"\n", 0, end)
    assert [piece[:12] + piece[14:] for piece in actual] == [piece[:12] + piece[14:] for piece in expected]
    events = 0
    for piece in actual:
        if len(piece) == 3:
            assert piece[2] == block.count(b"\n", 0, piece[0])
            continue
        events += 1
        assert piece[14] == block.count(b"\n", 0, piece[0])
        start, first_end, fields, comm_at = piece[0], piece[11], piece[12], piece[13]
        line = block[start:first_end]
        if fields is None:
            assert comm_at == -1
            kernel = _KERNEL_SYSCALL.match(line)  # then light_syscall does not read the kernel's order either
            if kernel is not None:
                _, _, _, comm, exe = kernel.groups()
                assert not ((comm[:1] == b'"' or not len(comm) % 2) and (exe[:1] == b'"' or not len(exe) % 2))
        else:
            assert fields == light_syscall(line, True)
            assert comm_at == block.find(b" comm=", start + len(piece[3]), first_end)
    return events


# -- generated blocks: every branch of the grammar, with a few stamps and prefixes so that events form ----------
PREFIXES = ["", "", "node=web-1 ", "node=db ", "node= ", "node=x"]
STAMPS = ["1715558400.123:456", "1715558400.123:4567", "1.001:5", "12345678901.1:1", "123456789012.1:1",
          "1.1234:1", "1.5:", "7.12:99"]
SYSCALL_BODIES = [
    'arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=7ffd a2=10 a3=0 items=0 ppid=1 pid=42 auid=1000 uid=0 '
    'gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="curl" exe="/usr/bin/curl" key="k"',
    'arch=c000003e syscall=59 per=400000 success=no exit=-2 a0=1 a1=2 a2=3 a3=4 items=2 ppid= pid=7 auid=unset '
    'uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm=6375726C exe=2F62696E2F6375726C',
    'arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=7 auid=0 uid=0 gid=0 '
    'euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm=ABC exe="/bin/x"',
    'arch=c000003e syscall=42 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=x7 auid=0 uid=0 gid=0 '
    'euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="a b" exe="/bin/x"',
    'arch=c000003e syscall=42 success=yes pid=9 comm="x" exe="/y"',
    'arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=0 a3=0 items=1 ppid=1 pid=9 auid=0 uid=0 '
    'gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=unset comm="cat" exe="/usr/bin/cat"',
    'arch=C000003E syscall=42 x', 'arch=c000003e0 syscall=42 x', 'arch=c000003e syscall=42', 'arch=b7 syscall=203 ',
    'arch=c000003e syscall=12345678901 x', 'arch=40000003 syscall=102 success=yes exit=0 a0=3 a1=1 a2=2 a3=3 '
    'items=0 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=x ses=1 comm="" exe=""',
]
SECOND_BODIES = ["saddr=0200005000000000A9FEA9FE0000000000000000", "saddr=", "saddr=0200 trailing=1",
                 "saddr=AB\x00CD", "family=2", 'argc=2 a0="curl" a1="http://x"', "argc=", "a0=1"]
VALUES = ["2F746D70", "2F746D7", "", '"/tmp"', '"/a b"', '"x', '"\x7f"', "2f746d70", "(null)", '"é"']
OTHER_TYPES = ["PATH", "USER_ACCT", "SOCKADDR2", "PROCTITLEX", "BPF", "lower", "", "CWD", "PROCTITLE"]


@st.composite
def audit_lines(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(PREFIXES))
    stamp = draw(st.sampled_from(STAMPS))
    kind = draw(st.sampled_from(["SYSCALL", "SOCKADDR", "EXECVE", "PROCTITLE", "CWD", "EOE", "OTHER", "JUNK"]))
    if kind == "SYSCALL":
        body = draw(st.sampled_from(SYSCALL_BODIES))
    elif kind in ("SOCKADDR", "EXECVE"):
        body = draw(st.sampled_from(SECOND_BODIES))
    elif kind in ("PROCTITLE", "CWD"):
        body = ("proctitle=" if kind == "PROCTITLE" else "cwd=") + draw(st.sampled_from(VALUES))
    elif kind == "EOE":
        return prefix + draw(st.sampled_from([f"type=EOE msg=audit({stamp}): ", f"type=EOE msg=audit({stamp})",
                                              f"type=EOE msg=audit({stamp}x)", "type=EOE"]))
    elif kind == "OTHER":
        kind = draw(st.sampled_from(OTHER_TYPES))
        body = draw(st.sampled_from(["x=1", "", "msg=audit(1.1:1): a=b"]))
    else:
        return draw(st.sampled_from(["", "----", "time->Mon", "garbage", "type=", "node=a", "\x1d", "type=SYSCALL"]))
    separator = draw(st.sampled_from([": ", ":", " "]))
    return f"{prefix}type={kind} msg=audit({stamp}){separator}{body}"


@st.composite
def audit_events(draw: st.DrawFn) -> list[str]:
    """A whole event most of the time (SYSCALL, maybe a second record, records, EOE), with one stamp."""
    prefix = draw(st.sampled_from(PREFIXES[:4]))
    stamp = draw(st.sampled_from(STAMPS[:4]))
    head = f"{prefix}type=SYSCALL msg=audit({stamp}): {draw(st.sampled_from(SYSCALL_BODIES))}"
    lines = [head]
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["SOCKADDR", "EXECVE"]))
        lines.append(f"{prefix}type={kind} msg=audit({stamp}): {draw(st.sampled_from(SECOND_BODIES))}")
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(OTHER_TYPES))
        if kind in ("CWD", "PROCTITLE"):
            value = draw(st.sampled_from(VALUES))
            lines.append(f"{prefix}type={kind} msg=audit({stamp}): {kind.lower()}={value}")
        else:
            lines.append(f"{prefix}type={kind} msg=audit({draw(st.sampled_from(STAMPS[:4]))}): x=1")
    if draw(st.integers(0, 9)):
        lines.append(f"{prefix}type=EOE msg=audit({stamp}): ")
    return lines


blocks = st.lists(st.one_of(audit_events(), audit_lines().map(lambda line: [line])), max_size=30).map(
    lambda groups: ("\n".join(line for group in groups for line in group) + "\n").encode("utf-8", "surrogatepass"))


@native
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=blocks, cut=st.integers(0, 50))
def test_generated_blocks_tile_alike(block: bytes, cut: int) -> None:
    assert_same_tiles(block)
    end = max(0, len(block) - cut)
    assert_same_tiles(block, end)  # (an end inside a line: that line is left out by both)


@native
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_logs_tile_alike(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from([_generated(data.draw(st.integers(0, 999)), ["169.254.169.254"],
                                                   data.draw(st.sampled_from([0, 2])), interleave=True),
                                        *(path.read_bytes() for path in sorted(FIXTURES.glob("*.log")))]))
    assert_same_tiles(mutate_log(bytearray(source), data))


@native
def test_generated_logs_have_events_read_in_c() -> None:
    """Guard against a vacuous comparison: generated logs hold whole events whose fields the C tiler reads."""
    block = b"".join(_generated(seed, ["169.254.169.254"]) for seed in range(20))
    assert assert_same_tiles(block) > 100
    assert sum(1 for piece in NATIVE_TILES(block, len(block))[0] if len(piece) > 3 and piece[12] is not None) > 100


@native
@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.log")), ids=lambda path: path.name)
def test_fixture_logs_tile_alike(path: Path) -> None:
    assert_same_tiles(path.read_bytes())


@native
def test_real_logs_tile_alike() -> None:
    files = sorted(path for path in SHARED.rglob("*") if path.is_file() and path.suffix in ("", ".log", ".txt"))
    if not files:
        pytest.skip(f"no real audit logs under {SHARED}")
    pieces = 0
    for path in files:
        data = path.read_bytes()
        assert_same_tiles(data)
        pieces += len(NATIVE_TILES(data, len(data))[0])  # type: ignore[misc]
    assert pieces > 50  # (these logs have no EOE records: every record is a piece of its own)


@native
def test_benchmark_log_tiles_alike(tmp_path: Path) -> None:
    """The generated multi-host benchmark log (interleaving, lost records, long EXECVE chunks)."""
    out = tmp_path / "audit.log"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate_auditd.py"), "--size", "3MB", "--out",
                    str(out), "--node", "3", "--seed", "5"], check=True, capture_output=True)
    data = out.read_bytes()
    step = 256 << 10
    position = 0
    while position < len(data):  # in blocks of whole lines, as the reader cuts them
        block = data[position: position + step]
        end = block.rfind(b"\n") + 1 or len(block)
        assert_same_tiles(block, end)
        position += end


@native
@pytest.mark.parametrize("block", [
    b"", b"\n", b"no newline", b"type=SYSCALL msg=audit(1.1:1): arch=c000003e syscall=42 x",
    b"\x00\xff" * 1000 + b"\n", b"type=" * 5000 + b"\n", b"node=" + b"a" * 100_000 + b"\n",
    b"type=SYSCALL msg=audit(1.001:5): arch=c000003e syscall=42 x\n" + b"type=PATH msg=audit(1.001:5): x\n" * 2000,
], ids=["empty", "newline", "no-newline", "cut-event", "binary", "repeated-type", "long-node", "unclosed-event"])
def test_hostile_blocks_tile_alike(block: bytes) -> None:
    assert_same_tiles(block)


@native
def test_end_outside_the_block_is_refused() -> None:
    assert NATIVE_TILES is not None
    with pytest.raises(ValueError, match="end outside the block"):
        NATIVE_TILES(b"x\n", 3)
    with pytest.raises(ValueError, match="end outside the block"):
        NATIVE_TILES(b"x\n", -1)
    assert NATIVE_TILES(memoryview(b"type=PATH msg=audit(1.1:1): x\nj\n"), 32) == ([(30, 31, 1)], 2)  # any buffer


def test_pure_python_switch_keeps_the_regular_expression() -> None:
    code = "from imds_detect.sources import auditd_tiles as t; print('regex' if t.tiles is t.regex_tiles else 'C')"
    environment = {**os.environ, "IMDS_DETECT_PURE_PYTHON": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "regex"


@native
def test_scans_with_and_without_the_extension_agree(tmp_path: Path) -> None:
    """End to end: alerts (with file, line and record numbers) and the summary are the same."""
    log = tmp_path / "audit.log"
    rng = random.Random(3)
    log.write_bytes(b"".join(_generated(rng.randrange(10_000), ["169.254.169.254", "2852039166", "[fd00:ec2::254]"],
                                        nodes=rng.choice([0, 2]), interleave=True) for _ in range(40)))
    stdout, _ = scan_with_and_without_c(log)
    assert stdout.count("\n") >= 20  # metadata fetches among them alert
