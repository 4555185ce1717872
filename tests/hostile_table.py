"""Print the README's "Hostile input" table: the cases of tests/test_hostile_inputs.py per hostile class, and
their result from a pytest run of that file (``python tests/hostile_table.py``; ``--no-run`` leaves the result
column as "-"). Paste the output under "### Hostile input" in README.md; the test
``test_readme_table_matches_the_cases`` fails when the counts there no longer match the parametrisation."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from test_hostile_inputs import table_rows  # noqa: E402


def results() -> tuple[dict[str, str], float]:
    """The outcome of every case ("passed", "failed", "skipped") from one pytest run, and its time."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "hostile.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                        str(HERE / "test_hostile_inputs.py")], check=False, cwd=HERE.parent,
                       stdout=subprocess.DEVNULL)
        root = ElementTree.parse(report).getroot()
    found: dict[str, str] = {}
    seconds = time.monotonic() - started
    for case in root.iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("test_hostile_input["):
            continue
        state = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            state = "failed"
        elif case.find("skipped") is not None:
            state = "skipped"
        found[name[len("test_hostile_input["):-1]] = state
    return found, seconds


def markdown(outcomes: dict[str, str] | None) -> str:
    lines = ["| class | formats | cases | inputs | asserted | result |", "| --- | --- | --- | --- | --- | --- |"]
    for name, formats, count, inputs, asserted, result in table_rows(outcomes):
        lines.append(f"| `{name}` | {formats} | {count} | {inputs} | {asserted} | {result} |")
    return "\n".join(lines)


def main() -> None:
    outcomes = None
    if "--no-run" not in sys.argv:
        outcomes, seconds = results()
        print(f"pytest tests/test_hostile_inputs.py: {seconds:.1f} s", file=sys.stderr)
    print(markdown(outcomes))


if __name__ == "__main__":
    main()
