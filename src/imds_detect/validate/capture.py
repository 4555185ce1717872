"""How telemetry is captured in a real run: the kernel audit subsystem when usable, else strace."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from .audit import AuditUnavailable, KernelAudit
from .namespace import SAFE_PATH
from .strace import TRACED, parse_strace, strace_command
from .telemetry import Observation

CHOICES = ("auto", "audit", "strace")


class CaptureUnavailable(RuntimeError):
    """No capture mechanism works here."""


class Capture(Protocol):
    mechanism: str

    @property
    def detail(self) -> str: ...

    def wrap(self, directory: Path, index: int, step: int, argv: list[str],
             program: str) -> tuple[list[str], str, Callable[[], None] | None]:
        """(argv to run, executable, preexec) for step `step` of test `index`."""
        ...

    def settle(self) -> None:
        """Wait until the telemetry of what ran so far has arrived."""
        ...

    def stop(self) -> None: ...


class AuditCapture:
    """Kernel audit (see :mod:`.audit`): the processes only get their test's login uid."""

    mechanism = "kernel-audit"

    def __init__(self, audit: KernelAudit) -> None:
        self.audit = audit

    @property
    def detail(self) -> str:
        return self.audit.detail

    def wrap(self, directory: Path, index: int, step: int, argv: list[str],
             program: str) -> tuple[list[str], str, Callable[[], None] | None]:
        return argv, program, self.audit.login_as(index)

    def settle(self) -> None:
        self.audit.drain()

    def raw_lines(self, index: int) -> list[str]:
        return self.audit.by_test().get(index, [])

    def stop(self) -> None:
        self.audit.stop()


class StraceCapture:
    """Each step runs under ``strace -f``; the traces are kept next to the other files of the test."""

    mechanism = "strace"

    def __init__(self, why_not_audit: str) -> None:
        self.why_not_audit = why_not_audit
        self._traces: dict[int, list[Path]] = {}

    @property
    def detail(self) -> str:
        return f"strace -f -e trace={TRACED} (kernel audit not used: {self.why_not_audit})"

    def wrap(self, directory: Path, index: int, step: int, argv: list[str],
             program: str) -> tuple[list[str], str, Callable[[], None] | None]:
        directory.mkdir(parents=True, exist_ok=True)
        trace = directory / f"strace-{step + 1}.trace"
        self._traces.setdefault(index, []).append(trace)
        strace = shutil.which("strace", path=SAFE_PATH) or "strace"
        if shutil.which(argv[0], path=SAFE_PATH) is None:
            argv = [program, *argv[1:]]  # strace looks argv[0] up on the sandbox's PATH
        return strace_command(argv, str(trace)), strace, None

    def settle(self) -> None:
        return None

    def observations(self, index: int) -> list[Observation]:
        out: list[Observation] = []
        for trace in self._traces.get(index, []):
            if trace.exists():
                out.extend(parse_strace(trace.read_text(encoding="utf-8", errors="replace")))
        return out

    def stop(self) -> None:
        return None


def choose(choice: str, tests: int) -> AuditCapture | StraceCapture:
    """Start the capture `choice` asks for ("auto": kernel audit, else strace)."""
    why = "not requested"
    if choice in ("auto", "audit"):
        try:
            return AuditCapture(KernelAudit(tests).start())
        except AuditUnavailable as error:
            if choice == "audit":
                raise CaptureUnavailable(f"kernel audit: {error}") from None
            why = str(error)
    if shutil.which("strace", path=SAFE_PATH) is None:
        raise CaptureUnavailable(f"no capture mechanism: kernel audit ({why}) and strace (not installed)")
    return StraceCapture(why)
