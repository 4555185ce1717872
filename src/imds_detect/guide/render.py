"""A rule guide as terminal text or Markdown."""

from __future__ import annotations

import textwrap

from .content import HuntingQuery, RuleGuide

WIDTH = 100
HUNT_HELP = {
    "rare-processes": "executables that reached metadata on few hosts",
    "hosts-per-process": "how many hosts each executable reached metadata from",
    "credential-reads": "credential, token and user-data reads over time",
    "unexpected-agents": "agent names seen running from unexpected paths",
}


def _sections(guide: RuleGuide) -> list[tuple[str, list[str]]]:
    revoke = [f"{provider.upper()}: {step}" for provider, steps in guide.revoke.items() for step in steps]
    hunt = [f"imds-detect hunt {name}  ({HUNT_HELP.get(name, '')})" for name in guide.hunt]
    return [
        ("Investigation guide", list(guide.investigate)),
        ("Response playbook", list(guide.respond)),
        ("Revoke the credentials", revoke),
        ("Harden", list(guide.harden)),
        ("Tuning: how to allowlist safely", list(guide.allow_safely)),
        ("Tuning: never allowlist", list(guide.never_allow)),
        ("Known false positives", list(guide.false_positives)),
        ("Hunting from the state store", hunt),
    ]


def render_text(guide: RuleGuide, queries: dict[str, HuntingQuery] | None = None) -> str:
    """A guide for the terminal: numbered steps wrapped to WIDTH, then the KQL hunting queries."""
    lines = [f"{guide.rule_id}: {guide.title}", "", *textwrap.wrap(guide.summary, WIDTH)]
    for heading, items in _sections(guide):
        if not items:
            continue
        lines += ["", heading.upper()]
        for number, item in enumerate(items, 1):
            lines += textwrap.wrap(item, WIDTH, initial_indent=f"{number:>2}. ", subsequent_indent="    ")
    for name in guide.hunting:
        query = (queries or {}).get(name)
        if query is None:
            continue
        lines += ["", f"HUNTING QUERY {name} (KQL, Defender XDR / Sentinel)",
                  *textwrap.wrap(query.description, WIDTH), "", query.query.rstrip("\n")]
    return "\n".join(lines) + "\n"


def render_markdown(guide: RuleGuide, queries: dict[str, HuntingQuery] | None = None) -> str:
    """A guide as Markdown (for wikis and tickets)."""
    lines = [f"# `{guide.rule_id}`: {guide.title}", "", guide.summary]
    for heading, items in _sections(guide):
        if items:
            lines += ["", f"## {heading}", "", *(f"{n}. {item}" for n, item in enumerate(items, 1))]
    for name in guide.hunting:
        query = (queries or {}).get(name)
        if query is not None:
            lines += ["", f"## Hunting query `{name}`", "", query.description, "", "```kusto",
                      query.query.rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"
