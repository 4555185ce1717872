"""`imds-detect export`: Sigma rules, SIEM queries and Sentinel content from the knowledge base and your tuning.

Registered in the CLI with ``main.add_command(export_command, "export")``.
"""

from __future__ import annotations

import sys

import click

from ..config import ConfigError, load_config


def _target_names() -> list[str]:
    try:
        from .targets import available_targets

        return available_targets()
    except Exception:
        return ["sigma", "sentinel-rule", "arm", "hunting"]


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--to", "targets", multiple=True, metavar="TARGET",
              help="What to export (repeatable): all, sigma, sentinel-rule, arm, hunting, kql, kql-asim, splunk, "
                   "esql, eql, lucene, or any other installed pySigma back end [default: all].")
@click.option("--config", "config_path", metavar="FILE", help="TOML tuning file (allowlist) to carry into the rules.")
@click.option("-o", "out_dir", metavar="DIR", default="imds-export", show_default=True,
              help="Directory to write into (created; files are replaced atomically).")
@click.option("--list", "list_targets", is_flag=True, help="List the available targets and exit.")
def export_command(targets: tuple[str, ...], config_path: str | None, out_dir: str, list_targets: bool) -> None:
    """Export the detection for SIEMs: Sigma, KQL, SPL, ES|QL, EQL, Lucene, Sentinel rule, ARM, hunting."""
    names = _target_names()
    if list_targets:
        for name in names:
            click.echo(name)
        return
    chosen = list(targets) or ["all"]
    unknown = [t for t in chosen if t != "all" and t not in names]
    if unknown:
        click.echo(f"imds-detect: error: unknown export target {unknown[0]!r} (available: all, "
                   f"{', '.join(names)})", err=True)
        sys.exit(2)
    try:
        config = load_config(config_path)
    except ConfigError as error:
        click.echo(f"imds-detect: error: {error}", err=True)
        sys.exit(2)
    try:
        from .targets import build_export, write_export

        files = build_export(config, chosen)
    except ImportError as error:
        click.echo(f"imds-detect: error: {error}; install the export extra: pip install 'imds-detect[export]'",
                   err=True)
        sys.exit(2)
    written = write_export(files, out_dir)
    click.echo(f"imds-detect: wrote {len(written)} files to {out_dir}", err=True)
