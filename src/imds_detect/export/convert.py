"""Conversions of the Sigma rules through pySigma back ends, found by pySigma's plugin mechanism.

Named targets pair a back end with a processing pipeline; every other installed back end is a target
under its own identifier. Rules are parsed afresh for each conversion (pySigma mutates them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .allowfilters import COMMAND_LINE, PARENT

# target -> (backend id, pipeline id or None, file extension, comment prefix or None)
NAMED: dict[str, tuple[str, str | None, str, str | None]] = {
    "kql": ("kusto", "microsoft_xdr", "kql", "//"),
    "kql-asim": ("kusto", "sentinel_asim", "kql", "//"),
    "splunk": ("splunk", None, "spl", None),
    "esql": ("esql", None, "esql", "//"),
    "eql": ("eql", None, "eql", "//"),
    "lucene": ("lucene", None, "json", None),
}
# Fields some pipelines' tables do not have: allowlist entries needing them are left out there (the
# query then alerts on those agents too; listed in the manifest).
DROP_FIELDS: dict[str, frozenset[str]] = {"kql-asim": frozenset({COMMAND_LINE, PARENT})}


class ExportUnavailable(RuntimeError):
    """pySigma (the `export` extra) is not installed."""


@dataclass
class Converted:
    rule: str
    queries: list[str]
    error: str = ""


@lru_cache(maxsize=1)
def plugins() -> Any:
    try:
        from sigma.plugins import InstalledSigmaPlugins  # type: ignore[import-untyped,unused-ignore]
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ExportUnavailable("pySigma is not installed: pip install 'imds-detect[export]'") from error
    return InstalledSigmaPlugins.autodiscover()


def backend_targets() -> dict[str, tuple[str, str | None, str, str | None]]:
    """Every conversion target: the named ones whose back end is installed, then other installed back ends."""
    installed = plugins().backends
    targets = {name: spec for name, spec in NAMED.items() if spec[0] in installed}
    used = {spec[0] for spec in NAMED.values()}
    for backend_id in sorted(installed):
        if backend_id not in used and backend_id not in targets:
            targets[backend_id] = (backend_id, None, "json", None)
    return targets


def _backend_class(backend_id: str) -> Any:
    """The back end class; Kusto gets one fix (see `_kusto_numbers`)."""
    backend_class = plugins().backends[backend_id]
    return _kusto_numbers(backend_class) if backend_id == "kusto" else backend_class


def _kusto_numbers(backend_class: Any) -> Any:
    """pysigma-backend-kusto 1.0.1 writes a list of numbers as `RemotePort in~ ("53", "123")`, strings compared
    with an int column, which Kusto rejects (KS107). Such lists stay `==` comparisons joined by `or`."""
    from sigma.types import SigmaNumber  # type: ignore[import-untyped,unused-ignore]

    class KustoNumbers(backend_class):  # type: ignore[misc]
        def decide_convert_condition_as_in_expression(self, cond: Any, state: Any) -> bool:
            if any(isinstance(getattr(arg, "value", None), SigmaNumber) for arg in cond.args):
                return False
            return bool(super().decide_convert_condition_as_in_expression(cond, state))

    return KustoNumbers


def _text(query: Any) -> str:
    if isinstance(query, str):
        return query
    return json.dumps(query, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def convert_rules(target: str, rules_yaml: dict[str, str]) -> list[Converted]:
    """Convert each rule (name -> Sigma YAML) for `target`; a rule the back end or pipeline cannot take
    is reported with the error instead of stopping the export."""
    from sigma.collection import SigmaCollection  # type: ignore[import-untyped,unused-ignore]

    backend_id, pipeline_id, _ext, _comment = backend_targets()[target]
    found = plugins()
    results = []
    for name, text in rules_yaml.items():
        pipeline = found.pipelines[pipeline_id]() if pipeline_id else None
        backend_class = _backend_class(backend_id)
        backend = backend_class(processing_pipeline=pipeline) if pipeline is not None else backend_class()
        try:
            collection = SigmaCollection.from_yaml(text)
            queries = [_text(q) for rule in collection.rules for q in backend.convert_rule(rule)]
            results.append(Converted(name, queries))
        except Exception as error:
            message = " ".join(str(error).split())[:300]
            results.append(Converted(name, [], f"{type(error).__name__}: {message}"))
    return results
