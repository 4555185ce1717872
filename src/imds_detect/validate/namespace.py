"""The sandbox: a network namespace (metadata addresses on its loopback, nothing routed out) and a mount
namespace (its own hosts file and resolver, staged agent executables), torn down on close.

Commands enter both namespaces in the child before exec (setns), so the telemetry shows the test's
own process and not a wrapper.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..knowledge.endpoints import ADDRESSES, MULTI_CLOUD

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# No proxy variables, no inherited environment: what runs inside sees only this.
SAFE_ENV = {"PATH": SAFE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
SERVED = frozenset({MULTI_CLOUD, "aws", "aws-ecs", "alibaba", "oracle"})  # providers the mock imitates
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"


class SandboxError(RuntimeError):
    """The sandbox cannot be built here (not root, no namespaces, a tool missing...)."""


def sandbox_addresses() -> tuple[str, ...]:
    """The metadata addresses (from the knowledge base) put on the namespace's loopback."""
    return tuple(a.address for a in ADDRESSES if a.address_alone and a.provider in SERVED)


def _setns(path: str, kind: int) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if hasattr(os, "setns"):
            os.setns(descriptor, kind)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(descriptor, kind) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), path)
    finally:
        os.close(descriptor)


def program_path(name: str) -> str | None:
    """Where a test's program is: absolute as given, on the sandbox PATH, or (python3 only) this Python."""
    if name.startswith("/"):
        return name
    found = shutil.which(name, path=SAFE_PATH)
    if found is None and name == "python3":
        return sys.executable
    return found


def _nsswitch() -> str:
    """The host's nsswitch.conf with names resolved by files and DNS only (no systemd-resolved, mDNS...:
    they would ask a resolver outside the sandbox)."""
    try:
        lines = Path("/etc/nsswitch.conf").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = ["passwd: files", "group: files"]
    kept = [line for line in lines if not line.strip().startswith("hosts:")]
    return "\n".join([*kept, "hosts: files dns"]) + "\n"


def unavailable_reason() -> str | None:
    """Why a real run cannot happen here, or None."""
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces, the metadata addresses)"
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool, path=SAFE_PATH) is None:
            return f"needs {tool} (iproute2 / util-linux)"
    return None


