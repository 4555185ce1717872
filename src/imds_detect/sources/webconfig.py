"""Custom web log formats (command line and the config's [web] table): access-log format strings and JSON
field names."""

from __future__ import annotations

from collections.abc import Sequence

from .access import AccessLogAdapter
from .base import SourceAdapter
from .jsonweb import DEFAULT_FIELDS, JsonWebAdapter
from .registry import register


def parse_field_names(pairs: Sequence[str]) -> dict[str, str]:
    """`FIELD=NAME[,NAME...]` pairs as a mapping; ValueError on a pair without `=`."""
    names: dict[str, str] = {}
    for pair in pairs:
        field, equals, value = pair.partition("=")
        if not equals or not field.strip() or not value.strip():
            raise ValueError(f"{pair!r} is not FIELD=NAME")
        names[field.strip().lower()] = value.strip()
    return names


def _web_adapters(log_formats: Sequence[str], json_fields: Sequence[str]) -> list[SourceAdapter]:
    """The adapters these formats and field names make; ValueError (one line) when one cannot be used."""
    adapters: list[SourceAdapter] = []
    if log_formats:
        adapters.append(AccessLogAdapter(tuple(log_formats)))
    if json_fields:
        adapters.append(JsonWebAdapter(fields=DEFAULT_FIELDS.with_names(parse_field_names(json_fields))))
    return adapters


def configure_web_formats(log_formats: Sequence[str] = (), json_fields: Sequence[str] = ()) -> None:
    """Use these nginx `log_format` / Apache `LogFormat` strings (tried before the built-in ones) and these JSON
    field names for the rest of the process; ValueError (one line) when one cannot be used."""
    for adapter in _web_adapters(log_formats, json_fields):
        register(adapter)


def check_web_formats(log_formats: Sequence[str] = (), json_fields: Sequence[str] = ()) -> None:
    """ValueError (one line) when these formats or field names cannot be used; registers nothing."""
    _web_adapters(log_formats, json_fields)
