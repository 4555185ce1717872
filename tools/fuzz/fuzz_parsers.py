#!/usr/bin/env python3
"""Coverage-guided fuzzing of one source adapter with atheris (libFuzzer), for long local runs.

    pip install -e '.[fuzz]'
    python tools/fuzz/fuzz_parsers.py --adapter auditd --seconds 600
    python tools/fuzz/fuzz_parsers.py --adapter mde --seconds 60 -- -jobs=2 -workers=2   # more libFuzzer flags

Each input is judged by the same oracle as ``tests/test_fuzz_parsers.py`` (``tests/fuzz_support.py``): scans
with the forced format (with and without the prefilter) and ``--format auto``, the adapter's own entry points,
and the bookkeeping checks (every record counted, every skip with its file and a line of it, the prefilter
losing no alert). Half of the inputs are the fuzzer's raw bytes, the other half are built by the shared
mutations and structure-aware generators from the seeds, with the fuzzer's bytes as the choices (so both are
coverage guided).

Seeds: the adapter's fixtures, the samples, ``../shared/data`` when present, and the crash corpus. The working
corpus (inputs libFuzzer finds interesting) goes to ``--corpus`` (default: a folder under the temporary
directory, never the repository). A failing input - crash, broken invariant, or an input that takes longer
than ``--timeout`` seconds - is written as the file content it scanned to
``tests/fixtures/fuzz_corpus/<adapter>/crash-<sha1>`` (``hang-<sha1>`` for the slow ones); rename it, add its
expected outcome to ``EXPECTED`` in ``tests/test_fuzz_parsers.py``, fix the parser, and it stays a regression
test.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # fuzz_support: seeds, mutations, oracle

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("atheris is not installed: pip install -e '.[fuzz]' (or pip install atheris)")

with atheris.instrument_imports(include=["imds_detect", "fuzz_support"]):
    import fuzz_support

    from imds_detect.sources import registry


class SlowInput(Exception):
    """An input that took longer than --timeout seconds (a hang, for a bounded input)."""


class _ProviderChoices:
    """fuzz_support's Choices from the fuzzer's bytes."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def int(self, low: int, high: int) -> int:
        return int(self.provider.ConsumeIntInRange(low, high))


def _save(folder: Path, prefix: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-{hashlib.sha1(content).hexdigest()[:16]}"
    path.write_bytes(content)
    return path


def _on_alarm(signum: int, frame: Any) -> None:
    raise SlowInput("input took longer than the --timeout")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Coverage-guided fuzzing of one imds-detect source adapter "
                                                 "(atheris); see the module docstring.")
    parser.add_argument("--adapter", required=True, choices=sorted(registry.BY_NAME), help="the --format to fuzz")
    parser.add_argument("--seconds", type=int, default=60, help="total run time (libFuzzer -max_total_time)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take before it is a hang")
    parser.add_argument("--max-len", type=int, default=128 * 1024, help="largest raw input (bytes)")
    parser.add_argument("--corpus", type=Path, help="working corpus folder (default: under the temp directory)")
    parser.add_argument("--crashes", type=Path, help="where failing inputs go (default: the crash corpus)")
    parser.add_argument("--no-shared", action="store_true", help="do not seed from ../shared/data")
    parser.add_argument("libfuzzer", nargs="*", help="further libFuzzer flags (after --)")
    args = parser.parse_args(argv)

    name: str = args.adapter
    pool = fuzz_support.seeds(name, shared=not args.no_shared)
    crashes: Path = args.crashes or fuzz_support.CORPUS / name
    corpus: Path = args.corpus or Path(tempfile.gettempdir()) / "imds-fuzz-corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(pool):
        (corpus / f"seed-{index:03d}").write_bytes(seed[: args.max_len])
    scratch = tempfile.mkdtemp(prefix="imds-fuzz-")
    signal.signal(signal.SIGALRM, _on_alarm)

    def one_input(data: bytes) -> None:
        if data[:1] and data[0] & 1:
            provider = atheris.FuzzedDataProvider(data[1:])
            content = fuzz_support.generate(_ProviderChoices(provider), name, pool)
        else:
            content = data
        signal.alarm(args.timeout)
        try:
            fuzz_support.check_input(name, content, scratch)
        except SlowInput:
            path = _save(crashes, "hang", content)
            print(f"\n== {name}: input slower than {args.timeout} s saved to {path}", file=sys.stderr)
            raise
        except BaseException as error:
            path = _save(crashes, "crash", content)
            print(f"\n== {name}: {type(error).__name__}: {str(error)[:300]}\n== input saved to {path}",
                  file=sys.stderr)
            raise
        finally:
            signal.alarm(0)

    flags = [f"-max_total_time={args.seconds}", f"-max_len={args.max_len}", "-rss_limit_mb=4096",
             f"-timeout={args.timeout * 3}", f"-artifact_prefix={tempfile.gettempdir()}/imds-fuzz-artifact-",
             "-print_final_stats=1", *args.libfuzzer, str(corpus)]
    print(f"fuzzing {name}: {len(pool)} seeds, corpus {corpus}, failures to {crashes}", file=sys.stderr)
    atheris.Setup([sys.argv[0], *flags], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