class Sandbox:
    """Build with `start()` (or `with`), run commands with `run`/`popen`, tear down with `close()`."""

    def __init__(self, workdir: Path, staged: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.staged = dict(staged or {})  # path inside -> file to copy there
        self.name = f"imdsval-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.notes: list[str] = []
        self.addresses: list[str] = []
        self._created = False
        self._holder: subprocess.Popen[bytes] | None = None
        self._processes: list[subprocess.Popen[Any]] = []

    # -- building --------------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        reason = unavailable_reason()
        if reason:
            raise SandboxError(reason)
        self._ip("netns", "add", self.name)
        self._created = True
        self._ip("-n", self.name, "link", "set", "lo", "up")
        for address in sandbox_addresses():
            if ":" in address:
                result = self._ip("-n", self.name, "-6", "addr", "add", f"{address}/128", "dev", "lo", "nodad",
                                  check=False)
                if result.returncode != 0:
                    self.notes.append(f"IPv6 {address} not added: {result.stderr.strip()}")
                    continue
            else:
                self._ip("-n", self.name, "addr", "add", f"{address}/32", "dev", "lo")
            self.addresses.append(address)
        self._check_isolated()
        self._start_holder()
        self._mount_files()
        return self

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, env=SAFE_ENV, timeout=20)
        if check and result.returncode != 0:
            raise SandboxError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
        return result

    def _check_isolated(self) -> None:
        """Refuse to go on unless the namespace has loopback only and no route out."""
        links = self._ip("-n", self.name, "-o", "link", "show").stdout.splitlines()
        routes = (self._ip("-n", self.name, "route", "show", "default").stdout
                  + self._ip("-n", self.name, "-6", "route", "show", "default").stdout)
        if len(links) != 1 or ": lo:" not in links[0] or routes.strip():
            raise SandboxError(f"namespace {self.name} is not isolated: {links} {routes.strip()}")

    def _start_holder(self) -> None:
        """A process that keeps a private mount namespace (inside the network namespace) alive."""
        netns = f"/run/netns/{self.name}"
        self._holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sleep", "infinity"],
                                        preexec_fn=lambda: _setns(netns, CLONE_NEWNET), env=SAFE_ENV)
        mine = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self._holder.pid}/ns/mnt") != mine:
                    return
            except OSError:
                pass
            if self._holder.poll() is not None:
                break
            time.sleep(0.01)
        raise SandboxError("could not create a mount namespace (unshare --mount)")

    def _mount_files(self) -> None:
        files = self.workdir / "etc"
        files.mkdir(parents=True, exist_ok=True)
        (files / "hosts").write_text(HOSTS, encoding="ascii")
        # GCP style: the resolver is the metadata address itself (the mock answers DNS there).
        (files / "resolv.conf").write_text("nameserver 169.254.169.254\noptions timeout:1 attempts:1\n",
                                           encoding="ascii")
        (files / "nsswitch.conf").write_text(_nsswitch(), encoding="utf-8")
        for name in ("hosts", "resolv.conf", "nsswitch.conf"):
            self._mount("--bind", str(files / name), f"/etc/{name}")
        for cache in ("/run/nscd", "/var/run/nscd"):  # a name cache daemon would resolve outside the sandbox
            if os.path.isdir(cache) and not os.path.islink(cache):
                self._mount("-t", "tmpfs", "tmpfs", cache)
        for index, directory in enumerate(sorted({os.path.dirname(p) for p in self.staged})):
            upper, work = self.workdir / f"overlay{index}" / "upper", self.workdir / f"overlay{index}" / "work"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            for inside, source in self.staged.items():
                if os.path.dirname(inside) == directory:
                    shutil.copy2(source, upper / os.path.basename(inside))
            self._mount("-t", "overlay", "overlay", "-o", f"lowerdir={directory},upperdir={upper},workdir={work}",
                        directory)

    def _mount(self, *args: str) -> None:
        result = subprocess.run(["mount", *args], capture_output=True, text=True, env=SAFE_ENV, timeout=20,
                                preexec_fn=self._enter_mount_only)
        if result.returncode != 0:
            raise SandboxError(f"mount {' '.join(args)}: {result.stderr.strip()}")

    def _enter_mount_only(self) -> None:
        assert self._holder is not None
        _setns(f"/proc/{self._holder.pid}/ns/mnt", CLONE_NEWNS)

    # -- running ---------------------------------------------------------------------------------------
    def enter(self, then: Callable[[], None] | None = None) -> Callable[[], None]:
        """A preexec function: join the sandbox's namespaces, cd /, then run `then` (e.g. set loginuid)."""
        if self._holder is None:
            raise SandboxError("sandbox not started")
        holder = self._holder.pid
        netns = f"/run/netns/{self.name}"

        def preexec() -> None:
            _setns(netns, CLONE_NEWNET)
            _setns(f"/proc/{holder}/ns/mnt", CLONE_NEWNS)
            os.chdir("/")
            if then is not None:
                then()

        return preexec

    def run(self, argv: list[str], timeout: float = 30, then: Callable[[], None] | None = None,
            executable: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside and wait (stdout/stderr captured); `executable` keeps argv[0] as written."""
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env or SAFE_ENV,
                              preexec_fn=self.enter(then), stdin=subprocess.DEVNULL, executable=executable)

    def popen(self, argv: list[str], env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside; it is killed on close() if still running."""
        process = subprocess.Popen(argv, env=env or SAFE_ENV, preexec_fn=self.enter(), stdin=subprocess.DEVNULL,
                                   **kwargs)
        self._processes.append(process)
        return process

    # -- teardown --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything started inside, the holder (its mount namespace goes with it), delete the netns."""
        for process in [*self._processes, *([self._holder] if self._holder else [])]:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        self._processes, self._holder = [], None
        if self._created:
            self._ip("netns", "del", self.name, check=False)
            self._created = False

    def __enter__(self) -> Sandbox:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
