"""Per-rule responder guides: TOML data shipped in `imds_detect/guide/data/`, merged with the shared playbook."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from ..detect.rules import RULES, RULES_BY_ID

PROVIDERS = ("aws", "azure", "gcp")


@dataclass(frozen=True)
class HuntingQuery:
    """A KQL hunting query of the export (Defender / Sentinel), named and described."""

    name: str
    description: str
    query: str


@dataclass(frozen=True)
class RuleGuide:
    """What a responder needs for one rule."""

    rule_id: str
    title: str
    description: str
    summary: str
    investigate: tuple[str, ...]
    respond: tuple[str, ...]  # rule-specific first, then the shared containment steps
    revoke: dict[str, tuple[str, ...]]  # provider -> how to revoke the stolen credentials
    harden: tuple[str, ...]
    allow_safely: tuple[str, ...]
    never_allow: tuple[str, ...]
    false_positives: tuple[str, ...]
    hunting: tuple[str, ...]  # names of KQL hunting queries (see `hunting_queries`)
    hunt: tuple[str, ...]  # `imds-detect hunt` questions answered from the state store
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id, "title": self.title, "description": self.description, "summary": self.summary,
            "investigate": list(self.investigate), "respond": list(self.respond),
            "revoke": {provider: list(steps) for provider, steps in self.revoke.items()},
            "harden": list(self.harden), "allow_safely": list(self.allow_safely),
            "never_allow": list(self.never_allow), "false_positives": list(self.false_positives),
            "hunting": list(self.hunting), "hunt": list(self.hunt),
            "reference": guide_reference(self.rule_id),
        }


def guide_reference(rule_id: str) -> str:
    """How an alert points at its guide (the `guide` field of every output)."""
    return f"imds-detect explain {rule_id}"


def _load(name: str) -> dict[str, Any] | None:
    resource = resources.files(__package__).joinpath("data").joinpath(name)
    if not resource.is_file():
        return None
    data: dict[str, Any] = tomllib.loads(resource.read_text(encoding="utf-8"))
    return data


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"guide key {key!r} must be a list of strings")
    return tuple(value)


@cache
def guide_for(rule_id: str) -> RuleGuide:
    """The guide of `rule_id`; a rule without its own file gets its description and the shared playbook.
    Raises KeyError for an id that is not a rule."""
    rule = RULES_BY_ID.get(rule_id)
    own = _load(f"{rule_id}.toml")
    if rule is None and own is None:
        raise KeyError(rule_id)
    own = own or {}
    common = _load("common.toml") or {}
    shared = own.get("respond_common", True)
    return RuleGuide(
        rule_id=rule_id,
        title=rule.title if rule else str(own.get("title", rule_id)),
        description=rule.description if rule else str(own.get("description", "")),
        summary=str(own.get("summary", rule.description if rule else "")),
        investigate=_strings(own, "investigate"),
        respond=_strings(own, "respond") + (_strings(common, "contain") if shared else ()),
        revoke={provider: _strings(common, provider) for provider in PROVIDERS} if shared else {},
        harden=_strings(common, "harden"),
        allow_safely=_strings(own, "allow_safely"),
        never_allow=_strings(own, "never_allow"),
        false_positives=_strings(own, "false_positives"),
        hunting=_strings(own, "hunting"),
        hunt=_strings(own, "hunt"),
    )


def all_guides() -> list[RuleGuide]:
    """Every rule's guide, in catalogue order."""
    return [guide_for(rule.id) for rule in RULES]


def hunting_queries() -> dict[str, HuntingQuery]:
    """The KQL hunting queries of the export, generated from the knowledge base with the default tuning."""
    from ..config import load_config
    from ..export.kql import hunting_queries as kql_hunting
    from ..export.meta import comment_header

    queries = kql_hunting(load_config(None), comment_header("//"))
    return {name: HuntingQuery(name, description, query) for name, (description, query) in queries.items()}
