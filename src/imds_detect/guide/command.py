"""`imds-detect explain RULE_ID`: the investigation guide, response playbook, tuning and hunting queries."""

from __future__ import annotations

import sys

import click
import orjson

from ..detect.rules import RULES
from .content import guide_for, hunting_queries
from .render import render_markdown, render_text


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("rule_id", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--no-queries", is_flag=True, help="Leave out the KQL hunting queries.")
@click.option("--list", "list_rules", is_flag=True, help="List the rule ids and titles.")
def explain_command(rule_id: str | None, fmt: str, no_queries: bool, list_rules: bool) -> None:
    """How to investigate, respond to and tune an alert of RULE_ID (every alert names its rule)."""
    if list_rules or rule_id is None:
        for rule in RULES:
            click.echo(f"{rule.id:32} {rule.title}")
        return
    try:
        guide = guide_for(rule_id)
    except KeyError:
        known = ", ".join(rule.id for rule in RULES)
        click.echo(f"imds-detect: error: unknown rule {rule_id!r} (known: {known})", err=True)
        sys.exit(2)
    queries = {} if no_queries else hunting_queries()
    if fmt == "json":
        data = guide.as_dict()
        data["hunting_queries"] = {name: {"description": q.description, "query": q.query}
                                   for name, q in queries.items() if name in guide.hunting}
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "markdown":
        click.echo(render_markdown(guide, queries), nl=False)
    else:
        click.echo(render_text(guide, queries), nl=False)
